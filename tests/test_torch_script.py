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
