"""Every catalogue entry diagnoses a deliberately wrong answer (values derived by hand, see comments).

Each case: a problem (a file of problems/ with optional top-level overrides, or a small spec here),
a result name, the wrong answer a student would write under that convention or mistake, and the
catalogue entry that must be named.  A test per entry is enforced below.
"""

import json

import pytest
import yaml
from typer.testing import CliRunner

from examsolver.cli import app
from examsolver.diagnose.catalogue import CATALOGUE
from examsolver.verify import verify_file

from conftest import PROBLEMS

TINY_RELU = """
id: t_relu
model:
  - linear: {name: fc1, W: [[1, -1]], b: [0]}
  - relu
  - linear: {name: fc2, W: [[2]], b: [1]}
loss: {mse: {half: HALF}}
data: {x: [1, 1], y: [0]}
conventions: {relu_grad_at_zero: RELU0}
tasks:
  - gradient: {wrt: [fc1.W]}
"""
# h = 1 − 1 = 0 exactly, o = 2·0 + 1 = 1, y = 0.  L = (o − y)² = 1 (½(o − y)² = 1/2);
# ∂L/∂o = 2, ∂L/∂r = 4, ∂L/∂W1 = 4·ReLU′(0)·[1, 1]: 0 with ReLU′(0) = 0, [[4, 4]] with 1.

POOL = """
id: t_pool
model:
  - max_pool2d: {name: pool1, kernel_size: 2, stride: 2}
  - flatten
  - linear: {name: fc1, W: [[3]], b: [0]}
loss: mse
data: {x: [[[1, 1], [0, 0]]], y: [0]}
conventions: {maxpool_ties: TIES}
tasks:
  - gradient: {wrt: [x]}
"""
# The window [[1, 1], [0, 0]] has two maxima; o = 3, ∂L/∂o = 6, ∂L/∂m = 18: all of it to the
# first maximum → [[18, 0], [0, 0]], split equally → [[9, 9], [0, 0]].

RANKING = """
id: t_ties
kind: retrieval
X: XS
y: LABELS
query: {x: [0, 0], y: 1}
similarity: reciprocal_l1
ties: RULE
"""
# Items 1 and 2 are both at L1 distance 1 (a tie), item 3 at 4.  With y = [1, 0, 1] the relevant one
# of the tied pair is first by index: AP = ½·1 + ½·2/3 = 5/6 (relevant first, as optimistic),
# 7/12 with the irrelevant one first (½·½ + ½·2/3); grouped under one threshold the P column is
# [1/2, 2/3].  With y = [0, 1, 1] the index order puts the irrelevant item first: AP = 7/12.

CASES = [
    # name, problem, overrides, result, wrong answer
    ("relu_grad_at_zero_one", TINY_RELU.replace("HALF", "false").replace("RELU0", "0"), {}, "fc1.W.grad", [[4, 4]]),
    ("relu_grad_at_zero_zero", TINY_RELU.replace("HALF", "false").replace("RELU0", "1"), {}, "fc1.W.grad", [[0, 0]]),
    ("mse_extra_half", TINY_RELU.replace("HALF", "false").replace("RELU0", "0"), {}, "loss", "0.5"),
    ("mse_missing_half", TINY_RELU.replace("HALF", "true").replace("RELU0", "0"), {}, "loss", 1),
    ("maxpool_ties_split", POOL.replace("TIES", "first"), {}, "x.grad", [[[9, 9], [0, 0]]]),
    ("maxpool_ties_first", POOL.replace("TIES", "split"), {}, "x.grad", [[[18, 0], [0, 0]]]),
    # 2022 task 3 with flipped kernels [−1, 0, 1], [−1, 1, 1]: h1 = [[−2, 1, −1], [−3, 3, −1]],
    # GAP of the ReLU → [1/3, 1], s = ln 2·[1/3, 2], p = [2^(1/3), 4]/(2^(1/3) + 4) ≈ [0.2395, 0.7605].
    ("true_convolution", "2022_z3", {}, "p", ["0.2395", "0.7605"]),
    ("cross_correlation", "2022_z3", {"conventions": {"convolution": "convolution"}}, "p", ["1/3", "2/3"]),
    # 2022 task 1 (slides): the full batchnorm gradient vanishes for N = 2 (normalized values are ±1
    # whatever the inputs), so W1 stays I; with statistics constant the slides' (39).
    ("batchnorm_statistics_differentiated", "2022_z1", {}, "fc1.W.updated", [[1, 0], [0, 1]]),
    ("batchnorm_statistics_constant", "2022_z1", {"conventions": {"batchnorm_backward": "full"}}, "fc1.W.updated",
     [[1.25, 0.25], [-0.25, 1.75]]),
    # deviations from the mean are ±1: Σ = 2, divided by N − 1 = 1 → 2; by N = 2 → 1.
    ("unbiased_variance", "2022_z1", {}, "bn1.var", [2, 2]),
    ("biased_variance", "2022_z1", {"model": "UNBIASED"}, "bn1.var", [1, 1]),
    # Σ of the per-example gradients (24) + (34) = [[−0.5, −0.5], [0.5, −1.5]]; I − Σ.
    ("minibatch_sum", "2022_z1", {}, "fc1.W.updated", [[1.5, 0.5], [-0.5, 2.5]]),
    ("minibatch_mean", "2022_z1", {"tasks": ["forward", {"train_step": {"lr": 1, "reduction": "sum"}}]},
     "fc1.W.updated", [[1.25, 0.25], [-0.25, 1.75]]),
    # I + ½Σ instead of I − ½Σ.
    ("update_sign", "2022_z1", {}, "fc1.W.updated", [[0.75, -0.25], [0.25, 0.25]]),
    # without the mask ∂L/∂h1 = [−0.5, −0.5] for both examples: ½([[−.5, −.5], [−.5, −.5]] + [[.5, −1.5], [.5, −1.5]])
    # = [[0, −1], [0, −1]], I − that.
    ("relu_mask_forgotten", "2022_z1", {}, "fc1.W.updated", [[1, 1], [0, 2]]),
    # W2 is updated to [1.25, 1.25] first; ∂L/∂h2 = −0.5·W2_new = −0.625 each, masked: [−0.625, 0] and
    # [0, −0.625]; ½([[−.625, −.625], [0, 0]] + [[0, 0], [.625, −1.875]]), I − that.
    ("updated_weights_in_backward", "2022_z1", {}, "fc1.W.updated", [[1.3125, 0.3125], [-0.3125, 1.9375]]),
    # the slides' (63), (65) transposed and with the opposite sign.
    ("transposed_weight_gradient", "2022_z3", {}, "conv1.W.grad", "[[6, -5], [-1, -1], [3, -3]] * ln(2)/9"),
    ("gradient_sign", "2022_z3", {}, "conv1.W.grad", "[[-6, 1, -3], [5, 1, 3]] * ln(2)/9"),
    # the kept units not doubled for p = 1/2 (textbook dropout): h3 = [−1/10, 0, 0, 1/2], [0, −1/25, 12/5, −7/100].
    ("dropout_plain", "extra_layernorm_dropout", {}, "loss", "121079/10000"),
    ("dropout_inverted", "extra_layernorm_dropout", {"conventions": {"dropout": "plain"}}, "loss", "89079/2500"),
    # GAP as a sum: h2 = [[2, 0, 1], [1, 1, 1]] (slides (44), (45)) → [3, 3].
    ("global_pool_sum", "2022_z3", {}, "h3", [3, 3]),
    # 2022 task 2: ranking [X1⁺, X3⁻, X4⁺, X2⁺]; P = [1, 1/2, 2/3, 3/4], R = [1/3, 1/3, 2/3, 1]:
    # AP = 1/3 + 2/9 + 1/4 = 29/36; interpolated 1/3·(1 + 3/4 + 3/4) = 5/6.
    ("interpolated_ap", "2022_z2", {}, "ap", "5/6"),
    ("non_interpolated_ap", "2022_z2", {}, "ap_interpolated", "29/36"),
    ("ranking_ties_optimistic", RANKING.replace("RULE", "pessimistic"), {"X": [[1, 0], [0, 1], [2, 2]], "y": [1, 0, 1]},
     "ap", "5/6"),
    ("ranking_ties_index", RANKING.replace("RULE", "optimistic"), {"X": [[1, 0], [0, 1], [2, 2]], "y": [0, 1, 1]},
     "ap", "7/12"),
    ("ranking_ties_pessimistic", RANKING.replace("RULE", "optimistic"), {"X": [[1, 0], [0, 1], [2, 2]], "y": [1, 0, 1]},
     "ap", "7/12"),
    # 2022 task 5: layer 1 (input 2, hidden 3) 4·(3·3 + 3·2 + 3) = 72, layer 2 4·(3·3 + 3·3 + 3) = 84,
    # one bias per gate 156; PyTorch's two biases 4·(9 + 6 + 6) + 4·(9 + 9 + 6) = 84 + 96 = 180.
    ("lstm_one_bias_count", "2022_z5", {}, "lstm_two_biases.params.total", 156),
    ("lstm_two_biases_count", "2022_z5", {}, "lstm_one_bias.params.total", 180),
    ("first_layer_only_count", "2022_z5", {}, "lstm_one_bias.params.total", 72),
    # extra_label_smoothing_ce with ε/(K − 1) = 1/20 on the wrong classes, 9/10 on the gold one (torch float64
    # autograd of −Σ w q log_softmax(s) with that q written out): ∂L/∂b = [21/200, −159/400, 117/400];
    # PyTorch's ε/K (the file's key) gives [31/300, −83/200, 187/600].
    ("label_smoothing_wrong_classes", "extra_label_smoothing_ce", {}, "fc.b.grad", ["21/200", "-159/400", "117/400"]),
    ("label_smoothing_pytorch", "extra_label_smoothing_ce",
     {"loss": {"cross_entropy": {"label_smoothing": "1/10", "weight": [1, 2, 1],
                                 "label_smoothing_convention": "wrong_classes"}}},
     "fc.b.grad", ["31/300", "-83/200", "187/600"]),
    ("ranking_ties_grouped", RANKING.replace("RULE", "optimistic"), {"X": [[1, 0], [0, 1], [2, 2]], "y": [1, 0, 1]},
     "precision", ["1/2", "2/3"]),
]


def _spec(tmp_path, problem: str, overrides: dict):
    """The problem as a file: a problems/ file with top-level overrides, or the text given here."""
    if "\n" in problem:
        data = yaml.safe_load(problem.replace("XS", "[[0, 0]]").replace("LABELS", "[1]"))
    else:
        data = yaml.safe_load((PROBLEMS / f"{problem}.yaml").read_text(encoding="utf-8"))
    data.pop("answers", None)
    for key, value in overrides.items():
        if value == "UNBIASED":
            data["model"][1]["batchnorm"]["variance"] = "unbiased"
        else:
            data[key] = value
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _answers(tmp_path, name, answer):
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump({"answers": {name: answer}}), encoding="utf-8")
    return path


@pytest.mark.parametrize("mistake, problem, overrides, name, answer", CASES, ids=[c[0] for c in CASES])
def test_entry_diagnoses_its_wrong_answer(tmp_path, mistake, problem, overrides, name, answer):
    report = verify_file(_spec(tmp_path, problem, overrides), answers_file=_answers(tmp_path, name, answer))
    assert not report.errors, report.errors
    (entry,) = report.entries
    assert entry.check.status == "mismatch"
    assert entry.explanation is not None and entry.explanation.exact, entry.explanation
    assert entry.explanation.mistake == mistake


def test_every_catalogue_entry_has_a_case():
    assert {e.name for e in CATALOGUE} == {c[0] for c in CASES}


def test_every_entry_has_both_phrases():
    from examsolver.locales import catalog

    for lang in ("hr", "en"):
        assert all(f"mistake.{e.name}" in catalog(lang) for e in CATALOGUE)


def test_right_answers_pass_and_need_no_explanation(tmp_path):
    spec = _spec(tmp_path, "2022_z1", {})
    report = verify_file(spec, answers_file=_answers(tmp_path, "fc1.W.updated", [[1.25, 0.25], [-0.25, 1.75]]))
    assert report.status == "pass" and report.entries[0].explanation is None


def test_unexplained_wrong_answer_gets_the_nearest_or_nothing(tmp_path):
    spec = _spec(tmp_path, "2022_z1", {})
    # [[1.5, 0.5], [-0.5, 2.4]] is not reproduced by anything; the summed update [[1.5, …, 2.5]] is nearest.
    report = verify_file(spec, answers_file=_answers(tmp_path, "fc1.W.updated", [[1.5, 0.5], [-0.5, 2.4]]))
    x = report.entries[0].explanation
    assert x is not None and not x.exact and x.mistake == "minibatch_sum"


def test_check_command_names_the_mistake_in_both_languages(tmp_path):
    spec = _spec(tmp_path, "2022_z1", {})
    answers = _answers(tmp_path, "fc1.W.updated", [[1, 1], [0, 2]])
    runner = CliRunner()
    en = runner.invoke(app, ["check", str(spec), "--answers", str(answers), "--lang", "en"], env={"COLUMNS": "200"})
    assert en.exit_code == 1, en.output
    assert "ReLU mask forgotten" in en.output
    hr = runner.invoke(app, ["check", str(spec), "--answers", str(answers), "--lang", "hr"], env={"COLUMNS": "200"})
    assert hr.exit_code == 1 and "zaboravljena maska zglobnice" in hr.output
    out = runner.invoke(app, ["check", str(spec), "--answers", str(answers), "--format", "json", "--lang", "en"])
    data = json.loads(out.stdout)
    assert data["files"][0]["entries"][0]["explanation"]["name"] == "relu_mask_forgotten"


def test_check_with_a_broken_answer_file_exits_2(tmp_path):
    spec = _spec(tmp_path, "2022_z1", {})
    bad = tmp_path / "bad.yaml"
    bad.write_text("answers: [1, 2\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["check", str(spec), "--answers", str(bad)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
