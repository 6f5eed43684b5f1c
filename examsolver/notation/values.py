"""How numbers look: the one place that decides exact forms, decimals and layout.

Three notations share the same walk over a value: `plain` (Unicode, for the
terminal), `latex`, and `code` (ASCII that our own expression parser reads back,
used in JSON and answer keys).  Policy: rationals are written as integers or
fractions (1/2, 3/2, 1/3 alike — an exact form never carries decimals); values
outside the ring are written in their short closed form (tanh(3/5)) or, past its
budget, as certified decimals; fractions like 1/3 and irrational values get a
decimal beside them, rounded so that every digit printed is correct; a tensor
whose entries share an irrational factor is written as that factor times a
tensor of integers (ln 2/9 · [6, −1, 3]).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from math import gcd, lcm

MAX_TERMINATING_DECIMALS = 4   # 1/2 and 5/4 need no decimal beside them; 1/3 and 1/64 do
APPROX_DECIMALS = 4
DIGITS = 15                    # significant digits of the certified decimals in JSON


@dataclass(frozen=True)
class Notation:
    minus: str
    times: str          # between a coefficient and an atom
    ln: str             # format with {p}
    sqrt: str           # format with {n}
    pi: str
    e_power: str        # format with {k}
    power: str          # format with {base} {k}
    pi_power: str = "{base}{k}"
    e: str = "e"
    plus: str = " + "
    cdot: str = "·"     # between two factors that are not numbers
    stacked = False     # fractions as \frac / <mfrac>, not a/b
    writes_sympy = True  # False: sympy values are not written (NoForm)

    def frac(self, num: str, den: str) -> str:
        return f"{num}/{den}"

    def number(self, digits) -> str:
        return str(digits)

    def signed(self, text: str) -> str:
        return self.minus + text

    def binary_minus(self) -> str:
        return f" {self.minus} "

    def exponent(self, k: int) -> str:
        return str(k)

    def is_signed(self, text: str) -> bool:
        return text.startswith(self.minus)

    def paren(self, text: str) -> str:
        return f"({text})"

    def raised(self, base: str, k: int) -> str:
        return f"{base}**{k}"

    def call(self, op: str, inner: str) -> str:
        return _CALLS[op][2].format(inner)

    def decimal(self, text: str) -> str:
        return text.replace("−", self.minus)


class _Plain(Notation):
    def exponent(self, k: int) -> str:
        return str(k).translate(_SUPERSCRIPT)

    def raised(self, base: str, k: int) -> str:
        return base + self.exponent(k)

    def call(self, op: str, inner: str) -> str:
        return _CALLS[op][0].format(inner)


class _Latex(Notation):
    stacked = True

    def frac(self, num: str, den: str) -> str:
        return f"\\frac{{{num}}}{{{den}}}"

    def paren(self, text: str) -> str:
        return f"\\left({text}\\right)"

    def raised(self, base: str, k: int) -> str:
        return f"{{{base}}}^{{{k}}}"

    def call(self, op: str, inner: str) -> str:
        return _CALLS[op][1].format(inner)


class NoForm(Exception):
    """A value this notation does not write (a sympy value in MathML: the printer takes its LaTeX)."""


PLAIN = _Plain(minus="−", times=" ", ln="ln {p}", sqrt="√{n}", pi="π", e_power="e{k}", power="({base}){k}")
LATEX = _Latex(minus="-", times=" ", ln="\\ln {p}", sqrt="\\sqrt{{{n}}}", pi="\\pi", e_power="e^{{{k}}}",
               power="({base})^{{{k}}}", pi_power="{base}^{{{k}}}", cdot=" \\cdot ")
CODE = Notation(minus="-", times="*", ln="ln({p})", sqrt="sqrt({n})", pi="pi", e_power="e**{k}",
                power="{base}**{k}", cdot="*")
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


def written(value, n: Notation) -> str:
    """An exact number (or sympy value) in a notation of a printer's own (render/mathml.py's MathML)."""
    return _scalar(value, n)


def _scalar(value, n: Notation) -> str:
    if type(value).__module__.startswith("sympy"):
        return _sympy_text(value, n)
    if not _is_exact(value):
        return _number(Fraction(value), n)
    if value.is_symbolic:
        return _certified(value, n)[0]
    terms = value.terms
    if not terms:
        return n.number(0)
    ordered = sorted(terms.items(), key=lambda mc: (mc[1] < 0, len(mc[0]), mc[0]))  # ln 3 − ln 2
    text = ""
    for i, (mono, c) in enumerate(ordered):
        piece = _term(mono, abs(c), n)
        if i == 0:
            text = n.signed(piece) if c < 0 else piece
        else:
            text += (n.binary_minus() if c < 0 else n.plus) + piece
    return text


def _number(q: Fraction, n: Notation) -> str:
    a = abs(q)
    text = n.number(a.numerator) if a.denominator == 1 else n.frac(n.number(a.numerator), n.number(a.denominator))
    return n.signed(text) if q < 0 else text


def _term(mono: tuple, c: Fraction, n: Notation) -> str:
    """|c| · monomial, with the monomial in the numerator (\\frac{2 ln 2}{9})."""
    if not mono:
        return _number(c, n)
    atoms = n.times.join(_atom(atom, k, n) for atom, k in mono)
    if c.numerator == 1:
        num = atoms
    else:
        num = f"{n.number(c.numerator)}{n.times}{atoms}"
    if c.denominator == 1:
        return num
    if n.stacked:
        return n.frac(num, n.number(c.denominator))
    return f"{num}/{c.denominator}"


def _atom(atom: tuple, k: int, n: Notation) -> str:
    kind = atom[0]
    if kind == "e":
        if k == 1:
            return n.e
        return n.e_power.format(k=n.exponent(k))
    base = {"ln": n.ln.format(p=atom[-1]), "sqrt": n.sqrt.format(n=atom[-1]), "pi": n.pi}[kind]
    if k == 1:
        return base
    if kind == "pi" and n is not CODE:
        return n.pi_power.format(base=base, k=n.exponent(k))
    return n.power.format(base=base, k=n.exponent(k))


def _sympy_text(expr, n: Notation) -> str:
    import sympy

    if not n.writes_sympy:
        raise NoForm

    if isinstance(n, _Latex):
        return sympy.latex(expr, ln_notation=True)
    if n is CODE:
        return sympy_code(expr)
    return sympy_plain(expr)


def sympy_code(expr) -> str:
    """ASCII our parser reads back (ln, e, **), for JSON and keys."""
    from examsolver.notation.sympy_text import code_text

    return code_text(expr)


def sympy_plain(expr) -> str:
    """One-line Unicode for the terminal: ln, ·, ^, −, π, √, matrices as rows."""
    from examsolver.notation.sympy_text import plain_text

    return plain_text(expr)


# ----- values outside the ring -------------------------------------------------
# Precedence of a printed piece: 1 a sum, 2 a product or quotient, 3 a power, 4 an atom or a call.
_CALLS = {  # op: (plain, latex, code)
    "tanh": ("tanh({})", "\\tanh\\left({}\\right)", "tanh({})"),
    "sigmoid": ("σ({})", "\\sigma\\left({}\\right)", "sigmoid({})"),
    "log": ("ln({})", "\\ln\\left({}\\right)", "ln({})"),
    "sqrt": ("√({})", "\\sqrt{{{}}}", "sqrt({})"),
    "exp": ("e^({})", "e^{{{}}}", "exp({})"),
}


def _certified(value, n: Notation) -> tuple[str, int]:
    """(text, precedence) of a certified value: its closed form while it has one, else its decimals."""
    form = value.closed_form()
    if form is None:
        # all its places, as beside ≈ (0.5520, not 0.552, which would look exact)
        text = decimal_text(value, places=DIGITS, significant=True) if n is CODE else decimal_texts([value])[0]
        return n.decimal(text), 4
    op, args = form
    if op == "sympy":
        return _sympy_text(args[0], n), 1
    if op in _CALLS:
        return n.call(op, _piece(args[0], n, 0)), 4
    if op == "neg":
        return n.signed(_piece(args[0], n, 2)), 1
    if op == "pow":
        return n.raised(_piece(args[0], n, 4), args[1]), 3
    if op == "dot":             # ring + Σ aₖ·bₖ
        terms = [_piece(args[0], n, 1)] if args[0].sign() else []
        terms += [_product(args[k], args[k + 1], n) for k in range(1, len(args), 2)]
        return n.plus.join(terms), 1
    a, b = args
    if op == "mul":
        return _product(a, b, n), 2
    if op == "div" and n.stacked:
        return n.frac(_piece(a, n, 0), _piece(b, n, 0)), 4
    if op in ("add", "sub"):
        joint = n.plus if op == "add" else n.binary_minus()
        return _piece(a, n, 1) + joint + _piece(b, n, 1 if op == "add" else 2), 1
    return _piece(a, n, 2) + "/" + _piece(b, n, 3), 2


def _product(a, b, n: Notation) -> str:
    if a.is_rational() or b.is_rational():
        q, x = (a, b) if a.is_rational() else (b, a)
        q, x = _peeled(q.as_fraction(), x)
        form = x.closed_form()
        if form is not None and form[0] == "div" and q.denominator != 1:    # 1/(2 (1 + 2 e)), not 1/(1 + 2 e)/2
            top, bottom = form[1]
            num = _scaled(Fraction(q.numerator), _piece(top, n, 2), n)
            den = _scaled(Fraction(q.denominator), _piece(bottom, n, 2), n)
            return n.frac(num, den) if n.stacked else f"{num}/{n.paren(den)}"
        return _scaled(q, _piece(x, n, 2), n)
    return _piece(a, n, 2) + n.cdot + _piece(b, n, 2)


def _peeled(q: Fraction, x) -> tuple:
    """(q · the rational factors of x's closed form, the rest of x, written): 2 · 2 (σ(11) − 1) is
    4 (σ(11) − 1), not 2 2 (σ(11) − 1)."""
    while x.is_symbolic and (form := x.closed_form()) is not None:
        op, args = form
        if op == "neg":
            q, x = -q, args[0]
        elif op == "mul" and (args[0].is_rational() or args[1].is_rational()):
            r, x = (args[0], args[1]) if args[0].is_rational() else (args[1], args[0])
            q *= r.as_fraction()
        else:
            break
    return q, x


def _scaled(q: Fraction, text: str, n: Notation) -> str:
    """q · text written as the ring writes q · ln 2: 2 tanh(1)/3, −tanh(1)/3."""
    num = text if abs(q.numerator) == 1 else f"{n.number(abs(q.numerator))}{n.times}{text}"
    body = num if q.denominator == 1 else n.frac(num, n.number(q.denominator)) if n.stacked \
        else f"{num}/{q.denominator}"
    return n.signed(body) if q < 0 else body


def _piece(value, n: Notation, needed: int) -> str:
    """An operand, in parentheses when it binds less tightly than its place needs."""
    text, prec = _precedence(value, n)
    return text if prec >= needed else n.paren(text)


def _precedence(value, n: Notation) -> tuple[str, int]:
    """(text, how tightly it binds): 1 a sum or a signed term, 2 a product or fraction, 3 a power, 4 an atom."""
    if value.is_symbolic:
        return _certified(value, n)
    text = _scalar(value, n)
    stacked = "frac" in text if n.stacked else "/" in text
    prec = 1 if len(value.terms) > 1 or n.is_signed(text) else 2 if stacked else 4
    if prec == 4 and not value.is_rational() and n.times in text:
        prec = 2
    return text, prec


def precedence(value) -> int:
    """How tightly a value's text binds: 1 a sum or signed, 2 a product or fraction, 3 a power, 4 an atom."""
    return _precedence(value, PLAIN)[1] if _is_exact(value) else 4


def is_sum(value) -> bool:
    """Written as a sum or difference (ln 3 − ln 2, σ(11) − 1), not merely with a sign: a factor of a
    product that needs parentheses."""
    if not _is_exact(value):
        return False
    form = value.closed_form()
    if form is not None and form[0] == "neg":
        return is_sum(form[1][0])
    if not value.is_symbolic:
        return len(value.terms) > 1
    return form is not None and _certified(value, PLAIN)[1] <= 1


# ----- decimals ---------------------------------------------------------------
def decimal_text(value, separator: str = ".", places: int = APPROX_DECIMALS, significant: bool = False) -> str:
    """The value rounded for reading (0.4621, 1.2e-5), every digit certified; with `significant`,
    to that many significant digits."""
    fmt = (lambda q: _significant(q, places)) if significant else (lambda q: _rounded(q, places))
    text = value.rounded(fmt) if _is_exact(value) else fmt(Fraction(str(value)))
    if not significant and "e" in text:        # for reading: 1.200·10⁻⁵, 1.970·10⁴³⁴
        mantissa, _, exponent = text.partition("e")
        text = f"{mantissa}·10{str(int(exponent)).translate(_SUPERSCRIPT)}"
    return text.replace("-", "−").replace(".", separator)


def _rounded(q: Fraction, places: int) -> str:
    """q to `places` decimal places (half to even), or to `places` significant digits when smaller."""
    if q != 0 and (abs(q) < Fraction(1, 10**places) or abs(q) >= 10**20):    # 1.2e-5, 1.970e+434
        return _significant(q, places, fixed=False)
    text = str(_shifted(round(q * 10**places), -places))
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text in ("-0", "") else text


def _significant(q: Fraction, digits: int, fixed: bool = True) -> str:
    """q to `digits` significant digits: 0.731058578630005, 1.230e-5 (fixed=False: always 1.230e-5)."""
    if q == 0:
        return "0"
    a = abs(q)
    # the decimal exponent from the bit lengths (str() of a 4300-digit integer is refused by Python)
    e = int((a.numerator.bit_length() - a.denominator.bit_length()) * 0.30102999566398120)
    while a >= Fraction(10) ** e:
        e += 1
    while a < Fraction(10) ** (e - 1):
        e -= 1                                          # now 10^(e−1) ≤ a < 10^e
    m = round(a * Fraction(10) ** (digits - e))
    if m == 10**digits:
        m, e = m // 10, e + 1
    d = _shifted(m if q > 0 else -m, e - digits)
    if fixed and -6 <= e <= digits:
        text = str(d) if d.as_tuple().exponent < 0 else str(int(d))
        return text.rstrip("0").rstrip(".") if "." in text else text
    return f"{d:.{digits - 1}e}"


def _shifted(m: int, k: int) -> Decimal:
    """m · 10^k exactly (Decimal's own context would round m to 28 digits)."""
    return Decimal((0 if m >= 0 else 1, tuple(int(c) for c in str(abs(m))), k))


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


def in_decimals(value) -> bool:
    """A certified value whose closed form outgrew its budget: it can only be written in decimals, so it is
    approximately equal to what is shown (≈ 0.6307, never = 0.6307)."""
    return _is_exact(value) and value.is_symbolic and not value.has_exact_form()


def needs_decimal(value) -> bool:
    """Irrational values and fractions like 1/3 get a decimal beside them (not a value already
    written in decimals)."""
    if not _is_exact(value):
        return False
    if not value.is_rational():
        return value.has_exact_form()
    den = value.denominator()
    return 10**MAX_TERMINATING_DECIMALS % den != 0      # 1/2, 5/4 terminate within 4 places


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
    mono, exemplar = None, None
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
        mono, exemplar = m, v
        coeffs.append(c)
    if mono is None:
        return None
    den = lcm(*(c.denominator for c in coeffs))
    ints = [int(c * den) for c in coeffs]
    g = gcd(*ints)
    if all(i <= 0 for i in ints):
        g = -g
    factor = exemplar._terms({mono: Fraction(g, den)})     # through a value's class: no import of the engine
    return factor, [i // g for i in ints]
