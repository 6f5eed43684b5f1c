"""The exported PyTorch check script (issue 13, item 2): it runs, and torch's autograd gives the
engine's numbers under the same names (float64 autograd vs exact).  The script is the engine's own
reading of the spec written in PyTorch, so each one is also checked against an oracle that reads the
spec itself (torch_problems.py, the problems' hand-written PyTorch runs): a convention the engine gets
wrong is written wrong into its script too, and only the oracle tells."""

from __future__ import annotations

import contextlib
import io
import json
import re
import runpy

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

import torch_problems

from examsolver.cli import app
from examsolver.pipeline import solve_file
from examsolver.render import output as out
from examsolver.render.latex import wrap_code
from examsolver.render.options import Options
from examsolver.render.torch_script import torch_script, torch_text

from conftest import PROBLEMS

SOLVED = {p.stem: solve_file(p) for p in sorted(PROBLEMS.glob("*.yaml"))}
WITH_TORCH = [pid for pid, s in SOLVED.items() if torch_script(s)]
# why the others have none: the comment written in place of the script says it
WITHOUT = {"symbolic": "derived symbolically", "counting": "counts parameters", "retrieval": "ranks given scores"}
# known gaps of the exporter, each with the reason its comment must state
GAPS = {}


# results every script must print when the solution has them: losses, distances, embeddings, objectives,
# gradients and updates
RECOMPUTED = re.compile(r"loss(\(\d+\))?|d(_ap|_an)?(\(\d+\))?|e\d+|f\(\d+\)|.*\.(grad|updated)(\(\d+\))?")


def run(script: str, tmp_path) -> dict:
    """The script run from a file in this process (one torch import for all of them: ~5× faster here than a
    python subprocess per script), its printed `name = value` lines parsed."""
    path = tmp_path / "check.py"
    path.write_text(script, encoding="utf-8")
    printed, dtype = io.StringIO(), torch.get_default_dtype()
    try:
        with contextlib.redirect_stdout(printed):
            runpy.run_path(str(path), run_name="__main__")
    finally:
        torch.set_default_dtype(dtype)                 # the script sets float64 for itself
    return {name: json.loads(value) for name, _, value in (line.partition(" = ") for line in printed.getvalue().splitlines())}


def as_float(value) -> np.ndarray:
    return np.vectorize(float, otypes=[float])(np.asarray(value, dtype=object))


def _from_yaml(pid: str):
    return lambda: torch_problems.solve(yaml.safe_load((PROBLEMS / f"{pid}.yaml").read_text(encoding="utf-8")))


def _elsewhere(module: str, function: str):
    return lambda: getattr(__import__(module), function)()


# every problem with a script, and the oracle its printed numbers are checked against
ORACLES = {
    **{pid: _from_yaml(pid) for pid in ("000_t2", "000_t5", "000_t6", "2022_z1", "2022_z3", "2022_z5",
                                        "extra_attention", "extra_conv_dilation_groups", "extra_embedding_maxpool",
                                        "extra_huber_regression", "extra_label_smoothing_ce", "extra_layernorm_dropout",
                                        "extra_lstm_bptt", "extra_residual_block")},
    "extra_bidirectional_gru": _elsewhere("test_recurrent_stacked", "bidirectional_gru_in_torch"),
    "extra_adam_quadratic": _elsewhere("test_optim", "adam_quadratic_in_torch"),
    "extra_sgd_momentum_clip": _elsewhere("test_optim", "sgd_momentum_clip_in_torch"),
}


def same_as_oracle(printed: dict, expected: dict, what: str) -> None:
    """The printed numbers agree with the oracle's (1e-9) under every name both have, and the oracle has
    every loss, distance, embedding, gradient and update the script prints."""
    unchecked = [name for name in printed if RECOMPUTED.fullmatch(name) and name not in expected]
    assert not unchecked, f"{what}: the oracle does not recompute {unchecked}"
    common = [name for name in printed if name in expected]
    assert common, f"{what}: nothing in common with the oracle"
    for name in common:
        np.testing.assert_allclose(np.asarray(printed[name], dtype=float).reshape(np.shape(expected[name])),
                                   expected[name], rtol=1e-9, atol=1e-9, err_msg=f"{what}: {name} (oracle)")


def test_the_problems_with_a_script_are_those_with_an_oracle():
    assert sorted(WITH_TORCH) == sorted(ORACLES)


@pytest.mark.parametrize("pid", list(SOLVED))
def test_the_script_gives_the_engines_and_the_oracles_numbers(pid, tmp_path):
    """Every problem: its script's numbers are the engine's (1e-9) and the oracle's, under the results' names,
    and it prints every loss, gradient and update the solution has; without a script, the comment names
    the reason."""
    solution = SOLVED[pid]
    script = torch_script(solution)
    if script is None:
        reason = torch_text(solution)
        kind = solution.document.data.get("kind", "network")
        assert GAPS.get(pid, WITHOUT.get(kind, "\0")) in reason, reason
        return
    printed = run(script, tmp_path)
    for name, value in printed.items():
        assert name in solution.results, f"the script prints {name}, which is no result"
        np.testing.assert_allclose(np.asarray(value, dtype=float), as_float(solution.results[name]),
                                   rtol=1e-9, atol=1e-9, err_msg=name)
    missing = [name for name in solution.results if RECOMPUTED.fullmatch(name) and name not in printed]
    assert not missing, f"not recomputed by the script: {missing}"
    same_as_oracle(printed, ORACLES[pid](), pid)


def test_a_wrapped_listing_still_runs(tmp_path):
    """Slides break long code lines inside brackets: copied from the PDF, the script still runs."""
    for pid in ("2022_z3", "extra_lstm_bptt"):
        script = torch_script(SOLVED[pid])
        assert run(wrap_code(script, 60), tmp_path) == run(script, tmp_path)


def test_format_torch_and_the_closing_frame():
    result = CliRunner().invoke(app, ["solve", str(PROBLEMS / "2022_z3.yaml"), "--format", "torch"])
    assert result.exit_code == 0 and "F.conv1d" in result.stdout
    slides = out.render_document([SOLVED["2022_z3"]], "beamer", "hr")
    article = out.render_document([SOLVED["2022_z3"]], "tex", "hr")
    assert "Kod u torchu za provjeru" in slides and "torch.relu" in slides          # on in slides, as the 2022 slides
    assert "torch.relu" not in article
    assert "torch.relu" in out.render_document([SOLVED["2022_z3"]], "tex", "en", options=Options(torch=True))
    assert "no PyTorch check: it ranks given scores" in out.render_document([SOLVED["2022_z2"]], "torch", "en")
    for pid, call in (("extra_lstm_bptt", "torch.nn.LSTM"), ("000_t6", "vector_norm"),
                      ("extra_adam_quadratic", "torch.optim.Adam")):
        assert call in out.render_document([SOLVED[pid]], "beamer", "en"), pid       # every kind's script closes its slides


# one network per loss and option set (issue 10): the exported script's PyTorch loss gives the engine's numbers
LOSS_SPECS = {
    "cross_entropy_smoothing_weight": ("{cross_entropy: {label_smoothing: 1/10, weight: [1, 2]}}", "softmax", "1", "0"),
    "cross_entropy_wrong_classes": ("{cross_entropy: {label_smoothing: 1/5, label_smoothing_convention: wrong_classes}}",
                                    "softmax", "1", "0"),
    "cross_entropy_distribution": ("{cross_entropy: {label_smoothing: 1/4, weight: [3, 1]}}", "softmax", "[1/4, 3/4]",
                                   "[1, 0]"),
    "nll": ("{nll: {weight: [1/2, 2]}}", None, "1", "0"),
    "bce_with_logits": ("binary_cross_entropy_with_logits", None, "[1, 0]", "[1/2, 1]"),
    "bce_with_logits_weights": ("{binary_cross_entropy_with_logits: {weight: [2, 1], pos_weight: [3, 1/2]}}", None,
                                "[1, 0]", "[0, 1]"),
    "l1": ("l1", None, "[1/2, 3]", "[1, 1]"),
    "smooth_l1": ("{smooth_l1: {beta: 1/2}}", None, "[1/2, 3]", "[1, 1]"),
    "huber": ("{huber: {delta: 2}}", None, "[1/2, 3]", "[1, 1]"),
    "kl_div": ("kl_div", None, "[1/4, 3/4]", "[1/2, 1/2]"),
    "kl_div_log_target": ("{kl_div: {log_target: true}}", None, "[-1, -2]", "[-1/2, -1]"),
    "distillation": ("{distillation: {temperature: 2}}", None, "[1, 0]", "[2, -1]"),
}


@pytest.mark.parametrize("name", list(LOSS_SPECS))
def test_each_loss_has_a_script_with_the_engines_numbers(name, tmp_path):
    loss, last, y1, y2 = LOSS_SPECS[name]
    path = tmp_path / f"{name}.yaml"
    text = f"""id: {name}
title: {{hr: t, en: t}}
model:
  - linear: {{name: fc, W: [[1, -1], [1/2, 2]], b: [0, 1/2]}}
{f"  - {last}" if last else ""}
loss: {loss}
data:
  - {{x: [1, 2], y: {y1}}}
  - {{x: [-1, 1/2], y: {y2}}}
tasks:
  - gradient: {{wrt: [fc.W, fc.b], method: batch}}
"""
    path.write_text(text, encoding="utf-8")
    solution = solve_file(path)
    script = torch_script(solution)
    assert script is not None
    printed = run(script, tmp_path)
    assert {"loss", "fc.W.grad", "fc.b.grad"} <= set(printed)
    for key, value in printed.items():
        exact = np.vectorize(float, otypes=[float])(np.asarray(solution.results[key], dtype=object))
        np.testing.assert_allclose(np.asarray(value, dtype=float), exact, rtol=1e-12, atol=1e-12, err_msg=key)
    same_as_oracle(printed, torch_problems.solve(yaml.safe_load(text)), name)


# ----- what no file in problems/ exercises: each spec's script gives the engine's numbers -------------------
RESIDUAL = {"model": [{"linear": {"name": "fc1", "W": [[1, 0], [1, -1]], "b": [0, 1]}}, {"relu": {"name": "h"}},
                      {"add": {"name": "r", "inputs": ["h", "x"]}},
                      {"linear": {"name": "fc2", "W": [["1/2", 2], [1, -1]], "b": [0, "1/3"]}}],
            "loss": "mse", "data": [{"x": [1, 2], "y": [0, 1]}, {"x": ["1/2", -1], "y": [1, 0]}]}
TRAIN_NET = {"model": [{"linear": {"name": "fc1", "W": [[1, 0], [1, -1]], "b": [0, 1]}}, {"relu": {"name": "h"}},
                       {"linear": {"name": "fc2", "W": [[1, 2]], "b": [0]}}],
             "loss": "mse", "data": [{"x": [1, 2], "y": [1]}, {"x": [0, -1], "y": [0]}]}
GRAPH = {"model": [{"linear": {"name": "a", "W": [[1, -1], ["1/2", 2]], "b": [0, 1]}},
                   {"linear": {"name": "b", "inputs": ["x"], "W": [[2, 1], [-1, "1/3"]], "b": [1, 0]}},
                   {"mul": {"name": "m", "inputs": ["a", "b"]}},
                   {"concat": {"name": "c", "inputs": ["m", "x"]}},
                   {"tanh": {"name": "t"}},
                   {"linear": {"name": "fc", "W": [[1, -1, "1/2", 2]], "b": [0]}}],
         "loss": {"mse": {"half": True}}, "data": [{"x": [1, "1/2"], "y": [1]}, {"x": [-1, 2], "y": [0]}]}
SPECS = {
    "residual_per_example_x_and_node": {**RESIDUAL, "tasks": [{"gradient": {"wrt": ["fc1.W", "x", "h", "r"]}}]},
    "residual_sum_batch": {**RESIDUAL, "tasks": [{"gradient": {"wrt": ["fc1.b", "x", "h"], "method": "batch",
                                                               "reduction": "sum"}}]},
    "graph_mul_concat_half_mse": {**GRAPH, "tasks": [{"gradient": {"wrt": ["a.W", "b.b", "x", "m"],
                                                                   "method": "batch"}}]},
    "matmul": {"model": [{"linear": {"name": "u", "W": [[1, 2], [0, -1], [1, 1]], "b": [0, 0, 1]}},
                         {"matmul": {"name": "q", "inputs": ["u", "u"]}}],
               "loss": "sum", "data": [{"x": [1, -1], "y": 0}, {"x": [2, "1/2"], "y": 0}],
               "tasks": [{"gradient": {"wrt": ["u.W", "x"], "method": "batch"}}]},
    "upstream": {"model": [{"linear": {"name": "fc1", "W": [[1, 2], [3, -1]], "b": [0, 0]}}, {"tanh": {"name": "h"}}],
                 "data": {"x": [1, -1]},
                 "tasks": [{"gradient": {"wrt": ["fc1.W", "x"], "upstream": {"fc1": ["1/2", -2]}}}]},
    "upstream_batch": {**RESIDUAL, "loss": None,
                       "tasks": [{"gradient": {"wrt": ["fc1.W", "x", "h"], "upstream": {"r": [[1, 0], [-1, 2]]}}}]},
    "relu_grad_one_at_zero": {"model": [{"linear": {"name": "fc", "W": [[1, -1], [1, 1]], "b": [0, 0]}},
                                        {"relu": {"name": "h"}}, {"linear": {"name": "out", "W": [[2, -1]], "b": [1]}}],
                              "loss": "mse", "conventions": {"relu_grad_at_zero": 1},
                              "data": [{"x": [1, 1], "y": [0]}, {"x": [2, -1], "y": [1]}],
                              "tasks": [{"gradient": {"wrt": ["fc.W", "fc.b"]}}]},
    "train_step_sum": {**TRAIN_NET, "tasks": [{"train_step": {"lr": "1/2", "reduction": "sum"}}]},
    "one_example_x": {**TRAIN_NET, "data": {"x": [1, 2], "y": [1]}, "tasks": [{"gradient": {"wrt": ["fc2.W", "x", "h"]}}]},
    "train_sgd_momentum": {**TRAIN_NET, "tasks": [{"train": {"optimizer": {"sgd": {"lr": "1/10", "momentum": "9/10"}},
                                                             "steps": 3}}]},
    "train_adam_clip_norm": {**TRAIN_NET, "tasks": [{"train": {"optimizer": {"adam": {"lr": "1/10"}}, "steps": 2,
                                                               "clip_grad_norm": {"max_norm": 1}}}]},
    "train_rmsprop_sum": {**TRAIN_NET, "tasks": [{"train": {"optimizer": {"rmsprop": {"lr": "1/10", "momentum": "1/2",
                                                                                      "centered": True}},
                                                            "steps": 2, "reduction": "sum"}}]},
    "train_adagrad": {**TRAIN_NET, "tasks": [{"train": {"optimizer": {"adagrad": {"lr": "1/2"}}, "steps": 2}}]},
    "flatten_channel_last": {"model": [{"flatten": {"name": "fl"}}, {"linear": {"name": "fc", "W": [[1, 2, -1, 0, 1, 3, 0, 1]],
                                                                                "b": [0]}}],
                             "loss": "mse", "conventions": {"flatten": "channel_last"},
                             "data": [{"x": [[[1, 2], [3, 4]], [[-1, 0], [2, 1]]], "y": [1]}],
                             "tasks": [{"gradient": {"wrt": ["x"]}}]},
    "triplets_mean_with_inputs": {
        "kind": "siamese", "model": [{"linear": {"name": "fc", "W": [[1, -1], ["1/2", 2]], "b": [0, 1]}},
                                     {"tanh": {"name": "t"}}],
        "loss": {"triplet": {"margin": "1/2"}}, "reduction": "mean",
        "inputs": {"a": [1, 0], "p": [1, "1/2"], "n": [-1, 2], "m": [0, 0]},
        "triplets": [{"anchor": "a", "positive": "p", "negative": "n"}, {"anchor": "m", "positive": "a", "negative": "p"}],
        "tasks": [{"gradient": {"wrt": ["fc.W", "fc.b", "a", "n"]}}]},
    "triplet_at_the_kink": {      # d_ap − d_an + m = 0: the hinge's derivative is the ReLU convention's
        "kind": "siamese", "model": [{"linear": {"name": "fc", "W": [[1, 0], [0, 1]], "b": [0, 0]}}],
        "loss": {"triplet": {"margin": 1}}, "conventions": {"relu_grad_at_zero": 1},
        "inputs": {"a": [0, 0], "p": [3, 4], "n": [6, 0]},
        "triplets": [{"anchor": "a", "positive": "p", "negative": "n"}], "tasks": [{"gradient": {"wrt": ["fc.W"]}}]},
    "contrastive_half_sum": {
        "kind": "siamese", "model": [{"linear": {"name": "fc", "W": [[1, 2], [0, -1]], "b": [1, 0]}}, {"relu": None}],
        "loss": {"contrastive": {"margin": 3, "half": True}}, "reduction": "sum",
        "inputs": {"u": [1, 1], "v": [0, 2], "w": ["1/2", -1]},
        "pairs": [{"inputs": ["u", "v"], "label": "positive"}, {"inputs": ["u", "w"], "label": "negative"}],
        "tasks": [{"gradient": {"wrt": ["fc.W", "u"]}}]},
    "gru_output_cross_entropy": {
        "kind": "recurrent",
        "cell": {"gru": {"W_ih": [[1], [-1], ["1/2"], [2], [0], [1]], "W_hh": [[1, 0], [0, 1], [1, 1], [0, "1/2"],
                                                                              [-1, 1], [1, 0]],
                         "b_ih": [0, 1, 0, 0, "1/2", 0], "b_hh": [1, 0, 0, -1, 0, "1/4"], "h0": ["1/2", -1]}},
        "output": {"W_hy": [[1, -1], [2, 0]], "b_y": [0, 1], "activation": "softmax"},
        "inputs": [[1], [-1], ["1/2"]], "loss": "cross_entropy", "loss_over": "sum", "targets": [0, 1, 1],
        "tasks": [{"gradient": {"wrt": ["W_ih", "W_hh", "b_hh", "W_hy", "b_y", "h0", "z2"]}}]},
    "rnn_identity": {
        "kind": "recurrent",
        "cell": {"rnn": {"W_hh": [["1/2", 0], [1, -1]], "W_xh": [[1], [2]], "b_h": [0, 1], "activation": "identity"}},
        "inputs": [1, -1], "loss": "mse", "targets": [None, [1, 0]],
        "tasks": [{"gradient": {"wrt": ["W_hh", "W_xh", "b_h", "a1"]}}]},
    "rnn_relu_grad_at_zero": {
        "kind": "recurrent", "conventions": {"relu_grad_at_zero": "1/2"},
        "cell": {"rnn": {"W_hh": [[1, 0], [1, -1]], "W_xh": [[1], [-1]], "b_h": [-1, 1], "activation": "relu"}},
        "inputs": [1, 2], "loss": "mse", "loss_over": "sum", "targets": [[0, 1], [1, 0]],
        "tasks": [{"gradient": {"wrt": ["W_hh", "W_xh", "b_h"]}}]},
}


@pytest.mark.parametrize("name", list(SPECS))
def test_each_kind_of_task_has_a_script_with_the_engines_numbers(name, tmp_path):
    from examsolver.api import solve

    spec = {"id": name, "title": {"hr": "t", "en": "t"}, **SPECS[name]}
    solution = solve(spec)
    script = torch_script(solution)
    assert script is not None, torch_text(solution)
    printed = run(script, tmp_path)
    missing = [key for key in solution.results if RECOMPUTED.fullmatch(key) and key not in printed]
    assert not missing, f"not recomputed by the script: {missing}"
    for key, value in printed.items():
        np.testing.assert_allclose(np.asarray(value, dtype=float), as_float(solution.results[key]), rtol=1e-9,
                                   atol=1e-9, err_msg=key)
    same_as_oracle(printed, torch_problems.solve(spec), name)


def test_an_op_without_an_equivalent_is_named_with_the_reason():
    """nn.RNN has tanh and relu only: a network with an identity RNN gets the comment naming that layer."""
    from examsolver.api import solve

    solution = solve({"id": "rnn_net", "title": {"hr": "t", "en": "t"},
                      "model": [{"rnn": {"name": "cell", "W_hh": [[1]], "W_xh": [[2]], "activation": "identity"}}],
                      "loss": "sum", "data": [{"x": [1, -1], "y": 0}],
                      "tasks": [{"gradient": {"wrt": ["cell.W_hh"]}}]})
    assert torch_script(solution) is None
    assert torch_text(solution) == ("# rnn_net: no PyTorch check: the rnn op (cell) has no PyTorch equivalent with its "
                                    "settings and the problem's conventions\n")


@pytest.mark.parametrize("kind,layers,bidirectional,bias", [("lstm", 2, True, True), ("rnn", 2, False, True),
                                                           ("gru", 1, True, False)])
def test_stacked_and_bidirectional_cells_have_a_script(kind, layers, bidirectional, bias, tmp_path):
    """PyTorch's own module with every unit's weights: the outputs, every layer's and direction's states (a
    stack's lower layers run alone), the loss and every gradient the spec asks for (weights, h0/c0 of every
    unit, the inputs) are the engine's."""
    from test_recurrent_stacked import _case, stacked_in_torch

    from examsolver.pipeline import solve_document
    from examsolver.spec.load import load_text

    spec, net, units, data = _case(kind, layers, bidirectional, bias, seed=7)
    solution = solve_document(load_text(spec, "stacked.yaml"))
    printed = run(torch_script(solution), tmp_path)
    states = re.compile(r"layer\d+(_reverse)?\.h\d+")
    missing = [key for key in solution.results if (RECOMPUTED.fullmatch(key) or states.fullmatch(key))
               and key not in printed]
    assert not missing, f"not recomputed by the script: {missing}"
    assert {"h1", "h2", "loss", "layer1.h1"} <= set(printed)
    for key, value in printed.items():
        np.testing.assert_allclose(np.asarray(value, dtype=float), as_float(solution.results[key]), rtol=1e-9,
                                   atol=1e-9, err_msg=key)
    same_as_oracle(printed, stacked_in_torch(kind, net, units, data, bias), f"{kind} stack")
