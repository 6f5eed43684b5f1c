"""MathML printed from the formula nodes, beside the LaTeX printer (render/math.py).

Every operator, fence and separator is an <mo> with the form and spacing TeX gives it: a sign
is the first child of its own <mrow> (prefix, no space after it), a binary minus sits between
operands, fences hug an <mrow> of what they enclose and stretch only around something taller
than a line, separators take a space only after them.  Bold symbols are Unicode mathematical
bold letters (MathML Core browsers ignore mathvariant="bold").  Exact numbers come from
values.py's MathML notation.  What is still LaTeX text — sympy expressions (the symbolic kind)
and the `$…$` formulas of statements and catalogs — goes through latex2mathml (render/html.py:
mathml_inner).

API for other formats: `mathml(node, lang=…, decimal_separator=…)` → a <math> element.
"""

from __future__ import annotations

import re
from html import escape

from examsolver.mathnodes import Call, Deriv, Frac, Node, Op, Sym, Transpose
from examsolver.notation import values as V
from examsolver.render.math import GREEK, MAX_ENTRIES, MAX_ROWS, Printer

NAMESPACE = "http://www.w3.org/1998/Math/MathML"
_PLUS, _MINUS = "<mo>+</mo>", "<mo>&#x2212;</mo>"
_APPLY = "<mo>&#x2061;</mo>"          # function application: no space between ln and its argument's fence


def mo(text: str, **attrs) -> str:
    extra = "".join(f' {k}="{escape(str(v))}"' for k, v in attrs.items())
    return f"<mo{extra}>{escape(text, quote=False)}</mo>"


def mrow(*parts: str) -> str:
    return "<mrow>" + "".join(parts) + "</mrow>"


_TALL = ("<mfrac", "<mtable", "<munderover", "<msqrt")


def _tall(text: str) -> bool:
    return any(tag in text for tag in _TALL)


def fenced(open_: str, inner: str, close: str, stretchy: bool | None = None) -> str:
    """Fences hugging what they enclose (no operator space inside them); they stretch only around
    something taller than a line, as TeX's \\left( does (a stretched glyph around `0` stands apart)."""
    if stretchy is None:
        stretchy = _tall(inner)
    stretchy = "true" if stretchy else "false"
    return mrow(mo(open_, fence="true", stretchy=stretchy, form="prefix", lspace="0em", rspace="0em"), inner,
                mo(close, fence="true", stretchy=stretchy, form="postfix", lspace="0em", rspace="0em"))


class _MathML(V.Notation):
    """Presentation MathML of exact numbers (notation/values.py walks them): a sign is a prefix in its own row, numbers are <mn>."""

    stacked = True
    writes_sympy = False        # sympy values: the printer takes their LaTeX

    def frac(self, num: str, den: str) -> str:
        return f"<mfrac><mrow>{num}</mrow><mrow>{den}</mrow></mfrac>"

    def number(self, digits) -> str:
        return f"<mn>{digits}</mn>"

    def signed(self, text: str) -> str:
        return f'<mrow><mo form="prefix" lspace="0em" rspace="0em">−</mo>{text}</mrow>'

    def binary_minus(self) -> str:
        return self.minus

    def exponent(self, k: int) -> str:
        return self.signed(self.number(-k)) if k < 0 else self.number(k)

    def is_signed(self, text: str) -> bool:
        return text.startswith(self.signed("")[:-len("</mrow>")])

    def paren(self, text: str) -> str:
        return fenced("(", text, ")")

    def raised(self, base: str, k: int) -> str:
        return f"<msup><mrow>{base}</mrow>{self.exponent(k)}</msup>"

    def call(self, op: str, inner: str) -> str:
        if op == "sqrt":
            return f"<msqrt>{inner}</msqrt>"
        if op == "exp":
            return f"<msup><mi>e</mi><mrow>{inner}</mrow></msup>"
        name = V.PLAIN.call(op, "").partition("(")[0]          # tanh, σ, ln
        return f"<mrow><mi>{name}</mi><mo>&#x2061;</mo>{self.paren(inner)}</mrow>"

    def decimal(self, text: str) -> str:
        """A decimal from decimal_text ('0.4621', '−1.200·10⁻⁵') as numbers and operators."""
        negative = text.startswith("−")
        mantissa, times, power = text.lstrip("−").partition("·10")
        body = self.number(mantissa)
        if times:
            k = int(power.translate(str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")))
            body = f"<mrow>{body}{self.cdot}<msup><mn>10</mn>{self.exponent(k)}</msup></mrow>"
        return self.signed(body) if negative else body


class _NoMathML(Exception):
    """A sympy value inside a closed form: the MathML printer takes it from its LaTeX."""



MATHML = _MathML(minus="<mo>−</mo>", times='<mspace width="0.1667em"/>', plus="<mo>+</mo>", pi="<mi>π</mi>",
                 ln='<mrow><mi>ln</mi><mo lspace="0em" rspace="0.1667em">&#x2061;</mo><mn>{p}</mn></mrow>',
                 sqrt="<msqrt><mn>{n}</mn></msqrt>", e_power="<msup><mi>e</mi>{k}</msup>",
                 power='<msup><mrow><mo stretchy="false">(</mo>{base}<mo stretchy="false">)</mo></mrow>{k}</msup>',
                 pi_power="<msup>{base}{k}</msup>", e="<mi>e</mi>", cdot="<mo>&#x22C5;</mo>")


def number(value) -> str | None:
    """MathML of an exact number (the ring, closed forms such as tanh(3/5), decimals past their budget);
    None for sympy values, which the printer takes from their LaTeX."""
    try:
        return V.written(value, MATHML)
    except V.NoForm:
        return None


signed = MATHML.signed      # −body: the sign first in its own row, a prefix (no space after it)


def table(rows: list[list[str]]) -> str:
    """A bmatrix's cells: 1 em between columns, close to the brackets (inline styles: MathML Core
    ignores columnspacing, and the markup may travel without the page's stylesheet)."""
    def cell(c: int, n: int, text: str) -> str:
        left, right = "0.15em" if c == 0 else "0.5em", "0.15em" if c == n - 1 else "0.5em"
        height = "0.25em" if _tall(text) else "0.1em"       # stacked fractions need air between rows
        return f'<mtd style="padding:{height} {right} {height} {left}">{text}</mtd>'

    return "<mtable>" + "".join("<mtr>" + "".join(cell(c, len(row), t) for c, t in enumerate(row)) + "</mtr>"
                                for row in rows) + "</mtable>"


_BOLD = {**{chr(ord("A") + i): chr(0x1D400 + i) for i in range(26)},
         **{chr(ord("a") + i): chr(0x1D41A + i) for i in range(26)},
         **{chr(ord("0") + i): chr(0x1D7CE + i) for i in range(10)},
         **{chr(0x391 + i): chr(0x1D71C + i) for i in range(25)},       # bold italic Greek, as \boldsymbol
         **{chr(0x3B1 + i): chr(0x1D736 + i) for i in range(25)}}


def _bold(text: str) -> str:
    return "".join(_BOLD.get(ch, ch) for ch in text)


def script_text(text: str) -> str:
    """A sub- or superscript written as text ('11', '(1)', 'n-1', 'k,(i,j)', 'max'): letters as
    italic identifiers, digits as numbers, the rest as operators without space."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit():
            j = i
            while j < len(text) and text[j].isdigit():
                j += 1
            out.append(f"<mn>{text[i:j]}</mn>")
            i = j
            continue
        if ch.isalpha():
            out.append(f"<mi>{escape(ch)}</mi>")
        elif ch in "+-−":
            out.append(mo("−" if ch in "-−" else "+", lspace="0em", rspace="0em"))
        elif ch != " ":
            out.append(mo(ch, lspace="0em", rspace="0em", stretchy="false"))
        i += 1
    return mrow(*out) if len(out) != 1 else out[0]


class MathMLPrinter(Printer):
    minus = _MINUS
    infinity = "<mi>&#x221E;</mi>"
    dots = "<mo>&#x2026;</mo>"
    ops = {"+": _PLUS, "=": "<mo>=</mo>", "-": _MINUS, "mul": "", "dot": "<mo>&#x22C5;</mo>",
           "star": "<mo>&#x22C6;</mo>", "odot": "<mo>&#x2299;</mo>", "oslash": "<mo>&#x2298;</mo>",
           "fullconv": "<mo>&#x2217;</mo>", "times": "<mo>&#x00D7;</mo>"}
    notation = "plain"          # the layers' function names in Unicode (σ, ReLU, softmax)
    math_functions = {"tanh": "tanh", "ln": "ln", "exp": "exp", "diag": "diag", "max": "max",
                      "softplus": "softplus"}

    @property
    def item_separator(self) -> str:
        return mo(";" if self.s["decimal_separator"] == "," else ",", separator="true", lspace="0em",
                  rspace="0.2778em" if self.s["decimal_separator"] == "," else "0.1667em")

    # ----- numbers ------------------------------------------------------------------
    def scalar(self, v) -> str:
        text = number(v)
        if text is None:          # a sympy value: from its LaTeX
            from examsolver.render.math import LatexPrinter

            return self.fallback(LatexPrinter(**self.s).scalar(v))
        sep = self.s["decimal_separator"]
        return mrow(re.sub(r"<mn>([^<]*)</mn>", lambda m: f"<mn>{V.localize(m.group(1), sep)}</mn>", text))

    def decimal(self, text: str) -> str:
        """A rounded decimal from values.decimal_texts: '−0,0770', '1,200·10⁻⁵'."""
        return MATHML.decimal(text)

    def fallback(self, latex: str) -> str:
        from examsolver.render.html import mathml_inner

        return mrow(mathml_inner(latex))

    # ----- tensors ------------------------------------------------------------------
    def paren(self, text: str) -> str:
        return fenced("(", text, ")")

    def scaled(self, factor: str, tensor: str) -> str:
        return mrow(factor, self.ops["dot"], tensor)

    def vector(self, items: list, layout: str) -> str:
        items = self._elide(items, MAX_ENTRIES, self.dots)
        if layout == "col":
            return fenced("[", table([[i] for i in items]), "]")
        if layout == "colT":
            return f"<msup>{fenced('[', self.item_separator.join(items), ']')}<mi>T</mi></msup>"
        return fenced("[", table([items]), "]", stretchy=any(map(_tall, items)))     # a row: one line high

    def matrix(self, rows: list) -> str:
        wide = any(len(r) > MAX_ENTRIES for r in rows)
        rows = [self._elide(r, MAX_ENTRIES, mo("⋯")) for r in rows]
        if len(rows) > MAX_ROWS:
            dots = [mo("⋮")] * len(rows[0])
            if wide:
                dots[MAX_ENTRIES - 3] = mo("⋱")
            rows = rows[:MAX_ROWS - 3] + [dots] + rows[-2:]
        return fenced("[", table(rows), "]", stretchy=len(rows) > 1 or any(map(_tall, rows[0])))

    def brackets(self, parts: list) -> str:
        return fenced("[", self.item_separator.join(parts), "]")

    # ----- nodes --------------------------------------------------------------------
    def _print_Op(self, node: Op) -> str:
        return mrow(super()._print_Op(node))

    def _print_Sym(self, node: Sym) -> str:
        base = GREEK.get(node.base, (None, node.base))[1]
        if node.bold:
            text = f"<mi>{escape(_bold(base))}</mi>"
        else:
            text = f"<mi>{escape(base)}</mi>" if len(base) == 1 else script_text(base)     # AP: italic letters
        if node.hat:
            text = f'<mover accent="true">{text}<mo>^</mo></mover>'
        sub = script_text(node.sub) if node.sub else ""
        sup = ("<mtext>UPD</mtext>" if node.sup == "UPD" else script_text(node.sup)) if node.sup else ""
        if sub and sup:
            return f"<msubsup>{text}{sub}{sup}</msubsup>"
        if sub:
            return f"<msub>{text}{sub}</msub>"
        return f"<msup>{text}{sup}</msup>" if sup else text

    def _print_Call(self, node: Call) -> str:
        if node.fn == "vector":
            return self.vector([self.print(a) for a in node.args], "colT")
        args = self.item_separator.join(self.print(a) for a in node.args)
        if node.fn == "sqrt":
            return f"<msqrt>{args}</msqrt>"
        name = self.functions.get(node.fn, node.fn)
        return mrow(f"<mi>{escape(name)}</mi>", _APPLY, self.paren(args))

    def negated(self, text: str) -> str:
        return signed(text)

    def _print_Frac(self, node: Frac) -> str:
        return f"<mfrac>{mrow(self.print(node.num))}{mrow(self.print(node.den))}</mfrac>"

    def _print_Power(self, node) -> str:
        return f"<msup>{mrow(self.print(node.base))}{mrow(self.print(node.exp))}</msup>"

    def _print_Transpose(self, node: Transpose) -> str:
        flipped = self.transposed_value(node.arg)
        if flipped is not None:
            return flipped
        if isinstance(node.arg, Sym) and not node.arg.sup and not (self.bindings and node.arg in self.bindings):
            return self.print(node.arg.with_sup("T"))       # y_oh^T: the T above the subscript, as in TeX
        inner = self.print(node.arg)
        if isinstance(node.arg, (Deriv, Op)):
            inner = self.paren(inner)
        return f"<msup>{mrow(inner)}<mi>T</mi></msup>"

    def _print_Deriv(self, node: Deriv) -> str:
        partial = "<mi>&#x2202;</mi>"
        return f"<mfrac>{mrow(partial, self.print(node.num))}{mrow(partial, self.print(node.den))}</mfrac>"

    def _print_Sum(self, node) -> str:
        below = mrow(script_text(node.index), "<mo>=</mo>", self.print(node.lo))
        return mrow(f"<munderover><mo>&#x2211;</mo>{below}{mrow(self.print(node.hi))}</munderover>",
                    self.print(node.body))

    def _print_Indicator(self, node) -> str:
        return mrow("<mn>&#x1D7CF;</mn>", fenced("[", mrow(self.print(node.arg), "<mo>&gt;</mo><mn>0</mn>"), "]"))

    def _print_Abs(self, node) -> str:
        return fenced("|", self.print(node.arg), "|")

    def _print_Norm(self, node) -> str:
        return fenced("‖", self.print(node.arg), "‖")

    def _print_Subscript(self, node) -> str:
        return f"<msub>{mrow(self.print(node.arg))}{script_text(node.index)}</msub>"

    def _print_Through(self, node) -> str:
        """∂L/∂x|via h₃: the share evaluated along one reader, a bar with the reader as its subscript."""
        bar = mo("|", stretchy="true", form="postfix", lspace="0em", rspace="0em")
        via = mrow(self.print(node.word), '<mspace width="0.2em"/>', self.print(node.via))
        return f"<msub>{mrow(self.print(node.deriv), bar)}{via}</msub>"

    def _print_Expr(self, node) -> str:
        import sympy

        return self.fallback(sympy.latex(node.expr, ln_notation=True))

    def _print_Text(self, node) -> str:
        words = node.words.get(self.s["lang"], next(iter(node.words.values())))
        return f"<mtext>{escape(words, quote=False)}</mtext>"


def math_element(inner: str, display: bool = False) -> str:
    mode = "block" if display else "inline"
    return f'<math xmlns="{NAMESPACE}" display="{mode}">{inner}</math>'


def mathml(node: Node, display: bool = False, **settings) -> str:
    """A formula node as a <math> element (settings as the LaTeX printer's: lang, decimal_separator)."""
    return math_element(MathMLPrinter(**settings).print(node), display)

