"""Generated Python runs nothing a spec says (issue 20): hostile names, ids and texts in every channel that
can reach the PyTorch check script, the script compiled, run in a throwaway directory under a time limit,
no file made, and its printed numbers still autograd's, equal to the engine's; the escaping functions of
examsolver.pysource on every character; values beyond float64 give a located reason, not a crash."""

from __future__ import annotations

import ast
import builtins
import json
import keyword
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from examsolver.cli import app
from examsolver.errors import ExamsolverError
from examsolver.pipeline import solve_document
from examsolver.pysource import comment, escaped, identifier, literal
from examsolver.render import output as out
from examsolver.render.latex import wrap_code
from examsolver.render.torch_script import Script, torch_script, torch_text
from examsolver.spec.load import load_text

from conftest import ROOT

HOSTILE = ROOT / "tests" / "hostile" / "outputs"
TOUCH = "__import__('os').system('touch PWNED')"
PAYLOADS = [
    'x""" + str(__import__("os").system("touch PWNED")) + """',      # out of the docstring
    'fc1", __import__("os").system("touch PWNED")) or show("z',       # out of a "…" literal
    f"q'); {TOUCH}; ('",                                             # out of a '…' literal
    "{" + TOUCH + "}",                                               # into an f-string's braces
    "'''\"\"\"\\",                                                   # quotes of every kind, a backslash
    "ends in a backslash \\",
    f"line\n{TOUCH}",
    f"cr\r{TOUCH}",
    f"crlf\r\n{TOUCH}",
    f"ls\u2028{TOUCH}",
    f"ps\u2029nel\x85{TOUCH}",
    f"# comment\n{TOUCH}  #",
    "nul\x00byte",
    "\x1b[2Jescape\x07",
    "\u202eright-to-left\u2066",
    "ž, θ² 名",
    "__builtins__", "print", "None", "1st", "x", "torch", "show", "PROBLEM",
]
# names of the script's own variables and helpers (a layer named loss is left out of the specs: the engine's
# graph has a node of that name)
OWN_NAMES = ["loss", "losses", "grad", "F", "json", "n", "t"]
# results a script must print when the solution has them
RECOMPUTED = re.compile(r"loss(\(\d+\))?|d(_ap|_an)?(\(\d+\))?|e\d+|.*\.(grad|updated)(\(\d+\))?", re.DOTALL)


# ----- the escaping functions ------------------------------------------------------------------------
EVERY_CHARACTER = "".join(map(chr, range(0x110000)))


@pytest.mark.parametrize("text", PAYLOADS + [EVERY_CHARACTER])
def test_a_literal_is_the_text_and_nothing_else(text):
    source = literal(text)
    assert ast.literal_eval(source) == text
    body = escaped(text)
    assert "'" not in body and '"' not in body and body.isprintable()
    assert ast.literal_eval(f'"""{body}"""') == ast.literal_eval(f"'{body}'") == text       # docstrings too


@pytest.mark.parametrize("text", PAYLOADS + [EVERY_CHARACTER])
def test_a_comment_stays_one_comment(text):
    line = comment(text)
    assert line.isprintable() and line.startswith("# ")
    assert compile(f"{line}\nvalue = 1\n", "<comment>", "exec").co_names == ("value",)


@pytest.mark.parametrize("text", PAYLOADS + ["", "_", "__", "a" * 300, "if", "match", "_x", "9"])
def test_an_identifier_is_fresh_and_plain(text):
    taken = {"x", "loss"}
    name = identifier(text, taken)
    assert name.isascii() and name.isidentifier() and not name.startswith("_")
    assert not keyword.iskeyword(name) and not keyword.issoftkeyword(name) and name not in dir(builtins)
    assert name in taken and name not in {"x", "loss"} and len(name) <= 44
    assert identifier(text, taken) != name          # a second one for the same text is another


# ----- the script's printer, whatever the schema lets through ----------------------------------------------
def test_the_printer_writes_any_name_as_data(tmp_path):
    """Script itself: every payload as the problem's id, a variable's name and a printed label."""
    s = Script(PAYLOADS[0])
    names = PAYLOADS + OWN_NAMES
    for k, name in enumerate(names):
        var = s.var(name)
        s.tensor(var, [k, 1])
        s.add(s.show(name, var), s.show(name + ".grad", var, str(k)))
    script = s.text()
    printed = _run([script], tmp_path)[0]
    expected = []
    for k, name in enumerate(names):
        expected += [(_shown(name), [k, 1]), (_shown(f"{name}.grad({k})"), [k, 1])]
    assert printed == expected


def test_the_numpy_code_names_nothing_but_plain_identifiers():
    """codegen writes a spec's names into code as they are: whatever is not a plain identifier is refused by
    the printer itself (the schema refuses it before; the guard does not rely on that)."""
    import sympy as sp

    from examsolver.engine import codegen

    x = sp.Symbol("x")
    for bad in [name for name in PAYLOADS if not (name.isascii() and name.isidentifier())] + ["None", "if"]:
        y = sp.Symbol(bad)
        for make in (lambda: codegen.activation_layer(bad, x ** 2, x), lambda: codegen.activation_layer("A", y ** 2, y),
                     lambda: codegen.equations_layer("A", [y], [], [y]), lambda: codegen.to_numpy(x + y),
                     lambda: codegen.loss_function(bad, (x - 1) ** 2, x, [x], "mean"),
                     lambda: codegen.sample(y ** 2, y, [0.0])):
            with pytest.raises(codegen.UnsafeName):
                make()


# ----- every channel of a spec -------------------------------------------------------------------
def _network(payload: str, channel: str) -> dict:
    name = payload if channel == "layer" else "fc1"
    text = payload if channel == "text" else "t"
    spec = {"id": payload if channel == "id" else "net", "title": {"hr": text, "en": text},
            "statement": {"hr": text, "en": text},
            "model": [{"linear": {"name": name, "W": [[1, 0], [1, -1]], "b": [0, 1]}}, "sigmoid"],
            "loss": "mse", "data": [{"x": [1, 2], "y": [0, 1]}, {"x": [-1, 1], "y": [1, 0]}],
            "tasks": [{"gradient": {"wrt": [f"{name}.W", name]}}, {"train_step": {"lr": "1/2"}}],
            "answers": {payload if channel == "answers" else "loss": 1}}
    return spec


def _siamese(payload: str, channel: str) -> dict:
    first = payload if channel == "input" else "a"
    return {"id": payload if channel == "id" else "pair", "kind": "siamese", "title": {"hr": "t", "en": "t"},
            "model": [{"linear": {"name": payload if channel == "layer" else "fc", "W": [[1, 0], [1, -1]],
                                  "b": [0, 1]}}],
            "loss": "contrastive", "inputs": {first: [1, 2], "b": [0, 1], "c": [2, -1]},
            "pairs": [{"inputs": [first, "b"], "label": "positive"}, {"inputs": [first, "c"], "label": "negative"}],
            "tasks": ["forward", {"gradient": {"wrt": [first]}}]}


def _recurrent(payload: str, channel: str) -> dict:
    return {"id": payload if channel == "id" else "seq", "kind": "recurrent", "title": {"hr": "t", "en": "t"},
            "cell": {"lstm": {"name": payload if channel == "cell" else "lstm", "W_ih": [[1], [-1], [1], [-1]],
                              "W_hh": [[1], [1], [1], [1]], "b_ih": [0, 1, 0, 0], "b_hh": [1, 0, 0, 0],
                              "h0": [1], "c0": [-1]}},
            "output": {"W_hy": [[1]], "b_y": [0]},
            "inputs": [[1], [-1]], "loss": "mse", "loss_over": "sum", "targets": [[1], [-1]],
            "tasks": [{"gradient": {"wrt": ["W_ih", "h0", "f2"]}}]}


def _minimize(payload: str, channel: str) -> dict:
    var = payload if channel == "variable" else "theta"
    return {"id": payload if channel == "id" else "min", "kind": "symbolic", "title": {"hr": "t", "en": "t"},
            "vectors": {var: 2}, "define": {"f": f"{var}1**2 + 2*{var}2**2"},
            "tasks": [{"minimize": {"of": "f", "from": {var: [1, 1]}, "name": payload if channel == "name" else "g",
                                    "optimizer": {"sgd": {"lr": "1/4"}}, "steps": 2}}]}


CHANNELS = {("network", "id"): _network, ("network", "layer"): _network, ("network", "text"): _network,
            ("network", "answers"): _network, ("siamese", "id"): _siamese, ("siamese", "input"): _siamese,
            ("siamese", "layer"): _siamese, ("recurrent", "id"): _recurrent, ("recurrent", "cell"): _recurrent,
            ("minimize", "id"): _minimize, ("minimize", "name"): _minimize, ("minimize", "variable"): _minimize}


@pytest.fixture(scope="module")
def channels(tmp_path_factory) -> dict:
    """Every payload in every channel solved (None where the spec is refused, a user's error), and the
    scripts run, all in one python: {(kind, channel): [(solution, script, printed)]}."""
    solved = {}
    for key, make in CHANNELS.items():
        solved[key] = []
        for payload in PAYLOADS:
            text = yaml.safe_dump(make(payload, key[1]), allow_unicode=True)
            try:
                solution = solve_document(load_text(text, "hostile.yaml"), answers={})
            except ExamsolverError:
                continue
            solved[key].append((solution, torch_script(solution)))
    scripts = [script for runs in solved.values() for _, script in runs if script is not None]
    printed = iter(_run(scripts, tmp_path_factory.mktemp("channels")))
    return {key: [(solution, script, next(printed) if script is not None else None) for solution, script in runs]
            for key, runs in solved.items()}


@pytest.mark.parametrize("kind,channel", list(CHANNELS))
def test_a_hostile_name_in_any_channel_is_only_data(kind, channel, channels):
    """Each payload in this channel: the spec refused (a user's error, never an internal one), or a script
    that compiles, runs nothing of the payload, still prints autograd's numbers, equal to the engine's, under
    the results' names, and reads the same when the slides wrap its lines."""
    for solution, script, printed in channels[kind, channel]:
        assert script is not None, torch_text(solution)
        tree = ast.dump(compile(script, "check.py", "exec", ast.PyCF_ONLY_AST))
        assert ast.dump(ast.parse(wrap_code(script, 60))) == tree      # the slides break lines, not strings
        _same_numbers(solution, printed)


def test_the_reproducers_of_injection_run_nothing(tmp_path):
    scripts = []
    for name in ("torch_inject_id_docstring", "torch_inject_layer_name_quote"):
        result = CliRunner().invoke(app, ["solve", str(HOSTILE / f"{name}.yaml"), "--format", "torch"])
        assert result.exit_code == 0, result.output
        scripts.append(result.stdout)
    for printed in _run(scripts, tmp_path):
        assert ("loss", 2.0) in printed and not [entry for entry in printed if entry[0][:1] == "\0"], printed


def test_a_value_beyond_float64_is_a_located_reason_not_a_crash():
    """10⁴⁰⁰ cannot be a float64 tensor: no script, and the comment says where the number is; the slides
    that would close with the script are written without it."""
    spec = HOSTILE / "json_torch_overflow_1e400.yaml"
    result = CliRunner().invoke(app, ["solve", str(spec), "--format", "torch"])
    assert result.exit_code == 0, result.output
    assert result.stdout == (f"# bigval: no PyTorch check: {spec}:5:12: this number is beyond the range of float64 "
                             "(±1.8·10³⁰⁸), in which PyTorch checks the results\n")
    slides = CliRunner().invoke(app, ["solve", str(spec), "--format", "beamer"])
    assert slides.exit_code == 0 and "torch.tensor" not in slides.stdout, slides.output


@pytest.mark.parametrize("where,message", [
    ("lr", "big.yaml:8:22: this number is beyond the range of float64"),
    ("exp(1000)", "big.yaml:{of}: a constant of the formula is beyond the range of float64")])
def test_other_values_beyond_float64_are_located_the_same_way(where, message):
    """A learning rate or a formula's constant beyond float64 (e^1000: exact, and its float infinite): no
    script, and the reason says where."""
    if where == "lr":
        text = (HOSTILE / "torch_inject_layer_name_quote.yaml").read_text().replace(
            "  - forward", "  - train_step: {lr: '(10**50)**8'}")
    else:
        text = yaml.safe_dump({"id": "m", "kind": "symbolic", "title": {"hr": "t", "en": "t"}, "symbols": ["w"],
                               "define": {"f": f"w**2 + {where}*w"},
                               "tasks": [{"minimize": {"of": "f", "from": {"w": 1}, "optimizer": {"sgd": {"lr": 0}},
                                                       "steps": 1}}]})
    solution = solve_document(load_text(text, "big.yaml"), answers={})
    assert torch_script(solution) is None
    of = [f"{n}:{line.index('of:') + 5}" for n, line in enumerate(text.splitlines(), 1) if " of:" in line]
    assert message.format(of=of and of[0]) in torch_text(solution)
    assert "torch.tensor" not in out.render_document([solution], "beamer", "en")


# ----- running scripts -----------------------------------------------------------------------------
RUNNER = """
import os, runpy, sys, traceback
for path in sys.argv[1:]:
    os.chdir(os.path.dirname(path))
    print("\\0", flush=True)
    try:
        runpy.run_path(path, run_name="__main__")
    except BaseException:
        print("\\0error = " + repr(traceback.format_exc()), flush=True)
"""


def _run(scripts: list[str], tmp_path) -> list[list[tuple]]:
    """Each script run in a directory of its own (one python for all, under a time limit); the (name, value)
    pairs each printed, then (\\0error, traceback) if it failed and (\\0file, name) for each file in its
    directory but itself."""
    paths = []
    for k, script in enumerate(scripts):
        path = tmp_path / f"run{k}" / "check.py"
        path.parent.mkdir(parents=True)
        path.write_text(script, encoding="utf-8")
        paths.append(path)
    if not paths:
        return []
    done = subprocess.run([sys.executable, "-c", RUNNER, *map(str, paths)], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path, encoding="utf-8")
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = done.stdout.split("\0\n")[1:]
    assert len(outputs) == len(paths)
    return [[_parse(line) for line in output.splitlines()] +
            [("\0file", str(made)) for made in path.parent.rglob("*") if made != path]
            for path, output in zip(paths, outputs)]


def _parse(line: str) -> tuple:
    if line.startswith("\0error = "):
        return "\0error", ast.literal_eval(line.partition(" = ")[2])
    name, equals, value = line.rpartition(" = ")
    try:
        return (name, json.loads(value)) if equals else ("\0line", line)
    except ValueError:
        return "\0line", line


def _shown(name: str) -> str:
    """How the script prints a result's name: as it is, or as repr where it has unprintable characters."""
    return name if name.isprintable() else repr(name)


def _same_numbers(solution, printed: list[tuple]) -> None:
    names = {_shown(name): name for name in solution.results}
    for shown, value in printed:
        assert shown in names, f"the script prints {shown}, which is no result"
        result = np.vectorize(float, otypes=[float])(np.asarray(solution.results[names[shown]], dtype=object))
        np.testing.assert_allclose(np.asarray(value, dtype=float), result, rtol=1e-9, atol=1e-9, err_msg=shown)
    shown = {name for name, _ in printed}
    missing = [name for name in solution.results if RECOMPUTED.fullmatch(name) and _shown(name) not in shown]
    assert not missing, f"not recomputed by the script: {missing}"


def test_a_formulas_irrational_constants_are_written_to_the_nearest_float64(tmp_path):
    text = yaml.safe_dump({"id": "m", "kind": "symbolic", "title": {"hr": "t", "en": "t"}, "symbols": ["w"],
                           "define": {"f": "w**2 + sqrt(2)*w + ln(3)"},
                           "tasks": [{"minimize": {"of": "f", "from": {"w": 1}, "optimizer": {"sgd": {"lr": "1/4"}},
                                                   "steps": 2}}]})
    solution = solve_document(load_text(text, "irrational.yaml"), answers={})
    printed = _run([torch_script(solution)], tmp_path)[0]
    _same_numbers(solution, printed)
    assert {"f(0)", "w.updated(2)"} <= {name for name, _ in printed}
