"""Hostile input: every reproducer in tests/hostile is solved or refused with its one located line;
input and output files are handled safely; a bug of ours has its own exit code."""

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from examsolver.cli import app
from examsolver.pipeline import solve_file
from examsolver.errors import INTERNAL_ERROR, SpecError
from examsolver.render.output import render_document
from examsolver.spec.load import MAX_BYTES, load_file

HOSTILE = Path(__file__).parent / "hostile"
ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "problems" / "2022_z3.yaml"


def _expected() -> dict:
    lines = (HOSTILE / "expected.txt").read_text(encoding="utf-8").splitlines()
    return dict(line.split("\t", 1) for line in lines if line and not line.startswith("#"))


EXPECTED = _expected()


def test_every_reproducer_has_an_expectation():
    assert sorted(EXPECTED) == sorted(p.name for p in HOSTILE.glob("*.yaml"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reproducer_is_solved_or_refused_with_its_line(name):
    path = HOSTILE / name
    expected = EXPECTED[name]
    if expected == "solved":
        solution = solve_file(path)
        for lang in ("hr", "en"):      # rendering must not fail either (4,300-digit numbers once did)
            assert render_document([solution], "md", lang)
        assert render_document([solution], "json", "en")     # nor the JSON of a value that is not real (√−1)
        return
    with pytest.raises(SpecError) as info:
        solve_file(path)
    assert [str(p) for p in info.value.problems] == [f"{path}:{expected}"]


def test_a_batch_goes_on_past_hostile_files_and_reports_one_line_each():
    names = ["pow_tower_5.yaml", "rnn_tanh_50_steps.yaml", "kind_mapping.yaml", "long_list_4990.yaml"]
    run = subprocess.run([sys.executable, "-m", "examsolver", "solve", *[str(HOSTILE / n) for n in names]],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert lines == [f"{HOSTILE / n}:{EXPECTED[n]}" for n in names if EXPECTED[n] != "solved"]
    assert run.stdout        # the solvable one is still solved


def test_a_limit_can_be_raised_for_a_trusted_file():
    runner = CliRunner()
    refused = runner.invoke(app, ["solve", str(HOSTILE / "softmax_1e6.yaml")])
    assert refused.exit_code == 2 and "--max-exp-argument" in refused.stderr
    trusted = runner.invoke(app, ["--max-exp-argument", "2000000", "solve", str(HOSTILE / "softmax_1e6.yaml")])
    assert trusted.exit_code == 0, trusted.stderr


# ----- input files ------------------------------------------------------------------------
def _refusal(path) -> str:
    with pytest.raises(SpecError) as info:
        load_file(path)
    (problem,) = info.value.problems
    return str(problem)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
def test_only_regular_files_are_read(tmp_path):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    assert _refusal(fifo) == f"{fifo}: cannot read file (not a regular file)"      # did block forever
    assert _refusal("/dev/zero") == "/dev/zero: cannot read file (not a regular file)"
    assert _refusal(tmp_path) == f"{tmp_path}: cannot read file (a directory)"


def test_bad_bytes_are_refused_where_they_are(tmp_path):
    nul, latin, big = tmp_path / "nul.yaml", tmp_path / "latin.yaml", tmp_path / "big.yaml"
    nul.write_bytes(b"id: a\nx: b\0c\n")
    latin.write_bytes(b"id: a\ntitle: \xe8\n")
    big.write_bytes(b"# " + b"x" * MAX_BYTES + b"\n")
    assert _refusal(nul) == f"{nul}:2:5: NUL byte in the file (not a text file)"
    assert _refusal(latin) == f"{latin}:2:8: not UTF-8 text (byte 13)"
    assert _refusal(big) == f"{big}:1:1: file larger than {MAX_BYTES} bytes"


# ----- output files -----------------------------------------------------------------------
def _solve_to(target, *extra):
    return CliRunner().invoke(app, ["solve", str(SPEC), "-f", "md", "-o", str(target), *extra])


def test_output_into_an_existing_directory(tmp_path):
    result = _solve_to(tmp_path)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "2022_z3.md").read_text(encoding="utf-8").startswith("#")


def test_new_output_follows_the_umask_and_an_existing_one_keeps_its_mode(tmp_path):
    target = tmp_path / "out.md"
    old = os.umask(0o022)
    try:
        assert _solve_to(target).exit_code == 0
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
        target.chmod(0o640)
        assert _solve_to(target).exit_code == 0
        assert stat.S_IMODE(target.stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_a_symlink_stays_a_link_and_its_target_is_written(tmp_path):
    real, link = tmp_path / "real.md", tmp_path / "link.md"
    real.write_text("old")
    link.symlink_to(real)
    assert _solve_to(link).exit_code == 0
    assert link.is_symlink() and real.read_text(encoding="utf-8").startswith("#")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
def test_nothing_but_a_regular_file_is_replaced(tmp_path):
    fifo = tmp_path / "out.md"
    os.mkfifo(fifo)
    result = _solve_to(fifo)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: cannot write {fifo}: it is not a regular file (give a file name)"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    if os.path.exists("/dev/full"):
        result = _solve_to("/dev/full")
        assert result.exit_code == 2 and stat.S_ISCHR(os.lstat("/dev/full").st_mode)


# ----- exit codes -------------------------------------------------------------------------
def test_an_unreadable_answer_is_an_invalid_input(tmp_path):
    answers = tmp_path / "answers.yaml"
    answers.write_text("answers:\n  h1: '1/'\n")
    result = CliRunner().invoke(app, ["check", str(SPEC), "--answers", str(answers)])
    assert result.exit_code == 2
    assert f"{answers}:2:7: h1: malformed number" in " ".join(result.output.split())


def test_a_bug_of_ours_has_its_own_exit_code_and_names_the_file(monkeypatch):
    import examsolver.pipeline as solve

    def broken(path):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(solve, "solve_file", broken)
    result = CliRunner().invoke(app, ["solve", str(SPEC)])
    assert result.exit_code == INTERNAL_ERROR not in (1, 2)
    assert result.stderr.strip() == (f"{SPEC}: internal error: ZeroDivisionError: a bug "
                                     "(rerun with --debug and report it)")


# ----- the cost model of expressions --------------------------------------------------------
@pytest.mark.parametrize("text, message", [
    ("((((2**64)**64)**64)**64)**64", "a power with more than 1000 digits"),
    ("(1e300**64)**64", "a power with more than 1000 digits"),
    ("25e-141**25e-141", "exponent must be a rational number p/q with |p/q| and q at most 64"),
    ("exp(exp(exp(10)))", "exp of a number larger than 2000 in magnitude"),
    ("(1+sqrt(2)+sqrt(3)+ln(2)+ln(3)+pi+e+sqrt(5))**64", "a sum of more than 1000 terms"),
    ("(e**64)**64", "a number beyond 10^±1000"),
    ("[" * 9 + "1" + "]" * 9, "a tensor of more than 8 dimensions"),
])
def test_numbers_are_bounded_before_they_are_built(text, message):
    from examsolver.errors import ExprError
    from examsolver.spec.expr import parse_nested

    with pytest.raises(ExprError, match=re.escape(message)):
        parse_nested(yaml.safe_load(text) if text.startswith("[") else text)


@pytest.mark.parametrize("text, message", [
    ("((((x+1)**64)**64)**64)**64", "an expression of degree more than 256"),
    ("ln(0)", "undefined value"),
    ("x/0", "division by zero"),
])
def test_symbolic_expressions_are_bounded_before_sympy_works_on_them(text, message):
    import sympy

    from examsolver.errors import ExprError
    from examsolver.spec.expr import parse_symbolic

    with pytest.raises(ExprError, match=re.escape(message)):
        parse_symbolic(text, {"x": sympy.Symbol("x")})


def test_a_long_list_is_read_without_searching_the_source_per_literal(monkeypatch):
    import ast

    from examsolver.spec.expr import parse_value

    def quadratic(*args, **kwargs):
        raise AssertionError("ast.get_source_segment splits the whole source for every literal")

    monkeypatch.setattr(ast, "get_source_segment", quadratic)
    values = parse_value("[" + ", ".join(["1", "1.3"] * 2495) + "]")     # ~15 KB, 4,990 literals
    assert len(values) == 4990 and values[1] * 10 == 13


def test_a_square_root_too_large_to_factor_stays_exact():
    """sqrt of a 22-digit integer, cubed: the sympy bridge once bounced between sqrt and sympy forever."""
    from examsolver.spec.expr import parse_value

    n = 2018446744073709551616
    value = parse_value(f"sqrt({n})**3")
    assert value * value == n ** 3
