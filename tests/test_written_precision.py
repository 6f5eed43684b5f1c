"""One comparison rule for every way of writing an answer (verify, check, Moodle tolerances).

A decimal literal stands for what rounds to it — ± half a unit of its last digit — whether it is a
YAML number, an entry of a YAML list, or inside an expression string; its uncertainty is carried
through the expression.  Expected verdicts are derived by hand in the comments.
"""

from decimal import Decimal
from fractions import Fraction

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from examsolver.cli import app
from examsolver.engine.scalar import Exact
from examsolver.spec.expr import decimal_radius, parse_number, parse_written
from examsolver.verify import blank_tolerance, compare

from conftest import PROBLEMS

THIRDS = [parse_number("1/3"), parse_number("2/3")]
G = [parse_number(t) for t in ("2*ln(2)/3", "-ln(2)/9", "ln(2)/3")]     # ln(2)/9·[6, −1, 3] = [0.46210, −0.07702, 0.23105]


@pytest.mark.parametrize("key, status", [
    (["0.33", "0.67"], "match"),            # YAML numbers (they arrive as their text)
    ("[0.33, 0.67]", "match"),              # the same numbers inside an expression string
    ("[0.3333, 0.6667]", "match"),
    ("[0.3, 0.7]", "match"),                # one decimal: ± 0.05
    ("[1/3, 2/3]", "match"),
    ("[0.34, 0.67]", "mismatch"),           # |0.34 − 1/3| = 0.0067 > 0.005
    ("[0.3334, 0.6667]", "mismatch"),       # |0.3334 − 1/3| = 0.000067 > 0.00005
    (["0.3334", "0.6667"], "mismatch"),
    ("[0.333, 2/3]", "match"),              # decimals and exact forms mixed
    ("[0.33, 0.6667 + 0]", "match"),        # 0.6667 inside a sum keeps its ± 0.00005
    ("[0.33, 0.6668 + 0]", "mismatch"),
])
def test_thirds_written_every_way(key, status):
    assert compare(key, THIRDS)[0] == status


@pytest.mark.parametrize("key, status", [
    ("ln(2)/9*[6, -1, 3]", "match"),                  # exact
    ("[0.462, -0.077, 0.231]", "match"),              # 3 decimals: ± 0.0005
    ("[0.4621, -0.0770, 0.2310]", "match"),           # 0.23105 − 0.2310 = 0.00005 (0.0000490…)
    ("[0.4621, -0.0770, 0.2311]", "mismatch"),        # 0.2311 − 0.231049 = 0.000051 > 0.00005
    ("ln(2)*[0.667, -0.111, 0.333]", "match"),        # each ± 0.0005·ln 2; 2/3 − 0.667 = 0.00033 → 0.00023 ≤ 0.00035
    ("ln(2)*[0.67, -0.11, 0.33]", "match"),           # ± 0.005·ln 2 = 0.0035; worst 0.0033·ln 2 = 0.0023
    ("ln(2)*[0.66, -0.11, 0.33]", "mismatch"),        # (2/3 − 0.66)·ln 2 = 0.0046 > 0.0035
    ("ln(2)/9*[6.0, -1, 3]", "match"),                # 6.0 is 6 ± 0.05
    ("ln(2)/9*[6.2, -1, 3]", "mismatch"),             # 0.2·ln 2/9 = 0.0154 > 0.05·ln 2/9 = 0.0039
])
def test_ln_answers_written_as_expressions_or_decimals(key, status):
    assert compare(key, G)[0] == status


@pytest.mark.parametrize("key, status", [
    ("0.154", "match"), ("0.1540", "match"),          # 2 ln 2/9 = 0.1540327
    ("0.155", "mismatch"), ("0.1541", "mismatch"),    # 0.00097 > 0.0005; 0.000067 > 0.00005
    ("0.15", "match"), ("0.16", "mismatch"),
    ("1.54e-1", "match"), ("1.55e-1", "mismatch"),    # 1.54e-1 has 3 decimals' precision
])
def test_one_number_by_its_written_decimals(key, status):
    assert compare(key, parse_number("2*ln(2)/9"))[0] == status


def test_exact_keys_stay_exact():
    assert compare("2/3", parse_number("0.6667"))[0] == "mismatch"
    assert compare("2e-3", parse_number("0.0021"))[0] == "mismatch"      # no point: an exact number
    assert compare("[1, 2]", [Exact(1), parse_number("2.01")])[0] == "mismatch"


def test_radius_of_written_decimals():
    assert decimal_radius("0.154") == Fraction(1, 2000)
    assert decimal_radius("-1.5e-3") == Fraction(1, 20000)
    assert decimal_radius("12") == 0
    (w,) = [parse_written("0.33*ln(2)")]
    assert 0 <= float(w.radius) - 0.005 * 0.6931471805599453 < 1e-9     # carried through the product, never less
    assert blank_tolerance("0.154") == Decimal("0.0005")
    assert blank_tolerance("0.46210") == Decimal("0.000005")


def test_truncation_is_still_named_inside_an_expression_list():
    status, detail = compare("[0.33, 0.66]", THIRDS)
    assert status == "mismatch" and detail.key == "check.truncated" and detail.args["rounded"] == "0.67"


def test_unbounded_decimals_are_an_invalid_answer():
    assert compare("1/(1.0 - 0.99)", parse_number("100"))[0] == "invalid"


@pytest.mark.parametrize("answer, code", [('"[0.33, 0.67]"', 0), ('"[0.3333, 0.6667]"', 0), ("[0.33, 0.67]", 0),
                                          ('"[0.34, 0.67]"', 1), ('"0.154*[3, -1/2, 3/2]"', 0),
                                          ('"0.155*[3, -1/2, 3/2]"', 1)])
def test_check_command_reads_expression_decimals(tmp_path, answer, code):
    """`check` on 2022 task 3: p = [1/3, 2/3]; conv1.W.grad[0] = ln 2/9·[6, −1, 3] = 0.154…·[3, −1/2, 3/2]
    (0.154·3 = 0.462 ± 0.0015 holds 0.46210; 0.155·3 = 0.465 ± 0.0015 does not)."""
    grad = yaml.safe_load(answer)
    key = {"p": yaml.safe_load(answer)} if "*" not in str(grad) else \
        {"conv1.W.grad": f"[{grad}, ln(2)/9*[-5, -1, -3]]"}
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(key))
    result = CliRunner().invoke(app, ["check", str(PROBLEMS / "2022_z3.yaml"), "-a", str(path), "-l", "en"])
    assert result.exit_code == code, result.output


# ----- the property: printed to k decimals is accepted, beyond the half-unit rejected ----------
EXACT = st.one_of(
    st.fractions(min_value=-1000, max_value=1000, max_denominator=10**6).map(Exact),
    st.tuples(st.fractions(min_value=-50, max_value=50, max_denominator=1000), st.sampled_from(["ln(2)", "sqrt(3)", "pi"]))
      .map(lambda t: parse_number(f"({t[0].numerator}/{t[0].denominator})*{t[1]}")),
)


def _printed(value: Exact, places: int) -> str:
    """value rounded half-to-even to places decimals, every digit certified (the engine's own rounding)."""
    def fmt(q: Fraction) -> str:
        n = round(q * 10**places)
        sign, digits = ("-" if n < 0 else ""), str(abs(n)).rjust(places + 1, "0")
        return sign + digits[:-places] + "." + digits[-places:]
    return value.rounded(fmt)


@settings(max_examples=150, deadline=None)
@given(EXACT, st.integers(min_value=1, max_value=9))
def test_any_exact_value_printed_to_k_decimals_is_accepted(value, places):
    text = _printed(value, places)
    assert compare(text, value)[0] == "match"
    assert compare(f"[{text}, 1]", [value, Exact(1)])[0] == "match"
    assert compare([text], [value])[0] == "match"


@settings(max_examples=150, deadline=None)
@given(st.fractions(min_value=-100, max_value=100, max_denominator=100).map(lambda q: round(q, 4)),
       st.integers(min_value=1, max_value=6),
       st.fractions(min_value=Fraction(-3), max_value=Fraction(3), max_denominator=10**6),
       st.sampled_from(["", "ln(2)", "sqrt(2)"]))
def test_a_value_beyond_half_a_unit_is_rejected(base, places, t, factor):
    """written d (k decimals), true value (d + t·10^-k)·factor: accepted iff |t| ≤ 1/2 (a margin of
    10^-5 of a unit where the half-unit is carried through a product by balls, which round it up)."""
    d = Fraction(round(base * 10**places), 10**places)
    digits = str(abs(d.numerator * 10**places // d.denominator)).rjust(places + 1, "0")
    text = ("-" if d < 0 else "") + digits[:-places] + "." + digits[-places:]
    assert Fraction(text) == d
    scale = parse_number(factor) if factor else Exact(1)
    value = Exact(d + t / 10**places) * scale
    key = f"{text}*{factor}" if factor else text
    if factor and abs(abs(t) - Fraction(1, 2)) < Fraction(1, 10**5):
        return
    assert compare(key, value)[0] == ("match" if abs(t) <= Fraction(1, 2) else "mismatch")
