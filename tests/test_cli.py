"""The command line as a user meets it: exit codes, formats, help, and one clear line per bad spec."""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from examsolver.cli import app
from examsolver.pipeline import solve_file
from examsolver.spec.expr import parse_value

from conftest import PROBLEMS

runner = CliRunner()
ALL_PROBLEMS = sorted(PROBLEMS.glob("*.yaml"))
BASE = PROBLEMS / "2022_z3.yaml"


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


# ----- solving ----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["term", "md", "json"])
@pytest.mark.parametrize("lang", ["hr", "en"])
@pytest.mark.parametrize("path", ALL_PROBLEMS, ids=lambda p: p.stem)
def test_solve_every_problem(path, lang, fmt):
    result = run("solve", path, "--lang", lang, "--format", fmt)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip()
    assert result.stderr == ""


def _as_array(value):
    return np.asarray(value, dtype=object)


def _is_exact(value) -> bool:
    """Exact scalars and tensors of them (sympy results of symbolic problems print their own way)."""
    array = _as_array(value)
    return array.size > 0 and all(type(v).__name__ == "Exact" for v in array.flat)


@pytest.mark.parametrize("path", ALL_PROBLEMS, ids=lambda p: p.stem)
def test_json_results_read_back_exactly(path):
    result = run("solve", path, "--format", "json", "--lang", "en")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    engine = solve_file(path).results
    assert set(data["results"]) == set(engine)
    for name, entry in data["results"].items():
        assert "value" in entry and set(entry) <= {"exact", "value", "digits"}, name
        if _is_exact(engine[name]) and "exact" in entry:
            assert not re.search(r"\d\.\d", entry["exact"]), f"{name}: decimals in an exact form"
            back = _as_array(parse_value(entry["exact"]))
            expected = _as_array(engine[name])
            assert back.shape == expected.shape, name
            assert all(a == b for a, b in zip(back.flat, expected.flat)), f"{name}: {entry['exact']}"
            floats = np.asarray(entry["value"], dtype=float)
            np.testing.assert_allclose(floats, np.vectorize(float)(expected).astype(float), rtol=1e-12)


def test_json_z3_values():
    data = json.loads(run("solve", BASE, "--format", "json").stdout)
    assert data["results"]["p"]["exact"].replace(" ", "") == "[1/3,2/3]"
    assert data["language"] == "hr"


@pytest.mark.parametrize("name, fmt", [("2022_z1", "json"), ("000_t6", "json"), ("2022_z2", "html")])
def test_output_is_reproducible(name, fmt):
    """The same spec gives byte-identical output in every process (PYTHONHASHSEED varies per run;
    matplotlib's SVG ids are random unless salted)."""
    import subprocess
    import sys

    def solve_with_seed(seed: str) -> str:
        argv = [sys.executable, "-m", "examsolver", "solve", str(PROBLEMS / f"{name}.yaml"), "--format", fmt]
        done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": seed})
        assert done.returncode == 0, done.stderr
        return done.stdout

    outputs = {solve_with_seed(seed) for seed in ("1", "2", "3")}
    assert len(outputs) == 1


def test_output_file(tmp_path):
    target = tmp_path / "out" / "z3.md"
    result = run("solve", BASE, "--format", "md", "--lang", "en", "-o", target)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "Convolutional classifier" in target.read_text(encoding="utf-8")


@functools.cache
def _schema():
    result = run("schema")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_schema_is_json_schema():
    """Top-level properties, or one branch per problem kind, each with its properties (network among them)."""
    schema = _schema()
    defs = schema.get("$defs", {})
    branches = [defs[b["$ref"].split("/")[-1]] for b in schema.get("oneOf", schema.get("anyOf", []))]
    branches = branches or [schema]
    assert all("properties" in b for b in branches)
    assert any({"id", "model", "data"} <= set(b["properties"]) for b in branches)


@pytest.mark.parametrize("path", ALL_PROBLEMS, ids=lambda p: p.stem)
def test_every_problem_file_satisfies_the_schema(path):
    """An editor checking YAML with `examsolver schema` must accept the project's own problems."""
    jsonschema = pytest.importorskip("jsonschema")
    from examsolver.spec.load import load_file

    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(load_file(path).data))
    details = [c.message for e in errors for c in (e.context or [e])][:6]
    assert not errors, details


def test_every_command_has_help_text():
    group = typer.main.get_command(app)
    assert group.help
    assert group.commands
    for name, command in group.commands.items():
        assert command.help, f"command {name} has no help text"
        for param in command.params:
            if param.param_type_name in ("option", "argument") and param.name != "help":
                assert getattr(param, "help", None), f"{name}: parameter {param.name} has no help text"
        result = run(name, "--help")
        assert result.exit_code == 0
        assert command.help.split("\n")[0][:30] in " ".join(result.stdout.split())


# ----- bad specs: one line, file:line:col, exit 2, no traceback -------------------------------
def _variant(tmp_path: Path, name: str, old: str, new: str) -> Path:
    text = BASE.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def _line_of(path: Path, marker: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if marker in line)


def _one_error(path: Path, pattern: str, line: int | None = None, positioned: bool = True) -> str:
    """Exit 2, nothing on stdout, exactly one line on stderr: file:line:col: message."""
    result = run("solve", path, "--lang", "en")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    message = lines[0]
    assert "Traceback" not in result.stderr and "internal error" not in message
    assert message.startswith(f"{path}:"), message
    if positioned:
        match = re.match(re.escape(str(path)) + r":(\d+):(\d+): \S", message)
        assert match, f"no position in: {message}"
        if line is not None:
            assert int(match.group(1)) == line, message
    assert re.search(pattern, message, re.IGNORECASE), message
    return message


def test_unknown_layer_kind(tmp_path):
    path = _variant(tmp_path, "a.yaml", "  - global_avg_pool", "  - global_avg_poool")
    _one_error(path, r"unknown layer 'global_avg_poool'", _line_of(path, "global_avg_poool"))


def test_shape_mismatch(tmp_path):
    path = _variant(tmp_path, "a.yaml", "W: [[ln(2), 0], [0, ln(2)]]", "W: [[ln(2), 0, 1], [0, ln(2), 1]]")
    _one_error(path, r"fc2.*shape", _line_of(path, "name: fc2"))


def test_malformed_number(tmp_path):
    path = _variant(tmp_path, "a.yaml", "x: [4, -1, 2, 0, 1]", "x: [4, -1, 1.2.3, 0, 1]")
    _one_error(path, r"malformed number.*1\.2\.3", _line_of(path, "1.2.3"))


def test_python_in_a_number_is_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = _variant(tmp_path, "a.yaml", "x: [4, -1, 2, 0, 1]",
                    f"x: [4, -1, \"__import__('os').system('touch {marker}')\", 0, 1]")
    _one_error(path, r"only these functions|not allowed", _line_of(path, "__import__"))
    assert not marker.exists()


@pytest.mark.parametrize("text", [
    "0x10", "1e100000000", "10**10**10", "(lambda: 1)()", "x.__class__", "[1, 2][0]", "1 if 1 else 2",
])
def test_hostile_numbers_are_refused(tmp_path, text):
    path = _variant(tmp_path, "a.yaml", "x: [4, -1, 2, 0, 1]", f"x: [4, -1, \"{text}\", 0, 1]")
    _one_error(path, r"\S", _line_of(path, text))


def test_billion_laughs(tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    _one_error(path, r"anchors and aliases")


def test_any_alias_is_refused(tmp_path):
    path = _variant(tmp_path, "a.yaml", "y: 1}", "y: &label 1}\nextra: *label")
    _one_error(path, r"anchors and aliases", _line_of(path, "&label"))


def test_duplicate_key(tmp_path):
    path = _variant(tmp_path, "a.yaml", "loss: cross_entropy", "loss: cross_entropy\nloss: mse")
    _one_error(path, r"duplicate key 'loss'", _line_of(path, "loss: mse"))


def test_python_tag_is_refused(tmp_path):
    path = _variant(tmp_path, "a.yaml", "x: [4, -1, 2, 0, 1]", "x: !!python/object/apply:os.system [echo]")
    _one_error(path, r"unsupported YAML tag", _line_of(path, "python/object"))


def test_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    _one_error(path, r"mapping", 1)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    _one_error(path, r"empty")


def test_missing_file(tmp_path):
    _one_error(tmp_path / "nowhere.yaml", r"cannot read", positioned=False)


def test_file_over_one_megabyte(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("id: big\n# " + "x" * 1_100_000 + "\n")
    _one_error(path, r"larger than|too large", positioned=False)


def test_deep_nesting(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("id: deep\nmodel: " + "[" * 200 + "]" * 200 + "\n")
    _one_error(path, r"nested deeper", 2)


def test_deep_mapping_nesting(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("id: deep\nmodel: " + "{a: " * 200 + "1" + "}" * 200 + "\n")
    _one_error(path, r"nested deeper", 2)


def test_unknown_task(tmp_path):
    path = _variant(tmp_path, "a.yaml", "  - forward\n", "  - backward\n")
    _one_error(path, r"unknown task", _line_of(path, "- backward"))


def test_unknown_parameter_in_wrt(tmp_path):
    path = _variant(tmp_path, "a.yaml", "wrt: [conv1.W]", "wrt: [conv9.W]")
    _one_error(path, r"unknown parameter 'conv9.W'.*conv1.W", _line_of(path, "conv9.W"))


@pytest.mark.parametrize("old, new, marker, pattern", [
    # a layer's parameter under its PyTorch name
    ("padding: 0}", "padding: 0, bias: [0, 0]}", "bias:",
     r"unknown field 'bias' \(did you mean 'b'\? expected one of: name, out, inputs, kernels, b, stride, padding"),
    # a misspelt field deep in a task (loc passes through a union tag)
    ("wrt: [conv1.W]}", "wrt: [conv1.W], methd: batch}", "methd",
     r"unknown field 'methd' \(did you mean 'method'\? expected one of: wrt, method"),
    # an optimizer's option (validated after the spec, with the training task)
    ("gradient: {wrt: [conv1.W]}", "train: {optimizer: {adam: {lr: 1/10, betas2: 1}}, steps: 1}", "betas2",
     r"unknown field 'betas2' \(did you mean 'betas'\? expected one of: lr, betas, eps"),
    # a language the title does not have: no guess, the choices
    ('en: "Convolutional classifier"', 'fr: "Classifieur"', "fr:", r"unknown field 'fr' \(expected one of: hr, en\)$"),
])
def test_an_unknown_field_names_what_was_expected(tmp_path, old, new, marker, pattern):
    path = _variant(tmp_path, "a.yaml", old, new)
    _one_error(path, pattern, _line_of(path, marker))


def test_field_name_in_messages_is_the_yaml_key(tmp_path):
    """pydantic's union tags must not leak into messages ('dense: …' for a bad x)."""
    path = _variant(tmp_path, "a.yaml", "x: [4, -1, 2, 0, 1]", "x: [4, -1, 2**100, 0, 1]")
    _one_error(path, r"^\S+: x: exponent", _line_of(path, "2**100"))


def test_batch_with_one_bad_file_still_solves_the_good_one(tmp_path):
    bad = _variant(tmp_path, "bad.yaml", "  - relu", "  - relux")
    result = run("solve", BASE, bad, "--format", "md", "--lang", "en")
    assert result.exit_code == 2
    assert "Convolutional classifier" in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{bad}:") and "relux" in lines[0]
