"""The exported PyTorch check script (issue 13, item 2): it runs, and torch's autograd gives the
engine's numbers under the same names (an independent computation: float64 autograd vs exact)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from examsolver.cli import app
from examsolver.pipeline import solve_file
from examsolver.render import output as out
from examsolver.render.latex import wrap_code
from examsolver.render.options import Options
from examsolver.render.torch_script import torch_script

from conftest import PROBLEMS

SOLVED = {p.stem: solve_file(p) for p in sorted(PROBLEMS.glob("*.yaml"))}
WITH_TORCH = [pid for pid, s in SOLVED.items() if torch_script(s)]


def run(script: str) -> dict:
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return {name: json.loads(value) for name, _, value in (line.partition(" = ") for line in done.stdout.splitlines())}


def test_the_network_problems_have_a_script():
    assert {"2022_z1", "2022_z3"} <= set(WITH_TORCH)


@pytest.mark.parametrize("pid", WITH_TORCH)
def test_the_script_gives_the_engines_numbers(pid):
    solution = SOLVED[pid]
    printed = run(torch_script(solution))
    assert "loss" in printed and any(name.endswith(".grad") for name in printed)
    for name, value in printed.items():
        exact = np.vectorize(float, otypes=[float])(np.asarray(solution.results[name], dtype=object))
        np.testing.assert_allclose(np.asarray(value, dtype=float), exact, rtol=1e-12, atol=1e-12, err_msg=name)


def test_a_wrapped_listing_still_runs():
    """Slides break long code lines inside brackets: copied from the PDF, the script still runs."""
    script = torch_script(SOLVED["2022_z3"])
    assert run(wrap_code(script, 60)) == run(script)


def test_format_torch_and_the_closing_frame():
    result = CliRunner().invoke(app, ["solve", str(PROBLEMS / "2022_z3.yaml"), "--format", "torch"])
    assert result.exit_code == 0 and "F.conv1d" in result.stdout
    slides = out.render_document([SOLVED["2022_z3"]], "beamer", "hr")
    article = out.render_document([SOLVED["2022_z3"]], "tex", "hr")
    assert "Kod u torchu za provjeru" in slides and "torch.relu" in slides          # on in slides, as the 2022 slides
    assert "torch.relu" not in article
    assert "torch.relu" in out.render_document([SOLVED["2022_z3"]], "tex", "en", options=Options(torch=True))
    assert "no PyTorch equivalent" in out.render_document([SOLVED["2022_z2"]], "torch", "en")


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
    path.write_text(f"""id: {name}
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
""", encoding="utf-8")
    solution = solve_file(path)
    script = torch_script(solution)
    assert script is not None
    printed = run(script)
    assert {"loss", "fc.W.grad", "fc.b.grad"} <= set(printed)
    for key, value in printed.items():
        exact = np.vectorize(float, otypes=[float])(np.asarray(solution.results[key], dtype=object))
        np.testing.assert_allclose(np.asarray(value, dtype=float), exact, rtol=1e-12, atol=1e-12, err_msg=key)
