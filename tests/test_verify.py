"""Answer-key comparison (precision, tolerance, symbolic) and the `verify` command."""

import json
import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

from examsolver.cli import app
from examsolver.spec.expr import parse_number
from examsolver.verify import Tolerance, compare

from conftest import PROBLEMS, ROOT

runner = CliRunner()


@pytest.mark.parametrize("key, value, status", [
    ("0.6667", "2/3", "match"),          # within the precision it was written with
    ("0.67", "2/3", "match"),
    ("0.65", "2/3", "mismatch"),
    ("0.667", "0.6665", "match"),
    ("ln(2)/9*6", "2*ln(2)/3", "match"),  # exact: symbolic equivalence
    ("2/3", "0.6667", "mismatch"),       # an exact key is exact
    ("-0.33", "-1/3", "match"),
    ("0.0770", "ln(2)/9", "match"),     # 0.07701…
    ("0.0771", "ln(2)/9", "mismatch"),
])
def test_decimal_and_exact_comparison(key, value, status):
    assert compare(key, parse_number(value))[0] == status


def test_cut_off_decimal_is_reported_as_truncation():
    status, detail = compare("0.66", parse_number("2/3"))
    assert status == "mismatch" and detail.key == "check.truncated" and detail.args["rounded"] == "0.67"


def test_entry_and_global_tolerances():
    two_thirds = parse_number("2/3")
    assert compare({"value": "0.6", "tol": "0.1"}, two_thirds)[0] == "match"
    assert compare({"value": "0.6", "tol": "0.01"}, two_thirds)[0] == "mismatch"
    assert compare({"value": "0.6", "rtol": "0.2"}, two_thirds)[0] == "match"
    assert compare("0.6", two_thirds, Tolerance.parse(rtol="0.2"))[0] == "match"
    assert compare({"value": "0.6", "bogus": 1}, two_thirds)[0] == "invalid"


def test_shapes_and_unreadable_keys():
    import numpy as np

    vector = np.array([parse_number("1"), parse_number("2")], dtype=object)
    assert compare([1, 2, 3], vector)[0] == "mismatch"
    assert compare([[1], [2]], vector)[0] == "match"           # a column written as rows of one
    assert compare("__import__('os')", vector)[0] == "invalid"


def test_sympy_results_compare_by_simplification():
    import sympy

    x = sympy.Symbol("x")
    computed = sympy.exp(x) / (1 + sympy.exp(x))
    assert compare("1/(1 + exp(-x))", computed)[0] == "match"
    assert compare("1/(1 + exp(x))", computed)[0] == "mismatch"


def test_a_correct_symbolic_key_is_proved_without_simplify(monkeypatch):
    """The softmax gradient as the seed writes it: proved by engine/identity.py, simplify never asked."""
    import sympy

    def refuse(*args, **kwargs):
        raise AssertionError("simplify called")

    z1, z2, g1 = sympy.symbols("z1 z2 g1")
    o1 = sympy.exp(z1) / (sympy.exp(z1) + sympy.exp(z2))
    computed = sympy.Matrix([sympy.diff(-g1 * sympy.log(o1) - (1 - g1) * sympy.log(1 - o1), z) for z in (z1, z2)])
    monkeypatch.setattr(sympy, "simplify", refuse)
    assert compare("[exp(z1)/(exp(z1) + exp(z2)) - g1, exp(z2)/(exp(z1) + exp(z2)) - (1 - g1)]", computed)[0] == "match"
    assert compare("[1/(1 + exp(z2 - z1)) - g1, 1/(1 + exp(z1 - z2)) - 1 + g1]", computed)[0] == "match"
    assert compare("[exp(z1)/(exp(z1) + exp(z2)) - g1, exp(z2)/(exp(z1) + exp(z2)) - g1]", computed)[0] == "mismatch"


def test_a_key_the_fast_proof_cannot_read_still_matches_by_simplify(monkeypatch):
    import sympy

    from examsolver.engine.identity import proves_zero

    x, y = sympy.symbols("x y", positive=True)
    calls, simplify = [], sympy.simplify
    monkeypatch.setattr(sympy, "simplify", lambda *a, **k: calls.append(a) or simplify(*a, **k))
    assert not proves_zero(sympy.log(x * y) - sympy.log(x) - sympy.log(y))      # ln(xy) = ln x + ln y needs x, y > 0
    assert compare("ln(x) + ln(y)", sympy.log(x * y))[0] == "match" and calls
    assert compare("ln(x) + 2*ln(y)", sympy.log(x * y))[0] == "mismatch"


def _run(*args):
    return runner.invoke(app, ["verify", *map(str, args), "--lang", "en"], env={"COLUMNS": "200"})


def test_problems_directory_passes():
    result = _run(PROBLEMS)
    assert result.exit_code == 0, result.output


def test_wrong_key_exits_1_and_bad_file_2_while_the_rest_still_run(tmp_path):
    good = (PROBLEMS / "2022_z3.yaml").read_text(encoding="utf-8")
    (tmp_path / "a_wrong.yaml").write_text(good.replace("p: [1/3, 2/3]", "p: [0.33, 0.67]")
                                           .replace("h1: [[2, -1, 1], [1, 1, 1]]", "h1: [[2, 0, 1], [1, 1, 1]]"),
                                           encoding="utf-8")
    result = _run(tmp_path / "a_wrong.yaml")
    assert result.exit_code == 1 and "WRONG" in result.output
    (tmp_path / "b_bad.yaml").write_text("id: x\nmodel: [{conv9d: {}}]\ndata: {x: 1}\n", encoding="utf-8")
    result = _run(tmp_path)
    assert result.exit_code == 2
    assert "b_bad.yaml" in result.output and "a_wrong.yaml" in result.output and "h1" in result.output


def test_missing_path_is_an_error(tmp_path):
    assert _run(tmp_path / "nothing.yaml").exit_code == 2


def test_reports_for_ci(tmp_path):
    out_json, out_xml = tmp_path / "r.json", tmp_path / "r.xml"
    result = _run(PROBLEMS / "2022_z1.yaml", PROBLEMS / "2022_z3.yaml", "--report", "json", out_json,
                  "--report", "junit", out_xml)
    assert result.exit_code == 0, result.output
    data = json.loads(out_json.read_text(encoding="utf-8"))
    assert data["summary"]["exit_code"] == 0 and data["summary"]["files"] == 2
    assert [f["id"] for f in data["files"]] == ["2022_z1", "2022_z3"]
    root = ET.parse(out_xml).getroot()
    suites = root.findall("testsuite")
    assert len(suites) == 2 and all(s.get("failures") == "0" for s in suites)


def test_parallel_jobs_keep_the_order(tmp_path):
    """The report keeps the order given, though the workers take the symbolic spec (2022_z4) first."""
    out1, out2 = tmp_path / "1.json", tmp_path / "2.json"
    files = [PROBLEMS / f"2022_z{k}.yaml" for k in (3, 1, 4, 2)]
    _run(*files, "--report", "json", out1)
    _run(*files, "--jobs", "2", "--report", "json", out2)
    order = [[f["path"] for f in json.loads(p.read_text())["files"]] for p in (out1, out2)]
    assert order[0] == order[1] == [str(f) for f in files]


def test_glob_paths(tmp_path):
    """A quoted glob is expanded by verify itself: the five 2022 tasks, in order, every key entry right."""
    out = tmp_path / "r.json"
    result = _run(str(PROBLEMS / "2022_z*.yaml"), "--report", "json", out)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [f["id"] for f in data["files"]] == [f"2022_z{k}" for k in range(1, 6)]
    assert [f["status"] for f in data["files"]] == ["pass"] * 5
    summary = data["summary"]
    assert summary["wrong"] == summary["errors"] == summary["exit_code"] == 0 and summary["correct"] == summary["entries"]


def test_published_seed_keys_flag_exactly_the_wrong_answers(tmp_path):
    """keys/seeds: the slides' answers; only what the slides got wrong (or cut off) is flagged."""
    out = tmp_path / "seeds.json"
    _run(PROBLEMS, "--keys", ROOT / "keys" / "seeds", "--report", "json", out)
    data = json.loads(out.read_text(encoding="utf-8"))
    flagged = {(f["id"], e["name"]) for f in data["files"] for e in f["entries"] if e["status"] != "match"}
    assert not [f["path"] for f in data["files"] if f["status"] == "error"]
    assert flagged == {("2022_z2", "precision"), ("2022_z2", "recall"),     # 0.66 for 2/3: cut off, not rounded
                       ("2022_z5", "lstm_one_bias.params.total"),           # 68; right: 156 (one bias) or 180
                       ("003_glorot", "glorot.variance")}                    # 1/n; right: 2/(m + n)
    by_name = {(f["id"], e["name"]): e for f in data["files"] for e in f["entries"]}
    lstm = by_name[("2022_z5", "lstm_one_bias.params.total")]
    assert lstm["computed"] == "156" and lstm["explanation"]["name"] == "first_layer_only_count"
    assert by_name[("2022_z2", "precision")]["truncated"] and by_name[("2022_z2", "recall")]["truncated"]


def test_degeneracy_shows_the_alternative_answer(tmp_path):
    # h = 1 − 1 = 0 exactly; ∂L/∂W1 = 0 with ReLU′(0) = 0 and [[4, 4]] with ReLU′(0) = 1 (see test_check.py).
    spec = tmp_path / "relu0.yaml"
    spec.write_text("""id: t_relu
model:
  - linear: {name: fc1, W: [[1, -1]], b: [0]}
  - relu
  - linear: {name: fc2, W: [[2]], b: [1]}
loss: mse
data: {x: [1, 1], y: [0]}
tasks:
  - gradient: {wrt: [fc1.W]}
answers:
  fc1.W.grad: [[0, 0]]
""", encoding="utf-8")
    out = tmp_path / "r.json"
    result = _run(spec, "--report", "json", out)
    assert result.exit_code == 0
    assert "ReLU derivative at 0 taken as 1" in result.output
    (file,) = json.loads(out.read_text())["files"]
    assert file["warnings"]
    (alt,) = file["alternatives"]
    assert alt["convention"] == "relu_grad_at_zero_one" and alt["results"]["fc1.W.grad"] == "[[4, 4]]"
