"""Wording that carries meaning, checked where it is rendered, in Croatian and in English.

A sentence that names a mathematical fact (sigmoid or tanh, ReLU′(0) = 0 or 1, the biased or the
unbiased variance, ε/K or ε/(K − 1), …) must name the fact that holds in the case it is printed for.
Each table below is data: the meaning of a sentence as words that must appear, in that order, in one
rendered sentence (hr and en separately; a word matches whole, so "biased" is not found in "unbiased").

* FEEDBACK: the feedback `check` gives for every catalogued mistake, on a wrong answer crafted under
  that mistake (tests/test_check.py CASES: each answer derived there by hand, never by the engine).
  The feedback must name the mistake matched and no other entry of the catalogue.
* CONVENTIONS: specs that differ in one convention, set each way; the solution's convention sentences
  must name the one used and none of its alternatives.
* STEPS: specs that differ in one op; the step texts must name that op's fact and none of its rivals'.

Each row also names the phrase key it stands for, and the keys of the tables are checked against
the catalogs, so a convention sentence added without a row here fails.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import re

import pytest
import yaml

from examsolver.api import solve
from examsolver.diagnose.catalogue import CATALOGUE
from examsolver.locales import LANGUAGES, catalog
from examsolver.render.output import render_solution
from examsolver.solution import Phrase
from examsolver.verify import verify_file

from test_check import CASES, _answers, _spec


# ----- matching ------------------------------------------------------------------------------------
def _pattern(word: str) -> str:
    """A word or phrase matched whole: no letter, digit or hyphen may touch it on either side."""
    return r"(?<![\w-])" + re.escape(word) + r"(?![\w-])"


def names(sentence: str, words: tuple) -> bool:
    """Whether the sentence holds every word, in the given order."""
    return re.search(".*?".join(_pattern(w) for w in words), sentence, re.S) is not None


def named_in(sentences: list, words: tuple) -> bool:
    return any(names(s, words) for s in sentences)


# ----- FEEDBACK: one row per catalogue entry -------------------------------------------------------
FEEDBACK = {
    "relu_grad_at_zero_one": {"en": ("ReLU derivative at 0", "taken as 1"),
                              "hr": ("derivacija zglobnice u nuli", "uzeta kao 1")},
    "relu_grad_at_zero_zero": {"en": ("ReLU derivative at 0", "taken as 0"),
                               "hr": ("derivacija zglobnice u nuli", "uzeta kao 0")},
    "maxpool_ties_split": {"en": ("max-pooling ties", "split equally"),
                           "hr": ("sažimanju maksimumom", "jednako podijeljen")},
    "maxpool_ties_first": {"en": ("max-pooling ties", "to the first maximum"),
                           "hr": ("sažimanju maksimumom", "prvom maksimumu")},
    "true_convolution": {"en": ("true convolution", "flipped kernel", "instead of", "cross-correlation"),
                         "hr": ("prava konvolucija", "zrcaljena jezgra", "umjesto", "unakrsne korelacije")},
    "cross_correlation": {"en": ("cross-correlation", "instead of", "true convolution"),
                          "hr": ("unakrsna korelacija", "umjesto", "prave konvolucije")},
    "batchnorm_statistics_constant": {"en": ("batch statistics", "as constants"),
                                      "hr": ("statistike grupe", "konstantama")},
    "batchnorm_statistics_differentiated": {"en": ("backward pass through the batch statistics",),
                                            "hr": ("unatražni prolaz i kroz statistike grupe",)},
    "unbiased_variance": {"en": ("unbiased variance", "N − 1 in the denominator"),
                          "hr": ("nepristrani procjenitelj varijance", "N − 1 u nazivniku")},
    "biased_variance": {"en": ("biased variance", "N in the denominator"),
                        "hr": ("pristrani procjenitelj varijance", "N u nazivniku")},
    "dropout_plain": {"en": ("without the 1/(1 − p) scaling", "textbook"),
                      "hr": ("bez skaliranja s 1/(1 − p)", "udžbenički")},
    "dropout_inverted": {"en": ("inverted dropout", "scaled by 1/(1 − p) in training"),
                         "hr": ("obrnuto isključivanje", "skalirane s 1/(1 − p) pri učenju")},
    "minibatch_sum": {"en": ("summed over the minibatch", "instead of", "averaged"),
                      "hr": ("zbroj po minigrupi", "umjesto", "prosjeka")},
    "minibatch_mean": {"en": ("averaged over the minibatch", "instead of", "summed"),
                       "hr": ("prosjek po minigrupi", "umjesto", "zbroja")},
    "mse_missing_half": {"en": ("without the factor ½",), "hr": ("bez faktora ½",)},
    "mse_extra_half": {"en": ("with an extra factor ½",), "hr": ("s viškom faktora ½",)},
    "label_smoothing_wrong_classes": {"en": ("ε/(K − 1)", "wrong classes only"),
                                      "hr": ("ε/(K − 1)", "samo na pogrešnim razredima")},
    "label_smoothing_pytorch": {"en": ("ε/K on every class",), "hr": ("ε/K na svaki razred",)},
    "interpolated_ap": {"en": ("interpolated average precision", "instead of", "non-interpolated"),
                        "hr": ("interpolirana prosječna preciznost", "umjesto", "neinterpolirane")},
    "non_interpolated_ap": {"en": ("non-interpolated average precision", "instead of", "interpolated"),
                            "hr": ("neinterpolirana prosječna preciznost", "umjesto", "interpolirane")},
    "ranking_ties_optimistic": {"en": ("ties", "optimistically", "relevant items first"),
                                "hr": ("izjednačenja", "optimistično", "relevantni podaci prvi")},
    "ranking_ties_pessimistic": {"en": ("ties", "pessimistically", "relevant items last"),
                                 "hr": ("izjednačenja", "pesimistično", "relevantni podaci zadnji")},
    "ranking_ties_grouped": {"en": ("tied items grouped under one threshold",),
                             "hr": ("izjednačeni podaci grupirani pod jednim pragom",)},
    "ranking_ties_index": {"en": ("ties", "broken by index"), "hr": ("izjednačenja", "po indeksu")},
    "relu_mask_forgotten": {"en": ("ReLU mask forgotten",), "hr": ("zaboravljena maska zglobnice",)},
    "global_pool_sum": {"en": ("global pooling summed instead of averaged",),
                        "hr": ("globalno sažimanje zbrojem umjesto prosjekom",)},
    "updated_weights_in_backward": {"en": ("already updated weights", "in the backward pass"),
                                    "hr": ("unatražnom prolazu", "već ažurirane težine")},
    "update_sign": {"en": ("sign error in the update", "θ + η", "instead of", "θ − η"),
                    "hr": ("pogrešan predznak u ažuriranju", "θ + η", "umjesto", "θ − η")},
    "transposed_weight_gradient": {"en": ("weight gradient transposed",), "hr": ("transponiran gradijent",)},
    "gradient_sign": {"en": ("gradient with the opposite sign",), "hr": ("gradijent suprotnog predznaka",)},
    "lstm_one_bias_count": {"en": ("LSTM", "one bias per gate"), "hr": ("LSTM-a", "jednim pomakom po vratima")},
    "lstm_two_biases_count": {"en": ("LSTM", "two biases per gate"), "hr": ("LSTM-a", "dva pomaka po vratima")},
    "first_layer_only_count": {"en": ("only the first layer",), "hr": ("samo prvi sloj",)},
}


@functools.cache
def _report(index: int, tmp_root: str):
    from pathlib import Path

    mistake, problem, overrides, name, answer = CASES[index]
    folder = Path(tmp_root) / f"case{index}"
    folder.mkdir(parents=True, exist_ok=True)
    return verify_file(_spec(folder, problem, overrides), answers_file=_answers(folder, name, answer))


def _feedback(report, lang: str) -> tuple[str, str]:
    """(the explanation `check --format json` gives, everything `check` prints on the terminal)."""
    from rich.console import Console

    from examsolver.render.verify_report import print_reports, to_json

    (entry,) = json.loads(to_json([report], lang))["files"][0]["entries"]
    out = io.StringIO()
    print_reports([report], lang, console=Console(file=out, width=1000, highlight=False))
    return (entry["explanation"] or {}).get("text", ""), out.getvalue()


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("index", range(len(CASES)), ids=[c[0] for c in CASES])
def test_feedback_names_the_mistake_matched_and_no_other(index, lang, tmp_path_factory):
    mistake = CASES[index][0]
    report = _report(index, str(tmp_path_factory.getbasetemp() / "feedback"))
    explanation, printed = _feedback(report, lang)
    assert names(explanation, FEEDBACK[mistake][lang]), (mistake, lang, explanation)
    assert names(printed, FEEDBACK[mistake][lang]), printed
    others = [other for other in FEEDBACK if other != mistake and names(explanation, FEEDBACK[other][lang])]
    assert not others, f"the feedback for {mistake} also reads as {others}: {explanation}"


def test_every_catalogue_entry_has_its_meaning_written_down():
    assert set(FEEDBACK) == {entry.name for entry in CATALOGUE} == {case[0] for case in CASES}


# ----- rendering a spec ----------------------------------------------------------------------------
def _merged(base: dict, patch: dict) -> dict:
    """base with patch laid over it (mappings merged key by key, anything else replaced)."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@functools.cache
def _solved(spec_yaml: str):
    return solve(yaml.safe_load(spec_yaml))


@functools.cache
def _rendered(spec_yaml: str, lang: str) -> dict:
    """The solution as `solve --format json` writes it: conventions, and every title and step text."""
    data = json.loads(render_solution(_solved(spec_yaml), "json", lang, to_terminal=False))
    texts = []
    for section in data["sections"]:
        texts.append(section["title"])
        texts += [block["text"] for block in section["blocks"] if isinstance(block.get("text"), str)]
    return {"conventions": data["conventions"], "steps": texts}


def _keys_of(phrases) -> set:
    return {p.key for p in phrases if isinstance(p, Phrase)}


def _step_keys(solution) -> set:
    keys = set()
    for section in solution.sections:
        keys |= _keys_of([section.title])
        for block in section.blocks:
            keys |= _keys_of([block, getattr(block, "text", None)])
    return keys


# ----- the specs the rows vary ------------------------------------------------------------------------
MLP = {   # one hidden layer; ACT is replaced by the row's layer
    "id": "w_mlp",
    "model": [{"linear": {"name": "fc1", "W": [[1, -1], [2, 1]], "b": [0, 1]}}, "ACT",
              {"linear": {"name": "fc2", "W": [[1, 1]], "b": [0]}}],
    "loss": "mse",
    "data": [{"x": [1, 2], "y": [1]}, {"x": [2, 2], "y": [0]}],
    "tasks": ["forward", {"train_step": {"lr": "1/2"}}],
}
CONV = {  # 2022 task 3
    "id": "w_conv",
    "model": [{"conv1d": {"name": "conv1", "kernels": [[1, 0, -1], [1, 1, -1]]}}, "relu", "global_avg_pool",
              {"linear": {"name": "fc2", "W": [[1, 0], [0, 1]], "b": [0, 1]}}, "softmax"],
    "loss": "cross_entropy",
    "data": {"x": [4, -1, 2, 0, 1], "y": 1},
    "tasks": ["forward", {"gradient": {"wrt": ["conv1.W"]}}],
}
POOL = {  # a 2×2 window holding two maxima, then a 4×4 image padded for average pooling
    "id": "w_pool",
    "model": [{"max_pool2d": {"name": "pool1", "kernel_size": 2, "stride": 2}}, "flatten",
              {"linear": {"name": "fc1", "W": [[3]], "b": [0]}}],
    "loss": "mse",
    "data": {"x": [[[1, 1], [0, 0]]], "y": [0]},
    "tasks": [{"gradient": {"wrt": ["x"]}}],
}
FLAT = {  # two 1×2 feature maps flattened
    "id": "w_flat",
    "model": ["flatten", {"linear": {"name": "fc1", "W": [[1, 2, 3, 4]], "b": [0]}}],
    "loss": "mse",
    "data": {"x": [[[1, 2]], [[3, 4]]], "y": [0]},
    "tasks": [{"gradient": {"wrt": ["fc1.W"]}}],
}
BATCHNORM = {  # 2022 task 1 with a squared loss
    "id": "w_bn",
    "model": [{"linear": {"name": "fc1", "W": [[1, 0], [0, 1]], "b": [0, 0]}}, {"batchnorm": {"name": "bn1"}},
              "relu", {"linear": {"name": "fc2", "W": [[1, 1]], "b": [0]}}],
    "loss": "mse",
    "data": [{"x": [1, 1], "y": [1]}, {"x": [-1, 3], "y": [0]}],
    "tasks": ["forward", {"train_step": {"lr": 1}}],
}
DROPOUT = {
    "id": "w_dropout",
    "model": [{"dropout": {"name": "drop", "p": "1/2", "mask": [[1, 0]]}},
              {"linear": {"name": "fc", "W": [[1, 1]], "b": [0]}}],
    "loss": "mse",
    "data": [{"x": [1, 2], "y": [0]}],
    "tasks": [{"gradient": {"wrt": ["fc.W"]}}],
}
SMOOTHING = {
    "id": "w_smooth",
    "model": [{"linear": {"name": "fc", "W": [[1, 0], [0, 1], [1, 1]], "b": [0, 0, 0]}}, "softmax"],
    "loss": {"cross_entropy": {"label_smoothing": "1/10"}},
    "data": {"x": [1, 2], "y": 1},
    "tasks": [{"gradient": {"wrt": ["fc.b"]}}],
}
SIAMESE = {  # seed 000 task 6
    "id": "w_siamese", "kind": "siamese",
    "model": [{"conv1d": {"name": "conv1", "kernels": [["1/3", "1/3", "1/3"]], "b": ["-0.1"]}}, "global_avg_pool"],
    "loss": "contrastive",
    "inputs": {"xp1": [1, 1, 1.3, 1, 1, 1.3], "xp2": [3.3, 3.3, 2.7, 3.3, 3.3, 2.7]},
    "pairs": [{"inputs": ["xp1", "xp2"], "label": "positive"}, {"inputs": ["xp1", "xp2"], "label": "negative"}],
    "tasks": ["forward", {"gradient": {"wrt": ["conv1.W"]}}],
}
RETRIEVAL = {  # 2022 task 2 with a tie between items 1 and 2
    "id": "w_retrieval", "kind": "retrieval",
    "X": [[1, 0], [0, 1], [2, 2]], "y": [1, 0, 1], "query": {"x": [1, 1], "y": 1},
    "similarity": "reciprocal_l1", "ties": "index",
}
RNN = {
    "id": "w_rnn", "kind": "recurrent",
    "cell": {"rnn": {"W_xh": [[1]], "W_hh": [["1/2"]], "b_h": [0], "h0": [0]}},
    "inputs": [[1], [-1]], "loss": "mse", "loss_over": "last", "targets": [None, [1]],
    "tasks": [{"gradient": {"wrt": ["W_hh"]}}],
}
GATED = {
    "id": "w_gated", "kind": "recurrent",
    "cell": {"lstm": {"W_ih": [[1], ["-1/2"], ["1/2"], [-1]], "W_hh": [["1/3"], [1], [1], ["1/2"]],
                      "b_ih": [0, "1/4", 0, 0], "b_hh": ["1/2", 0, 0, "-1/4"]}},
    "inputs": [[1]], "loss": "mse", "targets": [[1]],
    "tasks": [{"gradient": {"wrt": ["W_hh"]}}],
}
MINIMIZE = {
    "id": "w_optim", "kind": "symbolic", "symbols": ["w"],
    "define": {"f": "(w - 3)**2"},
    "tasks": [{"minimize": {"of": "f", "from": {"w": 1}, "optimizer": "OPTIMIZER", "steps": 2}}],
}


def _activation(layer):
    return _merged(MLP, {"model": [MLP["model"][0], layer, MLP["model"][2]]})


def _optimizer(optimizer, **task):
    return _merged(MINIMIZE, {"tasks": [{"minimize": {**MINIMIZE["tasks"][0]["minimize"], "optimizer": optimizer,
                                                        **task}}]})


def _siamese_loss(loss):
    return _merged(SIAMESE, {"loss": loss})


# ----- CONVENTIONS: (topic, phrase key, spec, {lang: words}) ---------------------------------------
# Within a topic the rows are alternatives: each rendering names its own and none of the others'.
CONVENTIONS = [
    ("convolution", "convention.cross_correlation", CONV,
     {"en": ("computed as cross-correlation",), "hr": ("računamo kao unakrsnu korelaciju",)}),
    ("convolution", "convention.convolution", _merged(CONV, {"conventions": {"convolution": "convolution"}}),
     {"en": ("true convolution", "kernel is flipped"), "hr": ("prava konvolucija", "jezgra se zrcali")}),
    ("relu at 0", "convention.relu_at_zero", _activation("relu"),
     {"en": ("derivative of ReLU at 0", "taken to be 0"), "hr": ("Derivaciju zglobnice u nuli", "uzimamo kao 0")}),
    ("relu at 0", "convention.relu_at_zero", _merged(_activation("relu"), {"conventions": {"relu_grad_at_zero": 1}}),
     {"en": ("derivative of ReLU at 0", "taken to be 1"), "hr": ("Derivaciju zglobnice u nuli", "uzimamo kao 1")}),
    ("batchnorm variance", "convention.batchnorm_variance_biased", BATCHNORM,
     {"en": ("biased variance", "N in the denominator"), "hr": ("pristrani procjenitelj varijance", "N u nazivniku")}),
    ("batchnorm variance", "convention.batchnorm_variance_unbiased",
     _merged(BATCHNORM, {"model": [BATCHNORM["model"][0], {"batchnorm": {"name": "bn1", "variance": "unbiased"}},
                                   *BATCHNORM["model"][2:]]}),
     {"en": ("unbiased variance", "N − 1 in the denominator"),
      "hr": ("nepristrani procjenitelj varijance", "N − 1 u nazivniku")}),
    ("batchnorm backward", "convention.batchnorm_backward_full", BATCHNORM,
     {"en": ("includes the batch statistics",), "hr": ("uključuje statistike grupe",)}),
    ("batchnorm backward", "convention.batchnorm_backward_constants",
     _merged(BATCHNORM, {"conventions": {"batchnorm_backward": "constants"}}),
     {"en": ("batch statistics are treated as constants",), "hr": ("statistike grupe smatramo konstantama",)}),
    ("squared loss", "convention.mse_plain", _activation("tanh"),
     {"en": ("without the factor ½", "L = (o − y)²"), "hr": ("bez faktora ½", "L = (o − y)²")}),
    ("squared loss", "convention.mse_half", _merged(_activation("tanh"), {"loss": {"mse": {"half": True}}}),
     {"en": ("with the factor ½", "L = ½(o − y)²"), "hr": ("s faktorom ½", "L = ½(o − y)²")}),
    ("minibatch", "convention.minibatch_mean", _activation("tanh"),
     {"en": ("mean of the examples' gradients",), "hr": ("prosjek gradijenata po podacima",)}),
    ("minibatch", "convention.minibatch_sum",
     _merged(_activation("tanh"), {"tasks": ["forward", {"train_step": {"lr": "1/2", "reduction": "sum"}}]}),
     {"en": ("sum of the examples' gradients",), "hr": ("zbroj gradijenata po podacima",)}),
    ("max-pool ties", "convention.maxpool_first", POOL,
     {"en": ("gradient goes to the first maximum", "row-major order"),
      "hr": ("gradijent ide prvom maksimumu", "redom po recima")}),
    ("max-pool ties", "convention.maxpool_split", _merged(POOL, {"conventions": {"maxpool_ties": "split"}}),
     {"en": ("gradient is split equally",), "hr": ("gradijent se jednako dijeli",)}),
    ("flatten", "convention.flatten_channel_first", FLAT,
     {"en": ("channel-first", "(C, H, W)"), "hr": ("po kanalima", "(C, H, W)")}),
    ("flatten", "convention.flatten_channel_last", _merged(FLAT, {"conventions": {"flatten": "channel_last"}}),
     {"en": ("channel-last", "(H, W, C)"), "hr": ("po položajima", "(H, W, C)")}),
    ("dropout", "convention.dropout_inverted", DROPOUT,
     {"en": ("inverted", "scaled by 1/(1 − p)"), "hr": ("obrnuto", "skaliraju s 1/(1 − p)")}),
    ("dropout", "convention.dropout_plain", _merged(DROPOUT, {"conventions": {"dropout": "plain"}}),
     {"en": ("without scaling in training", "scaled by 1 − p"),
      "hr": ("bez skaliranja pri učenju", "skaliraju s 1 − p")}),
    ("label smoothing", "convention.label_smoothing_pytorch", SMOOTHING,
     {"en": ("as in PyTorch", "ε/K on every class"), "hr": ("kao u PyTorchu", "ε/K na svaki razred")}),
    ("label smoothing", "convention.label_smoothing_wrong_classes",
     _merged(SMOOTHING, {"loss": {"cross_entropy": {"label_smoothing": "1/10",
                                                    "label_smoothing_convention": "wrong_classes"}}}),
     {"en": ("onto the wrong classes", "(K − 1)"), "hr": ("na pogrešne razrede", "(K − 1)")}),
    ("gelu", "convention.gelu_none", _activation("gelu"),
     {"en": ("exact form x Φ(x)",), "hr": ("točnom obliku x Φ(x)",)}),
    ("gelu", "convention.gelu_tanh", _activation({"gelu": {"approximate": "tanh"}}),
     {"en": ("tanh approximation",), "hr": ("aproksimaciji tangensom hiperbolnim",)}),
    ("contrastive loss", "convention.contrastive_plain", SIAMESE,
     {"en": ("Squared contrastive loss without ½",), "hr": ("Kvadratni kontrastni gubitak bez faktora ½",)}),
    ("contrastive loss", "convention.contrastive_half", _siamese_loss({"contrastive": {"half": True}}),
     {"en": ("Squared contrastive loss with ½",), "hr": ("Kvadratni kontrastni gubitak s faktorom ½",)}),
    ("contrastive loss", "convention.contrastive_unsquared", _siamese_loss({"contrastive": {"squared": False}}),
     {"en": ("without the squares and without ½",), "hr": ("bez kvadrata i bez faktora ½",)}),
    ("contrastive loss", "convention.contrastive_half_unsquared",
     _siamese_loss({"contrastive": {"squared": False, "half": True}}),
     {"en": ("without the squares, with ½",), "hr": ("bez kvadrata, s faktorom ½",)}),
    ("similarity", "convention.retrieval_reciprocal_l1", RETRIEVAL,
     {"en": ("reciprocal of the L1 distance",), "hr": ("recipročna vrijednost L1 udaljenosti",)}),
    ("similarity", "convention.retrieval_reciprocal_l2", _merged(RETRIEVAL, {"similarity": "reciprocal_l2"}),
     {"en": ("reciprocal of the L2 distance",), "hr": ("recipročna vrijednost L2 udaljenosti",)}),
    ("similarity", "convention.retrieval_negative_l1", _merged(RETRIEVAL, {"similarity": "negative_l1"}),
     {"en": ("negative L1 distance",), "hr": ("negativna L1 udaljenost",)}),
    ("similarity", "convention.retrieval_negative_l2", _merged(RETRIEVAL, {"similarity": "negative_l2"}),
     {"en": ("negative L2 distance",), "hr": ("negativna L2 udaljenost",)}),
    ("similarity", "convention.retrieval_dot", _merged(RETRIEVAL, {"similarity": "dot"}),
     {"en": ("dot product",), "hr": ("skalarni produkt",)}),
    ("similarity", "convention.retrieval_cosine", _merged(RETRIEVAL, {"similarity": "cosine"}),
     {"en": ("cosine similarity",), "hr": ("kosinusna sličnost",)}),
    ("thresholds", "convention.retrieval_thresholds", RETRIEVAL,
     {"en": ("threshold is put on every item",), "hr": ("Prag postavljamo na svaki podatak",)}),
    ("thresholds", "convention.retrieval_thresholds_grouped", _merged(RETRIEVAL, {"ties": "grouped"}),
     {"en": ("threshold is put on every distinct similarity",),
      "hr": ("Prag postavljamo na svaku različitu vrijednost sličnosti",)}),
    ("loss over time", "convention.loss_over_last", RNN,
     {"en": ("Only the last step carries a loss",), "hr": ("Gubitak ima samo posljednji korak",)}),
    ("loss over time", "convention.loss_over_sum", _merged(RNN, {"loss_over": "sum", "targets": [[0], [1]]}),
     {"en": ("summed over all time steps",), "hr": ("zbroj po svim vremenskim koracima",)}),
    ("rnn activation", "convention.rnn", RNN,
     {"en": ("Plain recurrent cell", "f = tanh"), "hr": ("Obična povratna ćelija", "f = tanh")}),
    ("rnn activation", "convention.rnn", _merged(RNN, {"cell": {"rnn": {"activation": "relu"}}}),
     {"en": ("Plain recurrent cell", "f = relu"), "hr": ("Obična povratna ćelija", "f = relu")}),
    ("gated cell", "convention.lstm", GATED,
     {"en": ("LSTM", "gate order i, f, g, o"), "hr": ("LSTM", "poredak vrata i, f, g, o")}),
    ("gated cell", "convention.gru",
     {**GATED, "cell": {"gru": {"W_ih": [[1], ["-1/2"], ["1/2"]], "W_hh": [["1/2"], [1], [-1]]}}},
     {"en": ("GRU", "gate order r, z, n", "reset gate is applied after the matrix product"),
      "hr": ("GRU", "poredak vrata r, z, n", "primjenjuju se nakon množenja matricom")}),
    ("weights layout", None, _activation("tanh"), None),
    ("weights layout", "convention.weights_in_out",
     _merged(_activation("tanh"), {"conventions": {"weights": "in_out"},
                                   "model": [{"linear": {"name": "fc1", "W": [[1, 2], [-1, 1]], "b": [0, 1]}}, "tanh",
                                             {"linear": {"name": "fc2", "W": [[1], [1]], "b": [0]}}]}),
     {"en": ("Weights stored input × output",), "hr": ("Težine su spremljene kao ulaz × izlaz",)}),
    ("sgd", "optim.convention.sgd", _optimizer({"sgd": {"lr": "1/10"}}),
     {"en": ("Gradient descent without momentum",), "hr": ("Gradijentni spust bez zamaha",)}),
    ("sgd", "optim.convention.sgd_pytorch", _optimizer({"sgd": {"lr": "1/10", "momentum": "1/2"}}),
     {"en": ("SGD with momentum as in PyTorch", "v ← μv + (1 − τ)g", "θ ← θ − ηv"),
      "hr": ("SGD sa zamahom kao u PyTorchu", "v ← μv + (1 − τ)g", "θ ← θ − ηv")}),
    ("sgd", "optim.convention.sgd_ema",
     _optimizer({"sgd": {"lr": "1/10", "momentum": "1/2"}}, conventions={"momentum": "ema"}),
     {"en": ("exponential moving average", "v ← βv + (1 − β)g"),
      "hr": ("eksponencijalni pomični prosjek", "v ← βv + (1 − β)g")}),
    ("sgd", "optim.convention.sgd_velocity",
     _optimizer({"sgd": {"lr": "1/10", "momentum": "1/2"}}, conventions={"momentum": "velocity"}),
     {"en": ("Momentum as a velocity", "v ← μv − ηg", "θ ← θ + v"),
      "hr": ("Zamah kao brzina", "v ← μv − ηg", "θ ← θ + v")}),
    ("sgd nesterov", "optim.convention.nesterov", _optimizer({"sgd": {"lr": "1/10", "momentum": "1/2", "nesterov": True}}),
     {"en": ("Nesterov momentum", "θ ← θ − η(g + μv)"), "hr": ("Nesterovljevim zamahom", "θ ← θ − η(g + μv)")}),
    ("sgd nesterov", "optim.convention.nesterov_ema",
     _optimizer({"sgd": {"lr": "1/10", "momentum": "1/2", "nesterov": True}}, conventions={"momentum": "ema"}),
     {"en": ("Nesterov momentum", "exponential moving average", "θ ← θ − η(βv + (1 − β)g)"),
      "hr": ("Nesterovljev zamah", "eksponencijalni pomični prosjek", "θ ← θ − η(βv + (1 − β)g)")}),
    ("sgd nesterov", "optim.convention.nesterov_velocity",
     _optimizer({"sgd": {"lr": "1/10", "momentum": "1/2", "nesterov": True}}, conventions={"momentum": "velocity"}),
     {"en": ("Nesterov momentum as a velocity", "θ ← θ + μv − ηg"),
      "hr": ("Nesterovljev zamah kao brzina", "θ ← θ + μv − ηg")}),
    ("adam", "optim.convention.adam", _optimizer({"adam": {"lr": "1/10"}}),
     {"en": ("Adam as in PyTorch", "bias-corrected moments"), "hr": ("Adam kao u PyTorchu", "s korekcijom pristranosti")}),
    ("adam without bias correction", "optim.convention.adam_no_bias_correction",
     _optimizer({"adam": {"lr": "1/10"}}, conventions={"bias_correction": False}),
     {"en": ("Adam without bias correction",), "hr": ("Adam bez korekcije pristranosti",)}),
    ("adam without bias correction", "optim.convention.adamw_no_bias_correction",
     _optimizer({"adamw": {"lr": "1/10"}}, conventions={"bias_correction": False}),
     {"en": ("AdamW without bias correction",), "hr": ("AdamW bez korekcije pristranosti",)}),
    ("adam", "optim.convention.adamw", _optimizer({"adamw": {"lr": "1/10"}}),
     {"en": ("AdamW", "decoupled weight decay"), "hr": ("AdamW", "odvojeno opadanje težina")}),
    ("adam", "optim.convention.adagrad", _optimizer({"adagrad": {"lr": "1/10"}}),
     {"en": ("Adagrad", "r ← r + g ⊙ g"), "hr": ("Adagrad", "r ← r + g ⊙ g")}),
    ("adam", "optim.convention.rmsprop", _optimizer({"rmsprop": {"lr": "1/10"}}),
     {"en": ("RMSprop", "r ← αr + (1 − α)g ⊙ g"), "hr": ("RMSprop", "r ← αr + (1 − α)g ⊙ g")}),
    ("clipping", "optim.convention.clip_norm_pytorch",
     _optimizer({"sgd": {"lr": "1/10"}}, clip_grad_norm={"max_norm": 1}),
     {"en": ("total norm", "(‖g‖ + 10⁻⁶)"), "hr": ("ukupnoj normi", "(‖g‖ + 10⁻⁶)")}),
    ("clipping", "optim.convention.clip_norm_exact",
     _optimizer({"sgd": {"lr": "1/10"}}, clip_grad_norm={"max_norm": 1}, conventions={"clip_norm": "exact"}),
     {"en": ("total norm", "c/‖g‖"), "hr": ("ukupnoj normi", "c/‖g‖")}),
    ("clipping", "optim.convention.clip_value", _optimizer({"sgd": {"lr": "1/10"}}, clip_grad_value={"clip_value": 1}),
     {"en": ("Every gradient entry is clipped to [−c, c]",), "hr": ("Svaki element gradijenta podrezuje se na [−c, c]",)}),
]
AVG_POOL = {
    "id": "w_avg", "model": [{"avg_pool2d": {"name": "pool1", "kernel_size": 2, "stride": 2, "padding": 1}}, "flatten",
                             {"linear": {"name": "fc1", "W": [[1, 1, 1, 1]], "b": [0]}}],
    "loss": "mse", "data": {"x": [[[1, 2], [3, 4]]], "y": [0]}, "tasks": [{"gradient": {"wrt": ["x"]}}],
}
L1 = _merged(_activation("tanh"), {"loss": "l1"})
CONVENTIONS += [
    ("average-pool padding", "convention.avg_pool_pad_included", AVG_POOL,
     {"en": ("padded zeros count", "divided by the kernel size"), "hr": ("nadopunjene nule se broje", "veličinom jezgre")}),
    ("average-pool padding", "convention.avg_pool_pad_excluded",
     _merged(AVG_POOL, {"model": [{"avg_pool2d": {"name": "pool1", "kernel_size": 2, "stride": 2, "padding": 1,
                                                  "count_include_pad": False}}, *AVG_POOL["model"][1:]]}),
     {"en": ("only the inputs a window covers count",), "hr": ("broje se samo ulazi koje prozor pokriva",)}),
    ("L1 at 0", "convention.l1_at_zero", L1,
     {"en": ("derivative of |d| at d = 0", "taken to be 0"), "hr": ("Derivaciju od |d| u d = 0", "uzimamo kao 0")}),
    ("L1 at 0", "convention.l1_at_zero", _merged(L1, {"loss": {"l1": {"grad_at_zero": 1}}}),
     {"en": ("derivative of |d| at d = 0", "taken to be 1"), "hr": ("Derivaciju od |d| u d = 0", "uzimamo kao 1")}),
]

ATTENTION = {
    "id": "w_attention",
    "model": [{"attention": {"name": "attn", "W_q": [[1, 0], [0, 1]], "W_k": [[1, 1], [0, 1]], "W_v": [[1, 0], [0, 2]]}}],
    "loss": "mse", "data": {"x": [[1, 0], [0, 1]], "y": [[1, 0], [0, 1]]}, "tasks": [{"gradient": {"wrt": ["attn.W_q"]}}],
}
EMBEDDING = {
    "id": "w_embedding",
    "model": [{"embedding": {"name": "emb", "W": [[1, -1], [0, 3]]}}, "global_max_pool"],
    "loss": "mse", "data": {"x": 1, "y": 2}, "tasks": [{"gradient": {"wrt": ["emb.W"]}}],
}
COUNT = {"id": "w_count", "kind": "counting",
         "architectures": [{"layers": [{"linear": {"in_features": 3, "out_features": 5}}]}]}
IN_OUT = {"conventions": {"weights": "in_out"}}
CONV_LAYERS = _merged(CONV, {"model": CONV["model"][:3], "loss": None, "tasks": ["forward"]})
CONVENTIONS += [
    ("attention layout", None, ATTENTION, None),
    ("attention layout", "convention.attention_in_out", _merged(ATTENTION, IN_OUT),
     {"en": ("projection weights stored input × output",), "hr": ("projekcija pažnje spremljene su kao ulaz × izlaz",)}),
    ("kernel layout", None, CONV_LAYERS, None),
    ("kernel layout", "convention.kernels_in_out", _merged(CONV_LAYERS, IN_OUT),
     {"en": ("kernels keep PyTorch's layout",), "hr": ("zadržavaju raspored iz PyTorcha",)}),
    ("embedding layout", None, EMBEDDING, None),
    ("embedding layout", "convention.embedding_in_out", _merged(EMBEDDING, IN_OUT),
     {"en": ("one row per token", "input × output already"), "hr": ("jedan redak po tokenu", "već ulaz × izlaz")}),
    ("counting layout", None, COUNT, None),
    ("counting layout", "convention.counting_in_out", _merged(COUNT, IN_OUT),
     {"en": ("Weight matrices stored input × output",), "hr": ("Matrice težina spremljene su kao ulaz × izlaz",)}),
]

# Convention sentences that state no choice between alternatives (a fact of the op, a parameter's
# value, a name), so no pair of renderings can disagree about them; every other one needs a row.
STATED_WITHOUT_ALTERNATIVE = {
    "convention.batchnorm_eval", "convention.batchnorm_running", "convention.bce_with_logits",
    "convention.bidirectional_rnn", "convention.class_weights", "convention.counting_trainable",
    "convention.cross_entropy_options_gradient", "convention.distillation", "convention.dropout_eval",
    "convention.elu", "convention.embedding_padding", "convention.fused_binary_cross_entropy",
    "convention.fused_cross_entropy", "convention.huber", "convention.kl_div", "convention.layernorm",
    "convention.leaky_relu", "convention.margin_default", "convention.metric_eps", "convention.metric_norm",
    "convention.retrieval_ap", "convention.retrieval_curve_start", "convention.retrieval_ties",
    "convention.retrieval_zero_distance", "convention.rnn_two_biases", "convention.gated_one_bias",
    "convention.no_bias", "convention.rnn_units", "convention.sgd", "convention.siamese_reduction_mean",
    "convention.siamese_reduction_none", "convention.siamese_reduction_sum", "convention.siamese_shared",
    "convention.smooth_l1", "convention.softplus", "convention.stacked_rnn", "convention.triplet_no_eps",
    "convention.triplet_squared", "convention.affine_defaults", "convention.zero_biases", "convention.linear_no_bias",
}


# Renderings that state two rules at once, because the engine lists a modifier's sentence after the
# base rule's instead of in its place (engine/optim/sgd.py and adam.py, conventions_used): left to
# the engine, strict so that the fix is noticed.
CONTRADICTIONS = {
}


def _yaml(spec: dict) -> str:
    return yaml.safe_dump(spec, allow_unicode=True, sort_keys=False)


def _rows(table, key_of):
    """The rows as test parameters; a row with a known contradiction is a strict xfail."""
    return [pytest.param(row, id=f"{key_of(row)}-{i}",
                         marks=[pytest.mark.xfail(strict=True, reason=CONTRADICTIONS[key_of(row)])]
                         if key_of(row) in CONTRADICTIONS else [])
            for i, row in enumerate(table)]


def _rivals(table, row) -> list:
    """The other rows of the row's topic that have words (a topic has at least two rows)."""
    others = [other for other in table if other[0] == row[0] and other is not row]
    assert others, f"topic {row[0]!r} has no alternative"
    return [other for other in others if other[3] is not None]


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("row", _rows(CONVENTIONS, lambda r: r[1] or r[0]))
def test_convention_sentence_names_the_convention_used(row, lang):
    """Each row's spec states its convention (in words that carry it) and no alternative of the topic;
    a row without a key is a spec that states none of them."""
    topic, key, spec, words = row
    stated = _rendered(_yaml(spec), lang)["conventions"]
    if key is not None:
        assert key in _keys_of(_solved(_yaml(spec)).conventions), f"{key} not stated"
        assert named_in(stated, words[lang]), (lang, words[lang], stated)
    wrong = [r[1] for r in _rivals(CONVENTIONS, row) if r[3] != words and named_in(stated, r[3][lang])]
    assert not wrong, f"{key or topic} ({lang}) also names {wrong}: {stated}"


def test_every_convention_sentence_with_an_alternative_has_rows():
    keys = {k for k in catalog("en") if k.startswith(("convention.", "optim.convention."))}
    assert not STATED_WITHOUT_ALTERNATIVE - keys, "exempted keys that no longer exist"
    assert keys - STATED_WITHOUT_ALTERNATIVE == {row[1] for row in CONVENTIONS if row[1]}


# ----- STEPS: (topic, phrase keys, spec, {lang: words}) --------------------------------------------
# The words of each row must appear in the step texts; the words of every other row of the topic not.
STEPS = [
    ("activation", ("forward.sigmoid", "backward.sigmoid"), _activation("sigmoid"),
     {"en": ("Sigmoid activation", "Backward pass through the sigmoid"), "hr": ("Aktivacija sigmoidom", "kroz sigmoidu")}),
    ("activation", ("forward.tanh", "backward.tanh"), _activation("tanh"),
     {"en": ("Tanh activation", "Backward pass through tanh"),
      "hr": ("Aktivacija tangensom hiperbolnim", "kroz tangens hiperbolni")}),
    ("activation", ("forward.relu", "backward.relu"), _activation("relu"),
     {"en": ("ReLU activation", "through the ReLU activation"), "hr": ("Aktivacija zglobnicom", "aktivaciju zglobnicom")}),
    ("activation", ("forward.leaky_relu", "backward.leaky_relu"), _activation("leaky_relu"),
     {"en": ("LeakyReLU activation", "through the LeakyReLU activation"),
      "hr": ("Aktivacija propusnom zglobnicom", "kroz propusnu zglobnicu")}),
    ("activation", ("forward.elu", "backward.elu"), _activation("elu"),
     {"en": ("ELU activation", "through the ELU activation"), "hr": ("eksponencijalnom linearnom jedinicom", "aktivaciju ELU")}),
    ("activation", ("forward.gelu", "backward.gelu"), _activation("gelu"),
     {"en": ("GELU activation", "through the GELU activation"), "hr": ("Aktivacija GELU", "aktivaciju GELU")}),
    ("activation", ("forward.softplus", "backward.softplus"), _activation("softplus"),
     {"en": ("Softplus activation", "its derivative is the sigmoid"),
      "hr": ("Aktivacija mekom zglobnicom", "derivacija sigmoida")}),
    ("pooling", ("forward.max_pool2d", "backward.max_pool2d"), POOL,
     {"en": ("Max pooling", "goes to its maximum"), "hr": ("Sažimanje maksimumom", "ide njegovom maksimumu")}),
    ("pooling", ("forward.avg_pool2d", "backward.avg_pool2d"), AVG_POOL,
     {"en": ("Average pooling", "shared equally by its entries"),
      "hr": ("Sažimanje prosjekom", "jednako se dijeli na sve njegove elemente")}),
    ("global pooling", ("forward.global_avg_pool", "backward.global_avg_pool"), CONV,
     {"en": ("Global average pooling", "through global average pooling"),
      "hr": ("Globalno sažimanje prosjekom", "kroz globalno sažimanje prosjekom")}),
    ("global pooling", ("forward.global_max_pool", "backward.global_max_pool"),
     _merged(CONV, {"model": [CONV["model"][0], "relu", "global_max_pool", *CONV["model"][3:]]}),
     {"en": ("Global max pooling", "goes to its maximum"),
      "hr": ("Globalno sažimanje maksimumom", "ide njezinu maksimumu")}),
    ("batchnorm backward", ("backward.batchnorm_full",), BATCHNORM,
     {"en": ("including the batch statistics",), "hr": ("uključujući statistike grupe",)}),
    ("batchnorm backward", ("backward.batchnorm_constants",),
     _merged(BATCHNORM, {"conventions": {"batchnorm_backward": "constants"}}),
     {"en": ("treated as constants",), "hr": ("smatramo konstantama",)}),
    ("minibatch", ("loss.batch_mean", "update.parameter"), _activation("tanh"),
     {"en": ("mean over examples", "averaged gradient"), "hr": ("prosjek po podacima", "uprosječenim gradijentom")}),
    ("minibatch", ("loss.batch_sum", "update.parameter_summed"),
     _merged(_activation("tanh"), {"tasks": ["forward", {"train_step": {"lr": "1/2", "reduction": "sum"}}]}),
     {"en": ("sum over examples", "summed gradient"), "hr": ("zbroj po podacima", "zbrojem gradijenata")}),
    ("label smoothing", ("loss.label_smoothing_pytorch",), SMOOTHING,
     {"en": ("ε/K goes to every class",), "hr": ("ε/K ide svakom razredu",)}),
    ("label smoothing", ("loss.label_smoothing_wrong_classes",),
     _merged(SMOOTHING, {"loss": {"cross_entropy": {"label_smoothing": "1/10",
                                                    "label_smoothing_convention": "wrong_classes"}}}),
     {"en": ("onto the wrong classes", "ε/(K − 1)"), "hr": ("na pogrešne razrede", "ε/(K − 1)")}),
    ("regression loss", ("loss.mse", "backward.mse"), _activation("tanh"),
     {"en": ("Squared loss", "squared loss"), "hr": ("Kvadratni gubitak", "kvadratnog gubitka")}),
    ("regression loss", ("loss.l1", "backward.l1"), L1,
     {"en": ("Absolute (L1) loss", "Gradient of the L1 loss"), "hr": ("Apsolutni gubitak (L1)", "Gradijent gubitka L1")}),
    ("regression loss", ("loss.huber", "backward.huber"), _merged(L1, {"loss": {"huber": {"delta": 1}}}),
     {"en": ("Huber loss", "quadratic where |o − y| < δ"), "hr": ("Huberov gubitak", "kvadratni gdje je |o − y| < δ")}),
    ("regression loss", ("loss.smooth_l1", "backward.smooth_l1"), _merged(L1, {"loss": {"smooth_l1": {"beta": 1}}}),
     {"en": ("Smooth L1 loss", "quadratic where |o − y| < β"),
      "hr": ("Zaglađeni gubitak L1", "kvadratni gdje je |o − y| < β")}),
    ("adam", ("optim.bias_correction", "optim.update"), _optimizer({"adam": {"lr": "1/10", "weight_decay": "1/10"}}),
     {"en": ("Bias correction of the moments", "weight decay term λθ added"),
      "hr": ("Korekcija pristranosti momenata", "dodanim članom opadanja težina λθ")}),
    ("adam", ("optim.update_decoupled",), _optimizer({"adamw": {"lr": "1/10", "weight_decay": "1/10"}}),
     {"en": ("Bias correction of the moments", "decoupled weight decay"),
      "hr": ("Korekcija pristranosti momenata", "odvojenim opadanjem težina")}),
    ("momentum", ("optim.momentum_first",), _optimizer({"sgd": {"lr": "1/10", "momentum": "1/2"}}),
     {"en": ("at the first step it is the gradient itself",), "hr": ("u prvom koraku jednak je gradijentu",)}),
    ("momentum", (), _optimizer({"sgd": {"lr": "1/10", "momentum": "1/2"}}, conventions={"momentum": "ema"}), None),
]


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("row", _rows(STEPS, lambda r: (r[1] or (r[0],))[0]))
def test_step_texts_name_the_op_used_and_not_its_rivals(row, lang):
    """Each row's spec emits its step phrases, whose rendered texts hold the row's words and none of
    its rivals' (words two rows share excepted); a row without words is a spec that uses none."""
    topic, keys, spec, words = row
    emitted = _step_keys(_solved(_yaml(spec)))
    assert set(keys) <= emitted, f"{set(keys) - emitted} not emitted"
    texts = _rendered(_yaml(spec), lang)["steps"]
    own = words[lang] if words else ()
    for word in own:
        assert named_in(texts, (word,)), (lang, word, texts)
    for rival in _rivals(STEPS, row):
        wrong = [w for w in rival[3][lang] if w not in own and named_in(texts, (w,))]
        assert not wrong, f"{topic}: {keys} ({lang}) also reads as {rival[1]}: {wrong}"
