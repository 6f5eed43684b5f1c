"""How numbers look: the one place that decides exact forms, decimals and layout.

Three notations share the same walk over a value: `plain` (Unicode, for the
terminal), `latex`, and `code` (ASCII that our own expression parser reads back,
used in JSON and answer keys).  Policy: terminating rationals with few digits are
written as decimals (0.5, 1.25), other rationals as fractions (1/3); irrational
values keep their exact form and get a decimal beside them; a tensor whose
entries share an irrational factor is written as that factor times a tensor of
integers (ln 2/9 · [6, −1, 3]).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from math import gcd, lcm

MAX_TERMINATING_DECIMALS = 4   # 1.25 stays a decimal, 1/3 and 1/64 become fractions
APPROX_DECIMALS = 4


@dataclass(frozen=True)
class Notation:
    minus: str
    times: str          # between a coefficient and an atom
    ln: str             # format with {p}
    sqrt: str           # format with {n}
    pi: str
    e_power: str        # format with {k}
    power: str          # format with {base} {k}

    def frac(self, num: str, den: str) -> str:
        return f"{num}/{den}"


class _Plain(Notation):
    pass


class _Latex(Notation):
    def frac(self, num: str, den: str) -> str:
        return f"\\frac{{{num}}}{{{den}}}"


PLAIN = _Plain(minus="−", times=" ", ln="ln {p}", sqrt="√{n}", pi="π", e_power="e{k}", power="({base}){k}")
LATEX = _Latex(minus="-", times=" ", ln="\\ln {p}", sqrt="\\sqrt{{{n}}}", pi="\\pi", e_power="e^{{{k}}}",
               power="({base})^{{{k}}}")
CODE = Notation(minus="-", times="*", ln="ln({p})", sqrt="sqrt({n})", pi="pi", e_power="e**{k}",
                power="{base}**{k}")

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def _is_exact(value) -> bool:
    return hasattr(value, "_t")


# ----- scalars ---------------------------------------------------------------
def plain(value) -> str:
    return _scalar(value, PLAIN)


def latex(value) -> str:
    return _scalar(value, LATEX)


def code(value) -> str:
    return _scalar(value, CODE)


def _scalar(value, n: Notation) -> str:
    if type(value).__module__.startswith("sympy"):
        return _sympy_text(value, n)
    if not _is_exact(value):
        return _number(Fraction(value), n)
    if value.is_symbolic:
        return _sympy_text(value.sympy(), n)
    terms = value.terms
    if not terms:
        return "0"
    ordered = sorted(terms.items(), key=lambda mc: (mc[1] < 0, len(mc[0]), mc[0]))  # ln 3 − ln 2
    text = ""
    for i, (mono, c) in enumerate(ordered):
        piece = _term(mono, abs(c), n)
        if i == 0:
            text = (n.minus if c < 0 else "") + piece
        else:
            text += (f" {n.minus} " if c < 0 else " + ") + piece
    return text


def _number(q: Fraction, n: Notation) -> str:
    sign = n.minus if q < 0 else ""
    q = abs(q)
    if q.denominator == 1:
        return f"{sign}{q.numerator}"
    as_decimal = _terminating(q)
    if as_decimal is not None:
        return sign + as_decimal
    return sign + n.frac(str(q.numerator), str(q.denominator))


def _terminating(q: Fraction) -> str | None:
    """'1.25' for 5/4; None when q has no short finite decimal expansion."""
    for places in range(1, MAX_TERMINATING_DECIMALS + 1):
        scaled = q * 10**places
        if scaled.denominator == 1:
            digits = str(abs(scaled.numerator)).rjust(places + 1, "0")
            return f"{digits[:-places]}.{digits[-places:]}"
    return None


def _term(mono: tuple, c: Fraction, n: Notation) -> str:
    """|c| · monomial, with the monomial in the numerator (\\frac{2 ln 2}{9})."""
    if not mono:
        return _number(c, n)
    atoms = n.times.join(_atom(atom, k, n) for atom, k in mono)
    if c.numerator == 1:
        num = atoms
    else:
        num = f"{c.numerator}{n.times}{atoms}"
    if c.denominator == 1:
        return num
    if isinstance(n, _Latex):
        return n.frac(num, str(c.denominator))
    return f"{num}/{c.denominator}"


def _atom(atom: tuple, k: int, n: Notation) -> str:
    kind = atom[0]
    if kind == "e":
        if k == 1:
            return "e"
        sup = str(k).translate(_SUPERSCRIPT) if n is PLAIN else str(k)
        return n.e_power.format(k=sup)
    base = {"ln": n.ln.format(p=atom[-1]), "sqrt": n.sqrt.format(n=atom[-1]), "pi": n.pi}[kind]
    if k == 1:
        return base
    sup = str(k).translate(_SUPERSCRIPT) if n is PLAIN else str(k)
    if kind == "pi" and n is not CODE:
        return f"{base}^{{{sup}}}" if isinstance(n, _Latex) else base + sup
    return n.power.format(base=base, k=sup)


def _sympy_text(expr, n: Notation) -> str:
    import sympy

    if isinstance(n, _Latex):
        return sympy.latex(expr, ln_notation=True)
    if n is CODE:
        return sympy_code(expr)
    return sympy_plain(expr)


def sympy_code(expr) -> str:
    """ASCII our parser reads back (ln, e, **), for JSON and keys."""
    from examsolver.render.sympy_text import code_text

    return code_text(expr)


def sympy_plain(expr) -> str:
    """One-line Unicode for the terminal: ln, ·, ^, −, π, √, matrices as rows."""
    from examsolver.render.sympy_text import plain_text

    return plain_text(expr)


# ----- decimals ---------------------------------------------------------------
def decimal_text(value, separator: str = ".", places: int = APPROX_DECIMALS) -> str:
    """The value rounded for reading: 0.4621, 1.200·10⁻⁵ (as many significant digits as places)."""
    d = value.decimal(places + 12) if _is_exact(value) else Decimal(str(value))
    if d != 0 and abs(d) < Decimal(10) ** -places:
        mantissa, _, exponent = f"{d:.{places - 1}e}".partition("e")
        text = f"{mantissa}·10{str(int(exponent)).translate(_SUPERSCRIPT)}"
    else:
        text = str(d.quantize(Decimal(10) ** -places, rounding=ROUND_HALF_EVEN))
        text = text.rstrip("0").rstrip(".") if "." in text else text
        if text in ("-0", ""):
            text = "0"
    text = text.replace("-", "−")
    return text.replace(".", separator)


def decimal_texts(values: list, separator: str = ".", places: int = APPROX_DECIMALS) -> list[str]:
    """Approximations with the same number of places everywhere ([0.4621, −0.0770, 0.2310], not
    [0.4621, −0.077, 0.231]; ≈ 0.2310 beside ≈ 0.4621): one precision, as a reader compares them."""
    texts = [decimal_text(v, ".", places) for v in values]
    out = []
    for text in texts:
        if "·10" not in text and text != "0":
            whole, _, fraction = text.partition(".")
            text = f"{whole}.{fraction.ljust(places, '0')}"
        out.append(text.replace(".", separator))
    return out


def needs_decimal(value) -> bool:
    """Irrational values and fractions like 1/3 get a decimal beside them."""
    if not _is_exact(value):
        return False
    if not value.is_rational():
        return True
    q = value.as_fraction()
    return q.denominator != 1 and _terminating(q) is None


def localize(text: str, separator: str) -> str:
    """Swap the decimal point of already formatted numbers (1.25 → 1,25)."""
    if separator == ".":
        return text
    out = []
    for i, ch in enumerate(text):
        if ch == "." and 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit():
            out.append("{,}" if separator == "{,}" else separator)
        else:
            out.append(ch)
    return "".join(out)


# ----- tensors --------------------------------------------------------------
def common_factor(values: list):
    """(factor, integers) when every non-zero entry is q·m for one irrational monomial m.

    [2/3·ln 2, −1/9·ln 2, 1/3·ln 2] → (ln 2/9, [6, −1, 3]); otherwise None.
    A shared minus sign goes into the factor.
    """
    mono = None
    coeffs = []
    for v in values:
        if not _is_exact(v) or v.is_symbolic or len(v.terms) > 1:
            return None
        if not v.terms:
            coeffs.append(Fraction(0))
            continue
        (m, c), = v.terms.items()
        if m == () or (mono is not None and m != mono):
            return None
        mono = m
        coeffs.append(c)
    if mono is None:
        return None
    den = lcm(*(c.denominator for c in coeffs))
    ints = [int(c * den) for c in coeffs]
    g = gcd(*ints)
    if all(i <= 0 for i in ints):
        g = -g
    from examsolver.engine.scalar import Exact

    factor = Exact._terms({mono: Fraction(g, den)})
    return factor, [i // g for i in ints]
