"""`examsolver vary`: reproducible variants whose every worked-solution value stays nice, each a spec
whose key the engine computes — confirmed here against PyTorch (the convolutional problem) and a hand
computation (the retrieval problem), and the refusals of a bad `vary:` block located like every other
spec error."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from examsolver import vary
from examsolver.cli import app
from examsolver.engine.scalar import Exact
from examsolver.pipeline import solve_file
from examsolver.spec.expr import parse_nested, parse_value
from examsolver.spec.load import load_file, load_text

from conftest import PROBLEMS

runner = CliRunner()
Z2, Z3 = PROBLEMS / "2022_z2.yaml", PROBLEMS / "2022_z3.yaml"


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@functools.lru_cache(maxsize=None)
def drawn(path: Path, n: int, seed: int):
    return vary.draw(load_file(path), n, seed)


@functools.lru_cache(maxsize=None)
def written(path: Path, n: int, seed: int, tmp: Path):
    result = run("vary", path, "-n", n, "--seed", seed, "-o", tmp, "--report")
    assert result.exit_code == 0, result.output
    return sorted(tmp.glob("*_v*.yaml")), result.stdout


@pytest.fixture(scope="module")
def z3_variants(tmp_path_factory):
    return written(Z3, 3, 1, tmp_path_factory.mktemp("z3"))


@pytest.fixture(scope="module")
def z2_variants(tmp_path_factory):
    return written(Z2, 4, 3, tmp_path_factory.mktemp("z2"))


# ----- the variants are right -----------------------------------------------------------------
def _torch_conv_gradient(x, kernels, W, b, y):
    """∂L/∂kernels of conv1d (no padding) → ReLU → global average → linear → softmax + CE, by autograd."""
    k = torch.tensor(kernels, dtype=torch.float64, requires_grad=True)
    h = torch.relu(torch.nn.functional.conv1d(torch.tensor([[x]], dtype=torch.float64), k.unsqueeze(1)))
    s = torch.tensor(W, dtype=torch.float64) @ h.mean(dim=2)[0] + torch.tensor(b, dtype=torch.float64)
    loss = torch.nn.functional.cross_entropy(s.unsqueeze(0), torch.tensor([y]))
    loss.backward()
    return k.grad.numpy(), torch.softmax(s, 0).detach().numpy()


def _floats(value):
    return np.vectorize(float, otypes=[float])(np.asarray(parse_nested(value), dtype=object))


def test_z3_variant_keys_agree_with_pytorch(z3_variants):
    paths, _ = z3_variants
    assert len(paths) == 3
    for path in paths:
        doc = load_file(path)
        data, layers = doc.data, doc.data["model"]
        W, b = _floats(layers[3]["linear"]["W"]), _floats(layers[3]["linear"]["b"])
        grad, p = _torch_conv_gradient([float(v) for v in data["data"]["x"]], layers[0]["conv1d"]["kernels"],
                                       W, b, data["data"]["y"])
        key = data["answers"]
        assert np.allclose(_floats(key["conv1.W.grad"]), grad, atol=1e-12), path.name
        assert np.allclose(_floats(key["p"]), p, atol=1e-12), path.name


def test_z2_variant_keys_agree_with_a_hand_computation(z2_variants):
    """The retrieval keys `vary` wrote, against test_key_sources.py's hand computation (distances,
    ranking, precision and recall, both APs) from each variant's own numbers."""
    from test_key_sources import SOURCES, keys_of, mismatches, spec_of

    paths, _ = z2_variants
    assert len(paths) == 4
    compute, _ = SOURCES["2022_z2"]
    for path in paths:
        values, keys = compute(spec_of(path)), keys_of(path)
        assert set(keys) == set(values), path.name
        assert not {name: bad for name, written in keys.items() if (bad := mismatches(written, values[name]))}, path.name


def test_written_variants_read_back_and_verify(z2_variants, z3_variants):
    """A consistency check, not a proof: `verify` reads back the keys `vary` wrote and finds the engine's
    own results (the z3 keys are confirmed by PyTorch, the z2 keys by hand, in the tests above)."""
    paths = z2_variants[0] + z3_variants[0]
    result = run("verify", *paths)
    assert result.exit_code == 0, result.output


def test_the_statement_shows_the_variants_numbers(z3_variants):
    path = z3_variants[0][0]
    x = load_file(path).data["data"]["x"]
    for lang, written_x in (("en", ", ".join(map(str, x))), ("hr", "; ".join(map(str, x)))):
        statement = solve_file(path).statement[lang]
        assert "{{" not in statement
        text = run("solve", path, "--lang", lang, "--format", "md").stdout
        assert f"[{written_x}]^T" in text.replace("−", "-")


def _nice(value: Exact, denominator: int, digits: int) -> bool:
    if value.is_symbolic:
        return False
    return all(c.denominator <= denominator and abs(c.numerator) < 10**digits and c.denominator < 10**digits
               for c in value.terms.values())


def test_every_value_of_the_worked_solution_is_nice():
    doc = load_file(Z3)
    block = vary.read_block(doc)[0]
    variants, _ = drawn(Z3, 3, 1)
    original = {atom for v in vary._numbers(solve_file(Z3)) for mono in v.terms for atom, _ in mono}
    assert original == {("ln", 2), ("ln", 3)}        # W₂, b₂ and the loss ln 3
    for variant in variants:
        numbers = list(vary._numbers(variant.solution))
        assert len(numbers) > 40          # the steps' values, not only the answers
        assert all(_nice(v, block.nice.denominator, block.nice.digits) for v in numbers)
        assert {atom for v in numbers for mono in v.terms for atom, _ in mono} <= original


def test_draws_are_reproducible_and_distinct():
    first, second = drawn(Z2, 4, 3), vary.draw(load_file(Z2), 4, 3)
    assert [v.drawn for v in first[0]] == [v.drawn for v in second[0]]
    other = drawn(Z2, 4, 4)
    assert [v.drawn for v in first[0]] != [v.drawn for v in other[0]]
    signatures = [repr(v.data["X"]) + repr(v.data["y"]) + repr(v.data["query"]) for v in first[0]]
    original = load_file(Z2).data
    assert len(set(signatures)) == 4
    assert repr(original["X"]) + repr(original["y"]) + repr(original["query"]) not in signatures


def test_constraints_and_degeneracies_hold():
    variants, stress = drawn(Z2, 4, 3)
    for variant in variants:
        assert 2 <= sum(variant.data["y"]) <= 3                       # where: …
        assert not variant.solution.warnings                          # no tie (the original has none)
        similarity = list(variant.solution.results["similarity"])
        assert len(set(similarity)) == len(similarity)
    assert stress.tried >= stress.accepted == 4


def test_keep_decisions_keeps_the_relu_pattern(tmp_path):
    # x = [4, x₁, 2, x₃, 1]: the original's mask [[+, −, +], [+, +, +]] needs x₁ < x₃ < x₁ + 2 and x₃ > −1
    # (by hand: x₁ − x₃ < 0, x₁ + 2 − x₃ > 0, 1 + x₃ > 0); of x₁ ∈ {2, 3}, x₃ ∈ {0, 3, 4} that leaves
    # (2, 3) and (3, 4), and only (2, 3) keeps p in Q (the pooled sums differ by a multiple of 3).
    text = Z3.read_text(encoding="utf-8").replace("keep: degeneracies", "keep: decisions")
    text = text.replace("data.x: {each: {from: -2, to: 4}}\n    data.y: [0, 1]",
                        "data.x[1]: [-1, 2, 3]\n    data.x[3]: [0, 3, 4]")
    doc = load_text(text, "z3_decisions.yaml")
    variants, stress = vary.draw(doc, 2, 0, max_tries=200)
    assert [v.drawn for v in variants] == [{"data.x[1]": 2, "data.x[3]": 3}]
    assert stress.rejected["other decisions (ReLU mask, winner, ranking) than the original"] > 0
    pattern = [[v.sign() for v in row] for row in solve_file(Z3).results["h1"]]
    for variant in variants:
        assert [[v.sign() for v in row] for row in variant.solution.results["h1"]] == pattern


# ----- the report ---------------------------------------------------------------------------
def test_report_names_acceptance_spread_and_repeats(z3_variants):
    paths, stdout = z3_variants
    assert "3 of 3 variants from" in stdout and "acceptance" in stdout
    assert "p[0]:" in stdout and "rejected" in stdout
    directory = paths[0].parent
    assert (directory / "2022_z3_report.txt").read_text(encoding="utf-8") in stdout
    assert (directory / "2022_z3_report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_too_few_variants_are_reported(tmp_path):
    result = run("vary", Z3, "-n", 2, "--seed", 0, "-o", tmp_path, "--max-tries", 1)
    assert "only" in result.stderr and "of 2 variants" in result.stderr


def test_the_draw_is_bounded_in_time(tmp_path):
    result = run("vary", Z3, "-n", 50, "--seed", 0, "-o", tmp_path, "--seconds", 0.01, "--report")
    assert "stopped after 0.01 s of CPU" in result.stdout and "warning: only" in result.stdout


def test_booklet_of_the_variants(tmp_path):
    result = run("vary", Z2, "-n", 2, "--seed", 3, "-o", tmp_path, "--format", "md", "--lang", "en")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "2022_z2_variants.md").read_text(encoding="utf-8")
    assert "(variant 1)" in text and "(variant 2)" in text


# ----- refusals -----------------------------------------------------------------------------
BAD_BLOCKS = [
    ("vary: {values: {data.q: [1, 2]}}", "names nothing"),
    ("vary: {values: {'data.x +': [1]}}", "malformed path"),
    ("vary: {values: {data.x: {each: {from: 3, to: 1}}}}", "from ≤ to"),
    ("vary: {values: {data.x: {each: {from: 0, to: 1000000}}}}", "more than"),
    ("vary: {values: {data.x: [1]}, keep: everything}", "keep"),
    ("vary: {values: {data.x: [1]}, colour: red}", "unknown field 'colour'"),
    ("vary: {values: {data.x: [1]}, where: ['__import__(\"os\")']}", "not a constraint"),
    ("vary: {values: {data.x: {each: [[1, 2]]}}}", "numbers, one per entry"),
]


@pytest.mark.parametrize("block, message", BAD_BLOCKS, ids=[m for _, m in BAD_BLOCKS])
def test_bad_vary_block_is_one_located_line(tmp_path, block, message):
    text = Z3.read_text(encoding="utf-8").split("\nvary:")[0] + "\n" + block + "\n"
    spec = tmp_path / "bad.yaml"
    spec.write_text(text, encoding="utf-8")
    for command in (("vary", spec, "-o", tmp_path / "out"), ("solve", spec)):
        result = run(*command)
        assert result.exit_code == 2, (command, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{spec}:") and message in lines[0], lines
        assert "Traceback" not in result.output


def test_a_placeholder_naming_nothing_is_located(tmp_path):
    text = Z3.read_text(encoding="utf-8").replace("{{data.y}}", "{{data.z}}", 1)
    spec = tmp_path / "bad.yaml"
    spec.write_text(text, encoding="utf-8")
    result = run("solve", spec)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{spec}:8:") and "placeholder {{data.z}}" in result.stderr


def test_no_vary_block(tmp_path):
    result = run("vary", PROBLEMS / "004_t1.yaml", "-o", tmp_path)
    assert result.exit_code == 2 and "no `vary:` block" in result.stderr


def test_decimal_values_stay_decimals():
    assert vary._yaml_value(parse_value("-1/2")) == "-0.5"
    assert vary._yaml_value(parse_value("1/3")) == "1/3"
    assert vary._yaml_value(parse_value("4")) == 4


def test_vary_then_moodle_as_the_issue_writes_it(z3_variants, tmp_path):
    """`vary … -o DIR` then `solve DIR/*.yaml --format moodle -o quiz.xml`: one category, a Cloze per variant,
    each blank the variant's own result (solved again here), the statement with the variant's numbers."""
    import xml.etree.ElementTree as ET

    from test_moodle import _close, parse_blanks
    from examsolver.verify import as_decimal

    paths, _ = z3_variants
    quiz = tmp_path / "quiz.xml"
    result = run("solve", *paths, "--format", "moodle", "-o", quiz)
    assert result.exit_code == 0, result.output
    root = ET.parse(quiz).getroot()
    assert [q.get("type") for q in root] == ["category"] + ["cloze"] * len(paths)
    for question, path in zip(list(root)[1:], paths):
        text = question.find("questiontext/text").text
        x = load_file(path).data["data"]["x"]
        assert "[" + "; ".join(map(str, x)) + "]" in text
        p = solve_file(path).results["p"]
        first = parse_blanks(text)[:2]
        assert all(_close(blank[0]["value"], as_decimal(v)) for blank, v in zip(first, p))


def test_a_varied_value_the_statement_does_not_show_is_warned(tmp_path):
    spec = tmp_path / "ns.yaml"
    spec.write_text(Z3.read_text(encoding="utf-8").replace("{{data.x}}", "[4; -1; 2; 0; 1]"), encoding="utf-8")
    result = run("vary", spec, "-n", 1, "--seed", 1, "-o", tmp_path / "out")
    assert "warning: the statement does not show data.x (write it as {{data.x}})" in result.stderr
    assert "data.y" not in result.stderr                      # shown through its placeholder
    assert "does not show" not in run("vary", Z3, "-n", 1, "--seed", 1, "-o", tmp_path / "z3").stderr


def test_a_placeholder_of_text_is_refused_at_the_statement(tmp_path):
    spec = tmp_path / "id.yaml"
    spec.write_text(Z3.read_text(encoding="utf-8").replace("{{data.y}}", "{{id}}"), encoding="utf-8")
    result = run("solve", spec)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.startswith(f"{spec}:8:") and "a placeholder:" in result.stderr
