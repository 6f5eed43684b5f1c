"""A solution at a degenerate input shows the answers under the other convention."""

import copy
import json

import numpy as np
import pytest

from examsolver.diagnose import Resolver, _same
from examsolver.diagnose.catalogue import CATALOGUE
from examsolver.pipeline import solve_document, solve_file
from examsolver.render.output import render_solution
from examsolver.spec.load import load_file, load_text

from conftest import PROBLEMS


def test_max_pool_ties_bring_the_split_alternative():
    solution = solve_file(PROBLEMS / "000_t2.yaml")
    assert solution.warnings
    (alt,) = [a for a in solution.alternatives if a.mistake == "maxpool_ties_split"]
    values = dict(alt.values)
    split = np.asarray(values["conv1.W.grad"], dtype=object)
    first = np.asarray(solution.results["conv1.W.grad"], dtype=object)
    assert split.shape == first.shape and not (split == first).all()
    # the split rule spreads the gradient: the hand-derived value for kernel 1, row 3 (seed 000 task 2)
    assert [float(v) for v in split[0, 2]] == [0, -0.125, 0.125]
    for fmt in ("term", "md", "json"):
        text = render_solution(solution, fmt, "en", to_terminal=False)
        assert "maxpool_ties_split" in text if fmt == "json" else "Other answers under the alternative" in text


def test_no_alternatives_without_degeneracy():
    assert solve_file(PROBLEMS / "2022_z3.yaml").alternatives == []


L1_AT_KINK = """
id: l1_kink
kind: network
model:
  - linear: {{name: fc, W: [[1, -1], [1/2, 2]], b: [0, 1/2]}}
loss: {loss}
data:
  - {{x: [1, 2], y: [-1, 3]}}
  - {{x: [-1, 1/2], y: [-1, 1]}}
tasks:
  - gradient: {{wrt: [fc.W, fc.b], method: batch}}
"""
# outputs: [−1, 9/2] and [−3/2, 1]: entry 1 of example 1 and entry 2 of example 2 sit on o = y


def _l1_case(loss: str):
    from examsolver.pipeline import solve_document
    from examsolver.spec.load import load_text

    return solve_document(load_text(L1_AT_KINK.format(loss=loss), "l1.yaml"))


def test_l1_at_its_kink_says_which_subgradient_was_used():
    import torch

    solution = _l1_case("l1")
    (warning,) = [w for w in solution.warnings if w.key == "warning.l1_at_kink"]
    assert warning.args["count"] == 2 and warning.args["value"] == 0
    W = torch.tensor([[1, -1], [0.5, 2]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0, 0.5], dtype=torch.float64, requires_grad=True)
    x = torch.tensor([[1, 2], [-1, 0.5]], dtype=torch.float64)
    y = torch.tensor([[-1, 3], [-1, 1]], dtype=torch.float64)
    (torch.nn.functional.l1_loss(x @ W.T + b, y, reduction="sum") / 2).backward()    # sign(0) = 0 as ours
    assert np.allclose([float(v) for v in np.asarray(solution.results["fc.W.grad"]).flat], W.grad.numpy().flat)
    half = _l1_case("{l1: {grad_at_zero: 1/2}}")
    (warning,) = [w for w in half.warnings if w.key == "warning.l1_at_kink"]
    assert float(warning.args["value"]) == 0.5
    # the chosen subgradient ½ at the two kinks: ½·∂o/∂b summed over those entries, ÷ 2 examples
    delta = np.asarray(half.results["fc.b.grad"], dtype=object) - np.asarray(solution.results["fc.b.grad"], dtype=object)
    assert [float(v) for v in delta] == [0.25, 0.25]
    for fmt in ("term", "md"):
        text = render_solution(solution, fmt, "hr", to_terminal=False)
        assert "lom" in text


def test_smooth_l1_warns_only_where_it_has_a_kink():
    assert any(w.key == "warning.l1_at_kink" for w in _l1_case("{smooth_l1: {beta: 0}}").warnings)
    assert not any(w.key == "warning.l1_at_kink" for w in _l1_case("smooth_l1").warnings)
    assert not any(w.key == "warning.l1_at_kink" for w in _l1_case("huber").warnings)


# ----- alternatives recomputed from the first node a convention touches ------------------------



CONVENTION_ENTRIES = [e for e in CATALOGUE if e.patch and all(p.startswith("conventions.") for p, _ in e.patch)]


def _small_cnn(**tasks) -> dict:
    """Two 5×5 images of small integers: ReLU zeros and tied max-pool windows on purpose."""
    image = lambda k: [[(3 * i + j * k) % 4 - 1 for j in range(5)] for i in range(5)]
    return {"id": "small_cnn", "model": [
        {"conv2d": {"name": "conv1", "W": [[[[1, 0], [0, -1]]], [[[0, 1], [1, 0]]]], "b": [0, "1/2"]}},
        "relu", {"max_pool2d": {"kernel_size": 2}}, "flatten",
        {"linear": {"name": "fc", "W": [[1, -1, 0, 1, 0, 2, -1, 1], [0, 1, 1, -1, 1, 0, 0, 1]], "b": [0, 0]}},
        "softmax"], "loss": "cross_entropy",
        "data": [{"x": [image(1)], "y": 0}, {"x": [image(2)], "y": 1}], **tasks}


TRAIN_NET = {"id": "train", "model": [{"linear": {"name": "fc1", "W": [[1, 0], [1, -1]], "b": [0, 1]}},
                                      {"relu": {"name": "h"}}, {"linear": {"name": "fc2", "W": [[1, 2]], "b": [0]}}],
             "loss": "mse", "data": [{"x": [1, 2], "y": [1]}, {"x": [0, -1], "y": [0]}]}

GENERATED = {
    "cnn_train_step": _small_cnn(tasks=[{"train_step": {"lr": "1/10"}}]),
    "cnn_batch_gradient": _small_cnn(tasks=[{"gradient": {"wrt": ["conv1.W", "x"], "method": "batch"}}]),
    "relu_train_steps": {**TRAIN_NET, "tasks": [{"train": {"optimizer": {"sgd": {"lr": "1/10", "momentum": "9/10"}},
                                                           "steps": 2}}]},
    "relu_upstream": {**TRAIN_NET, "loss": None, "data": {"x": [1, 2], "y": [1]},
                      "tasks": [{"gradient": {"wrt": ["fc1.W", "x"], "upstream": {"fc2": [3]}}}]},
}


def _documents():
    for path in sorted(PROBLEMS.glob("*.yaml")):
        if load_file(path).data.get("kind", "network") == "network":     # the kind that recomputes
            yield pytest.param(lambda path=path: load_file(path), id=path.stem)
    for name, spec in GENERATED.items():
        yield pytest.param(lambda spec=spec, name=name: load_text(json.dumps(spec), f"{name}.yaml"), id=name)


@pytest.mark.parametrize("document", list(_documents()))
def test_alternatives_from_the_graph_equal_a_whole_resolve(document):
    """Every convention of the catalogue, recomputed from the nodes it touches, gives the results a
    whole new solve of the patched document gives: the same names in the same order, equal values."""
    doc = document()
    solution = solve_document(doc, answers={}, with_alternatives=False)
    assert solution.under is not None
    recomputed, resolved = Resolver(doc, solution), Resolver(doc, solution, reuse=False)
    original = copy.deepcopy(doc.data)
    for entry in CONVENTION_ENTRIES:
        fast, whole = recomputed.results(entry), resolved.results(entry)
        assert (fast is None) == (whole is None), entry.name
        if fast is not None:
            assert list(fast) == list(whole), entry.name
            differ = [name for name in fast if not _same(fast[name], whole[name])]
            assert not differ, (entry.name, differ)
    assert doc.data == original      # patched copies share the untouched branches: nothing wrote to them


@pytest.mark.parametrize("name, warnings, alternatives", [
    ("cnn_batch_gradient", {"warning.relu_at_zero", "warning.maxpool_ties"},
     {"relu_grad_at_zero_one", "maxpool_ties_split"}),
    ("relu_train_steps", {"warning.relu_at_zero"}, {"relu_grad_at_zero_one"}),
])
def test_degenerate_inputs_are_recomputed_not_solved_again(name, warnings, alternatives, monkeypatch):
    """The generated specs do hit the degeneracies, and their alternatives come from the graph."""
    import examsolver.pipeline as pipeline

    solution = solve_document(load_text(json.dumps(GENERATED[name]), f"{name}.yaml"), answers={},
                              with_alternatives=False)
    assert {w.key for w in solution.warnings} == warnings
    doc = solution.document

    def no_second_solve(*args, **kwargs):
        raise AssertionError("solved the document again")

    monkeypatch.setattr(pipeline, "solve_document", no_second_solve)
    from examsolver.diagnose import alternatives as alternatives_of

    found = alternatives_of(doc, solution)
    assert {a.mistake for a in found} == alternatives
    assert all(a.values for a in found)
