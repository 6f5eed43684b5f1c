"""A wheel (what a non-editable `pip install .` installs) works on its own, templates included."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from conftest import PROBLEMS, ROOT

# Runs the CLI from an unpacked wheel: the editable install's import hook is taken away first.
PROBE = """
import sys
sys.meta_path = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()]
sys.path.insert(0, sys.argv.pop(1))
import examsolver
assert examsolver.__file__.startswith(sys.path[0]), examsolver.__file__
from examsolver.cli import app
app()
"""


def test_wheel_carries_the_templates_and_renders_documents(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    wheel, = (tmp_path / "dist").glob("examsolver-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert {f"examsolver/templates/{n}" for n in ("article.tex.j2", "beamer.tex.j2", "page.html.j2")} <= names
        archive.extractall(tmp_path / "site")
    for fmt, marker in (("tex", r"\documentclass"), ("beamer", r"\begin{frame}"), ("html", "<math")):
        done = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "site"), "solve",
                               str(PROBLEMS / "2022_z3.yaml"), "--format", fmt],
                              capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert done.returncode == 0, done.stderr
        assert marker in done.stdout, fmt
