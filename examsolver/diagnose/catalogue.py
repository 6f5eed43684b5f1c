"""The catalogue of conventions and common mistakes that can explain a wrong answer.

Data, not code paths: each entry is a name (its sentence is the phrase
`mistake.<name>` in locales/*_verify.py) and either

* a spec patch — dotted paths into the YAML data (`*` walks every list item; a
  layer written as a bare name like `relu` counts as `{relu: {}}`) with the value
  to put there, or a function of the old value (None when absent) — after which
  the problem is solved again; or
* a result transform — a function (name, value, results) → the value a student
  making that mistake would have written, or None where it does not apply.

Mistakes that are no convention (the ReLU mask forgotten, …) are spec patches
too: they switch on a hook the ops consult, `conventions.mistakes` (spec/model.py
MISTAKE_HOOKS).  `degeneracies` names the warnings (phrase keys) at which the
entry is the alternative answer to show.  Adding an entry is adding a row here, its
two phrases, and a test with a deliberately wrong answer it must diagnose.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str                                  # "convention" (a legitimate alternative) or "mistake"
    patch: tuple = ()                          # ((path, value or fn(old) → new), …)
    transform: Callable | None = None          # fn(name, value, results) → value or None
    degeneracies: tuple = ()                   # warning keys for which this is the alternative


# ----- patch values -----------------------------------------------------------------
def add_mistake(hook: str):
    def add(old):
        return list(old or []) + [hook] if hook not in (old or []) else old
    return add


def negated(old):
    """−old for a number as written in YAML (int or text); None (absent) is left alone."""
    if old is None:
        return None
    if isinstance(old, int) and not isinstance(old, bool):
        return -old
    return f"-({old})"


# ----- result transforms --------------------------------------------------------------
def _matching(pattern: str, fn):
    def transform(name, value, results):
        return fn(value) if fnmatchcase(name, pattern) else None
    return transform


def _transpose(value):
    array = np.asarray(value, dtype=object)
    return array.T if array.ndim == 2 and array.shape[0] != 1 and array.shape[1] != 1 else None


def _negate(value):
    array = np.asarray(value, dtype=object)
    return -array if array.ndim else -array[()]


def _other_result(prefix: str, replacement: str):
    """The value a result of a sibling name has (ap → ap_interpolated)."""
    def transform(name, value, results):
        if not name.startswith(prefix) or (replacement.startswith(prefix) and name.startswith(replacement)):
            return None
        return results.get(replacement + name[len(prefix):])
    return transform


def _first_layer_count(name, value, results):
    """A parameter total (`<count>.params.total`) that counts only the first layer of the stack."""
    if not name.endswith(".params.total"):
        return None
    prefix = name[: -len("total")]
    layers = [k for k in results if k.startswith(prefix) and k != name and k.count(".") == name.count(".")]
    return results[layers[0]] if len(layers) > 1 else None


# ----- the catalogue -----------------------------------------------------------------
# Order matters: when several entries reproduce an answer, the first is reported.
CATALOGUE: tuple[Entry, ...] = (
    # conventions (DESIGN.md table) ------------------------------------------------------
    Entry("relu_grad_at_zero_one", "convention", patch=(("conventions.relu_grad_at_zero", 1),),
          degeneracies=("warning.relu_at_zero", "warning.triplet_at_margin")),
    Entry("relu_grad_at_zero_zero", "convention", patch=(("conventions.relu_grad_at_zero", 0),),
          degeneracies=("warning.relu_at_zero", "warning.triplet_at_margin")),
    Entry("maxpool_ties_split", "convention", patch=(("conventions.maxpool_ties", "split"),),
          degeneracies=("warning.maxpool_ties",)),
    Entry("maxpool_ties_first", "convention", patch=(("conventions.maxpool_ties", "first"),),
          degeneracies=("warning.maxpool_ties",)),
    Entry("true_convolution", "convention", patch=(("conventions.convolution", "convolution"),)),
    Entry("cross_correlation", "convention", patch=(("conventions.convolution", "cross_correlation"),)),
    Entry("batchnorm_statistics_constant", "convention", patch=(("conventions.batchnorm_backward", "constants"),)),
    Entry("batchnorm_statistics_differentiated", "convention", patch=(("conventions.batchnorm_backward", "full"),)),
    Entry("unbiased_variance", "convention", patch=(("model.*.batchnorm.variance", "unbiased"),)),
    Entry("biased_variance", "convention", patch=(("model.*.batchnorm.variance", "biased"),)),
    Entry("dropout_plain", "convention", patch=(("conventions.dropout", "plain"),)),
    Entry("dropout_inverted", "convention", patch=(("conventions.dropout", "inverted"),)),
    Entry("minibatch_sum", "convention", patch=(("tasks.*.train_step.reduction", "sum"),)),
    Entry("minibatch_mean", "convention", patch=(("tasks.*.train_step.reduction", "mean"),)),
    Entry("mse_missing_half", "convention", patch=(("loss.mse.half", False),)),
    Entry("mse_extra_half", "convention", patch=(("loss.mse.half", True),)),
    Entry("label_smoothing_wrong_classes", "convention",
          patch=(("loss.cross_entropy.label_smoothing_convention", "wrong_classes"),)),
    Entry("label_smoothing_pytorch", "convention", patch=(("loss.cross_entropy.label_smoothing_convention", "pytorch"),)),
    Entry("interpolated_ap", "convention", transform=_other_result("ap", "ap_interpolated")),
    Entry("non_interpolated_ap", "convention", transform=_other_result("ap_interpolated", "ap")),
    Entry("ranking_ties_optimistic", "convention", patch=(("ties", "optimistic"),),
          degeneracies=("warning.retrieval_ties",)),
    Entry("ranking_ties_index", "convention", patch=(("ties", "index"),),
          degeneracies=("warning.retrieval_ties",)),
    Entry("ranking_ties_pessimistic", "convention", patch=(("ties", "pessimistic"),),
          degeneracies=("warning.retrieval_ties",)),
    Entry("ranking_ties_grouped", "convention", patch=(("ties", "grouped"),),
          degeneracies=("warning.retrieval_ties",)),
    Entry("lstm_one_bias_count", "convention", patch=(("count.*.layers.*.lstm.biases", "one"),)),
    Entry("lstm_two_biases_count", "convention", patch=(("count.*.layers.*.lstm.biases", "two"),)),
    # mistakes ---------------------------------------------------------------------
    Entry("relu_mask_forgotten", "mistake", patch=(("conventions.mistakes", add_mistake("relu_mask_forgotten")),)),
    Entry("global_pool_sum", "mistake", patch=(("conventions.mistakes", add_mistake("global_pool_sum")),)),
    Entry("updated_weights_in_backward", "mistake",
          patch=(("conventions.mistakes", add_mistake("updated_weights_in_backward")),)),
    Entry("update_sign", "mistake", patch=(("tasks.*.train_step.lr", negated),)),
    Entry("first_layer_only_count", "mistake", transform=_first_layer_count),
    Entry("transposed_weight_gradient", "mistake", transform=_matching("*.W.grad*", _transpose)),
    Entry("gradient_sign", "mistake", transform=_matching("*.grad*", _negate)),
)


def by_name(name: str) -> Entry:
    for entry in CATALOGUE:
        if entry.name == name:
            return entry
    raise KeyError(name)
