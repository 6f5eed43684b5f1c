"""Start-up cost: `examsolver --help` and solving a plain network problem stay off the heavy imports.

Measured in fresh interpreters (subprocesses), since this test process has imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import PROBLEMS, ROOT

HEAVY_FOR_HELP = ("sympy", "numpy", "matplotlib", "torch", "pydantic")
HEAVY_FOR_SOLVE = ("sympy", "torch", "matplotlib")


def _imported_after(code: str, watch: tuple) -> list:
    """Run code in a fresh interpreter; which of the watched top-level modules did it import?"""
    probe = (f"import sys\n{code}\n"
             f"import json; print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(watch)!r}))))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_help_imports_nothing_heavy():
    code = ("from typer.testing import CliRunner\nfrom examsolver.cli import app\n"
            "result = CliRunner().invoke(app, ['--help'])\nassert result.exit_code == 0, result.output")
    assert _imported_after(code, HEAVY_FOR_HELP) == []


def test_command_help_imports_nothing_heavy_of_ours():
    """Typer ≥ 0.2x imports pydantic itself to build a command's parameters, so it is not watched here."""
    code = ("from typer.testing import CliRunner\nfrom examsolver.cli import app\n"
            "from typer.main import get_command\n"
            "for name in get_command(app).commands:\n"
            "    assert CliRunner().invoke(app, [name, '--help']).exit_code == 0, name")
    assert _imported_after(code, tuple(m for m in HEAVY_FOR_HELP if m != "pydantic")) == []


def test_cli_module_imports_typer_and_nothing_else_of_weight():
    """Importing the CLI module adds, beyond what `import typer` brings, only the standard library and
    the few light modules of ours its --help needs (the defaults of the limits it shows)."""
    probe = ("import json, sys\nimport typer\nbefore = set(sys.modules)\nimport examsolver.cli\n"
             "print(json.dumps(sorted(set(sys.modules) - before)))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    added = json.loads(done.stdout.strip().splitlines()[-1])
    ours = {m for m in added if m.split(".")[0] == "examsolver"}
    assert ours <= {"examsolver", "examsolver.cli", "examsolver.spec", "examsolver.spec.limits", "examsolver.errors"}
    others = {m.split(".")[0] for m in added} - {"examsolver"} - set(sys.stdlib_module_names)
    assert not others, sorted(others)


def test_help_through_python_m_and_importtime():
    """`python -X importtime -m examsolver --help`: the import log names no heavy module."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "examsolver", "--help"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout
    imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    assert not imported & set(HEAVY_FOR_HELP), sorted(imported & set(HEAVY_FOR_HELP))


def test_solving_2022_z3_needs_neither_sympy_nor_torch():
    code = ("from examsolver.pipeline import solve_file\n"
            "from examsolver.render.output import render_solution\n"
            f"solution = solve_file({str(PROBLEMS / '2022_z3.yaml')!r})\n"
            "assert solution.checks and all(c.status == 'match' for c in solution.checks)\n"
            "for fmt in ('md', 'json'):\n"
            "    for lang in ('hr', 'en'):\n"
            "        assert render_solution(solution, fmt, lang, to_terminal=False)")
    assert _imported_after(code, HEAVY_FOR_SOLVE) == []


def test_cli_solve_2022_z3_needs_neither_sympy_nor_torch():
    code = ("from typer.testing import CliRunner\nfrom examsolver.cli import app\n"
            f"result = CliRunner().invoke(app, ['solve', {str(PROBLEMS / '2022_z3.yaml')!r}, '--lang', 'en'])\n"
            "assert result.exit_code == 0, result.output")
    assert _imported_after(code, HEAVY_FOR_SOLVE) == []


def _process_settings_after_main(env: dict) -> dict:
    """Run the console entry point (`--help`) in a fresh interpreter; what did it set?"""
    probe = ("import gc, json, os, sys\nfrom examsolver.cli import main\nsys.argv = ['examsolver', '--help']\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print(json.dumps({'blas': os.environ.get('OPENBLAS_NUM_THREADS'), "
             "'plugins': os.environ.get('PYDANTIC_DISABLE_PLUGINS'), 'threshold': gc.get_threshold()[0], "
             "'frozen': gc.get_freeze_count() > 0}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_main_sets_process_defaults_for_a_short_command():
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "PYDANTIC_DISABLE_PLUGINS")}
    assert _process_settings_after_main(env) == {"blas": "1", "plugins": "__all__", "threshold": 10_000,
                                                 "frozen": True}


def test_a_users_own_settings_win():
    import os

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "4", "PYDANTIC_DISABLE_PLUGINS": "logfire"}
    settings = _process_settings_after_main(env)
    assert (settings["blas"], settings["plugins"]) == ("4", "logfire")
