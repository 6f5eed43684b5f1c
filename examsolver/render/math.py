"""Printers for formula trees and values: one class per notation.

As in SymPy's printers, dispatch is by node class (`_print_<Class>`), every
sub-part is printed through `self.print`, and settings live in one dictionary
where an unknown setting is an error.  A node found in the current bindings is
printed as its value: that is how "the formula with the numbers put in" is made.
"""

from __future__ import annotations

from functools import cached_property

import itertools

import numpy as np

from examsolver.mathnodes import Call, Const, Deriv, Expr, Frac, Neg, Node, Op, Paren, Sym, Transpose, Value, children
from examsolver.notation import values as V

GREEK = {"mu": ("\\mu", "μ"), "sigma": ("\\sigma", "σ"), "eta": ("\\eta", "η"), "epsilon": ("\\varepsilon", "ε"),
         "gamma": ("\\gamma", "γ"), "beta": ("\\beta", "β"), "delta": ("\\delta", "δ"), "theta": ("\\theta", "θ"),
         "lambda": ("\\lambda", "λ"), "alpha": ("\\alpha", "α"), "partial": ("\\partial", "∂")}

_SUB = str.maketrans("0123456789aehijklmnoprstuvx+-=(),", "₀₁₂₃₄₅₆₇₈₉ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ₊₋₌₍₎,")
_SUP = str.maketrans("0123456789+-=()TUPDntki", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵀᵁᴾᴰⁿᵗᵏⁱ")
_FROM_SUP = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
MAX_ROWS = 8       # larger tensors are elided: first rows, dots, last row
MAX_ENTRIES = 10
MAX_BLOCKS = 4     # of a 3-D tensor's matrices: the first, dots, the last two


_ENTRYWISE = ("star", "odot", "oslash", "fullconv")    # operators that are not a product with a scalar factor


class Printer:
    settings = {"decimal_separator": ".", "approx_places": V.APPROX_DECIMALS, "lang": "en"}

    def __init__(self, bindings: dict | None = None, **settings):
        unknown = set(settings) - set(self.settings)
        if unknown:
            raise TypeError(f"unknown printer setting(s): {', '.join(sorted(unknown))}")
        self.s = {**self.settings, **settings}
        self.bindings = bindings or {}

    notation = ""
    math_functions: dict = {}       # functions of mathematics; the layers' own names come from their classes

    @cached_property
    def functions(self) -> dict:
        """How each function is written: the math ones, and every registered layer's (ops/base.printed)."""
        from examsolver.engine.ops.base import printed_functions

        return {**self.math_functions, **printed_functions(self.notation)}

    @property
    def item_separator(self) -> str:
        """Between the entries of a vector: `0,5; 1` where the decimal mark is a comma, never `0,5, 1`."""
        return "; " if self.s["decimal_separator"] == "," else ", "

    def print(self, node) -> str:
        if isinstance(node, Node) and self.bindings:
            try:
                bound = self.bindings.get(node)
            except TypeError:
                bound = None
            if bound is not None:
                return self.print(bound)
        if not isinstance(node, Node):
            if _is_sympy(node):
                return self.print(Expr(node))
            return self.value(node, "col")
        for cls in type(node).__mro__:
            method = getattr(self, "_print_" + cls.__name__, None)
            if method is not None:
                return method(node)
        raise TypeError(f"{type(self).__name__} cannot print {type(node).__name__}")

    def substituted(self, node, bindings: dict) -> str:
        return type(self)(bindings, **self.s).print(node)

    # ----- shared structure --------------------------------------------------
    def _print_Seq(self, node) -> str:
        return self.item_separator.join(self.print(item) for item in node.items)

    def _print_Infinity(self, node) -> str:
        return self.infinity

    def _print_Value(self, node: Value) -> str:
        return self.value(node.value, node.layout)

    def _print_Const(self, node: Const) -> str:
        return self.scalar(node.value)

    def _print_Paren(self, node: Paren) -> str:
        return self.paren(self.print(node.arg))

    def _print_Neg(self, node) -> str:
        inner = self.print(node.arg)
        low = isinstance(node.arg, Op) and node.arg.op in "+-" or self._sum_scalar(node.arg) \
            or self._starts_signed(node.arg)                                        # −(−0.2794 ⊙ n), not −−
        return self.negated(self.paren(inner) if low else inner)

    def negated(self, text: str) -> str:
        return self.minus + text

    def _print_Op(self, node: Op) -> str:
        if node.op == "+":
            out = self.operand(node.args[0], node, first=True)
            for arg in node.args[1:]:
                negative = self._negative_scalar(arg)
                if negative is not None and not V.is_sum(negative):      # a + (σ(11) − 1) is a + σ(11) − 1
                    out += self.ops["-"] + self.scalar(-negative)
                else:
                    text = self.operand(arg, node, first=False)
                    signed = text.startswith(self.minus) and self.minus.strip() != ""
                    # a + (−b …) is a − b …: a sum's operand is never parenthesized, so this is the same sum
                    out += self.ops["-"] + text[len(self.minus):] if signed else self.ops["+"] + text
            return out
        joiner = self.ops[node.op]
        texts = [self.operand(a, node, first=i == 0) for i, a in enumerate(node.args)]
        if node.op != "mul":
            return joiner.join(texts)
        out = texts[0]    # juxtaposition, but a dot where a number meets anything
        for left, right, text in zip(node.args, node.args[1:], texts[1:]):
            numeric = self._is_number(left) or self._is_number(right)
            out += (self.ops["dot"] if numeric else joiner) + text
        return out

    def _is_number(self, node) -> bool:
        if isinstance(node, Transpose):          # xᵀ put in is a number when x has one entry
            return self.one_entry(node.arg)
        bound = self.bindings.get(node) if self.bindings and _hashable(node) else None
        return isinstance(bound or node, (Value, Const, Frac))

    def operand(self, arg, parent: Op, first: bool) -> str:
        """An operand's text, in parentheses where its place needs them (`first`: it opens the expression)."""
        text = self.print(arg)
        if parent.op == "=":        # b₂ = −1: a relation needs no parentheses
            return text
        bound = self.bindings.get(arg) if self.bindings and _hashable(arg) else None
        arg = arg if bound is None else bound       # a sum whose value is put in is that value: ⊙ [1/10, 1]
        low = (isinstance(arg, Op) and arg.op in ("+", "-") or self._sum_scalar(arg) or _sympy_sum(arg)) \
            and parent.op != "+"
        scaled = parent.op in _ENTRYWISE and not first and self._factored(arg)
        signed = parent.op != "+" and not first and self._starts_signed(arg)    # a − (−√6/2 · [1, 1]), a ⊙ (−b)
        if low or scaled or signed:
            return self.paren(text)
        return text

    def _starts_signed(self, node) -> bool:
        """Its text opens with a minus sign: −b, −√6/2 · [1, 1] ⊙ v (told from the nodes, for every printer)."""
        if isinstance(node, Neg):
            return True
        if isinstance(node, Op) and node.op != "=":
            return self._starts_signed(node.args[0])
        if isinstance(node, Transpose):
            return self._starts_signed(node.arg)
        bound = self._put_in(node)
        if bound is None or _is_sympy(bound.value):
            return False
        entries = list(np.asarray(bound.value, dtype=object).flat)
        factored = V.common_factor(entries) if len(entries) > 1 else None
        first = entries[0] if len(entries) == 1 else factored[0] if factored else None
        return first is not None and hasattr(first, "sign") and first.sign() < 0 and not V.is_sum(first)

    def _factored(self, node) -> bool:
        """A tensor put in that is written with its common factor (√6/3 · [1, 1]): a product, which right of
        ⋆, ⊙ or ⊘ needs parentheses, as the slides write x ⋆ (ln 2/9 · [1, 0, 1])."""
        bound = self._put_in(node)
        if bound is None or _is_sympy(bound.value) or np.size(bound.value) < 2:
            return False
        return V.common_factor(list(np.asarray(bound.value, dtype=object).flat)) is not None

    def _sum_scalar(self, node) -> bool:
        """A number put in that is written as a sum (σ(11) − 1): (σ(11) − 1) · 11/2, not σ(11) − 1 · 11/2."""
        if isinstance(node, Transpose):         # a one-entry vector transposed is the same number
            node = node.arg
        bound = self._put_in(node)
        if bound is not None and np.size(bound.value) == 1 and not _is_sympy(bound.value):
            return V.is_sum(np.asarray(bound.value, dtype=object).flat[0])
        return False

    def _looser_than(self, node, needed: int) -> bool:
        """The value put in binds less tightly than its place needs (values.precedence; a factored tensor
        is a product)."""
        bound = self._put_in(node)
        if bound is None or _is_sympy(bound.value):
            return False
        if np.size(bound.value) == 1:
            return V.precedence(np.asarray(bound.value, dtype=object).flat[0]) < needed
        return needed > 2 and self._factored(node)

    def _put_in(self, node):
        """The Value or Const a node stands for once the values are put in (itself if it is one), else None."""
        if isinstance(node, (Value, Const)):
            return node
        bound = self.bindings.get(node) if self.bindings and _hashable(node) else None
        return bound if isinstance(bound, (Value, Const)) else None

    def _negative_scalar(self, node):
        value = self.bindings.get(node) if self.bindings and _hashable(node) else None
        if isinstance(node, Value):
            value = node
        if isinstance(value, Value) and np.size(value.value) == 1:      # a one-entry tensor is a number
            v = np.asarray(value.value, dtype=object).flat[0]
            if hasattr(v, "sign") and v.sign() < 0:
                return v
        return None

    def transposed_value(self, node) -> str | None:
        """A bound vector under a transpose is printed in the other layout."""
        bound = self.bindings.get(node) if self.bindings and _hashable(node) else None
        bound = node if isinstance(node, Value) else bound
        if not isinstance(bound, Value):
            return None
        array = np.asarray(bound.value, dtype=object)
        if array.ndim == 1:
            return self.value(array, "row" if bound.layout in ("col", "colT") else "col")
        return self.value(array.T, bound.layout)

    def one_entry(self, node) -> bool:
        """Every number put into node is a one-entry tensor (and there is one): ‖[4] − [2]‖ is |4 − 2|."""
        found, stack = [], [node]
        while stack:
            n = stack.pop()
            bound = self.bindings.get(n) if self.bindings and _hashable(n) else None
            bound = n if isinstance(n, Value) else bound
            if bound is None:
                stack.extend(children(n))
                continue
            value = bound.value if isinstance(bound, Value) else bound
            found.append(not _is_sympy(value) and np.ndim(value) > 0 and np.size(value) == 1)
        return bool(found) and all(found)

    def value(self, value, layout: str) -> str:
        if _is_sympy(value):
            return self.print(Expr(value))
        array = np.asarray(value, dtype=object)
        if array.size == 1:             # a 1-vector, a 1 × 1 matrix is written as its number: 4, not [[4]]
            return self.scalar(array.flat[0])
        factored = V.common_factor(list(array.flat)) if array.size > 1 else None
        if factored is not None:
            factor, ints = factored
            inner = np.array([_int(i) for i in ints], dtype=object).reshape(array.shape)
            return self.scaled(self.scalar(factor), self.tensor(inner, layout))
        return self.tensor(array, layout)

    def tensor(self, array, layout: str) -> str:
        return self.tensor_text(_shown_texts(array, self.scalar), layout)

    def approx(self, value, layout: str = "row") -> str | None:
        """Decimals of a value that has irrational or long entries, else None."""
        if _is_sympy(value):
            return None
        array = np.asarray(value, dtype=object)
        if not any(V.needs_decimal(v) or V.in_decimals(v) for v in array.flat):
            return None
        sep, places = self.s["decimal_separator"], self.s["approx_places"]
        texts = _shown_texts(array, lambda v: self.decimal(
            V.decimal_texts([v], sep if sep != "{,}" else ",", places)[0]))
        if array.size == 1:
            return texts.flat[0]
        return self.tensor_text(texts, layout)

    def tensor_text(self, texts, layout: str = "row") -> str:
        if texts.ndim == 1:
            return self.vector(list(texts), layout)
        if texts.ndim == 2:
            return self.matrix([list(r) for r in texts])
        parts = [self.tensor_text(texts[k]) for k in _kept(texts.shape[0], MAX_BLOCKS)]
        if texts.shape[0] > MAX_BLOCKS:
            parts = parts[:MAX_BLOCKS - 3] + [self.dots] + parts[-2:]
        return self.brackets(parts)

    def _elide(self, items: list, limit: int, dots: str) -> list:
        if len(items) <= limit:
            return items
        return items[:limit - 3] + [dots] + items[-2:]


def _kept(n: int, limit: int) -> list:
    """Indices that _elide keeps of n items."""
    return list(range(n)) if n <= limit else list(range(limit - 3)) + list(range(n - 2, n))


def _shown_texts(array, fmt) -> np.ndarray:
    """fmt of the entries the printers show; the elided ones are never formatted (a 28×28 map costs
    what an 8×10 one does)."""
    array = np.asarray(array, dtype=object)
    texts = np.full(array.shape, "", dtype=object)
    if array.ndim == 0:
        texts[()] = fmt(array[()])
        return texts
    cols = _kept(array.shape[-1], MAX_ENTRIES)
    rows = _kept(array.shape[-2], MAX_ROWS) if array.ndim >= 2 else [None]
    leads = itertools.product(*(_kept(n, MAX_BLOCKS) for n in array.shape[:-2])) if array.ndim > 2 else [()]
    for lead in leads:
        for r in rows:
            for c in cols:
                index = lead + ((r, c) if r is not None else (c,))
                texts[index] = fmt(array[index])
    return texts


def _sympy_sum(node) -> bool:
    """A sympy sum put in (itself or as a Value's value): a factor needs parentheses around it."""
    value = node.value if isinstance(node, Value) else node
    return _is_sympy(value) and bool(getattr(value, "is_Add", False))


def _is_sympy(value) -> bool:
    return type(value).__module__.startswith("sympy")


def _int(i: int):
    from examsolver.engine.scalar import Exact

    return Exact(i)


def _hashable(node) -> bool:
    try:
        hash(node)
        return True
    except TypeError:
        return False


# A name a spec wrote (a result's `name:`, "dL/dz(z=1)") in a formula: each character as itself, never
# read as TeX (math-mode escapes, which MathJax reads as LaTeX does); other Unicode as U+XXXX.
_NAME_SPECIAL = {"\\": "\\backslash ", "{": "\\{", "}": "\\}", "$": "\\$", "&": "\\&", "#": "\\#", "%": "\\%",
                 "_": "\\_", "^": "\\hat{}", "~": "\\sim ", '"': "''", "`": "'"}


def latex_name(name: str) -> str:
    from examsolver.render.inline import UNICODE_MATH

    def char(ch: str) -> str:
        if ch in _NAME_SPECIAL:
            return _NAME_SPECIAL[ch]
        if ch in UNICODE_MATH:
            return UNICODE_MATH[ch] + " "
        return ch if ch.isascii() and ch.isprintable() else f"[U+{ord(ch):04X}]"

    return "".join(char(ch) for ch in name)


class LatexPrinter(Printer):
    minus = "-"
    infinity = "\\infty"
    dots = "\\dots"
    ops = {"+": " + ", "=": " = ", "-": " - ", "mul": " ", "dot": " \\cdot ", "star": " \\star ", "odot": " \\odot ",
           "oslash": " \\oslash ", "fullconv": " \\ast ", "times": " \\times "}
    notation = "latex"
    math_functions = {"tanh": "\\tanh", "ln": "\\ln", "exp": "\\exp", "diag": "\\mathrm{diag}", "max": "\\max",
                      "softplus": "\\mathrm{softplus}"}

    def scalar(self, v) -> str:
        text = V.latex(v)
        sep = self.s["decimal_separator"]
        return V.localize(text, "{,}" if sep == "," else sep)

    def decimal(self, text: str) -> str:
        mantissa, times, power = text.partition("·10")     # 1.200·10⁻⁵ → 1.200 \cdot 10^{-5}
        if times:
            power = "^{" + power.translate(_FROM_SUP) + "}"
            mantissa += " \\cdot 10"
        return (mantissa + power).replace("−", "-").replace(",", "{,}")

    def paren(self, text: str) -> str:
        return f"\\left({text}\\right)"

    def scaled(self, factor: str, tensor: str) -> str:
        return f"{factor} \\cdot {tensor}"

    def vector(self, items: list, layout: str) -> str:
        items = self._elide(items, MAX_ENTRIES, "\\dots")
        if layout == "col":
            return "\\begin{bmatrix} " + " \\\\ ".join(items) + " \\end{bmatrix}"
        if layout == "colT":      # a column written on its line, as the slides do: [4, −1, 2]ᵀ
            return "\\left[" + self.item_separator.join(items) + "\\right]^T"
        return "\\begin{bmatrix} " + " & ".join(items) + " \\end{bmatrix}"     # a 1×n row is a matrix

    def matrix(self, rows: list) -> str:
        wide = any(len(r) > MAX_ENTRIES for r in rows)
        rows = [self._elide(r, MAX_ENTRIES, "\\cdots") for r in rows]
        if len(rows) > MAX_ROWS:
            dots = ["\\vdots"] * len(rows[0])
            if wide:
                dots[MAX_ENTRIES - 3] = "\\ddots"
            rows = rows[:MAX_ROWS - 3] + [dots] + rows[-2:]
        return "\\begin{bmatrix} " + " \\\\ ".join(" & ".join(r) for r in rows) + " \\end{bmatrix}"

    def brackets(self, parts: list) -> str:
        return "\\left[" + (self.item_separator.rstrip() + "\\ ").join(parts) + "\\right]"

    def _print_Sym(self, node: Sym) -> str:
        base = node.base
        if base in GREEK:
            text = GREEK[base][0]
            text = f"\\boldsymbol{{{text}}}" if node.bold else text
        else:
            text = f"\\mathbf{{{latex_name(base)}}}" if node.bold else latex_name(base)
        if node.hat:
            text = f"\\hat{{{text}}}"
        if node.sub:
            text += f"_{{{latex_name(node.sub)}}}"
        if node.sup:
            sup = "\\text{UPD}" if node.sup == "UPD" else latex_name(node.sup)
            text += f"^{{{sup}}}"
        return text

    def _print_Call(self, node: Call) -> str:
        if node.fn == "vector":
            return self.vector([self.print(a) for a in node.args], "colT")
        args = self.item_separator.join(self.print(a) for a in node.args)
        if node.fn == "sqrt":
            return f"\\sqrt{{{args}}}"
        letter = len(node.fn.rstrip("'")) == 1          # a function known by its letter, f and f', is italic
        name = self.functions.get(node.fn, latex_name(node.fn) if letter else f"\\mathrm{{{latex_name(node.fn)}}}")
        return f"{name}\\left({args}\\right)"


    def _print_Frac(self, node: Frac) -> str:
        return f"\\frac{{{self.print(node.num)}}}{{{self.print(node.den)}}}"

    def _print_Power(self, node) -> str:
        return f"{{{self.print(node.base)}}}^{{{self.print(node.exp)}}}"

    def _print_Transpose(self, node: Transpose) -> str:
        flipped = self.transposed_value(node.arg)
        if flipped is not None:
            return flipped
        inner = self.print(node.arg)
        if isinstance(node.arg, (Deriv, Op)):
            inner = self.paren(inner)
        elif "^" in inner:   # x^{(1)}^T is a LaTeX error ("double superscript")
            inner = "{" + inner + "}"
        return inner + "^T"

    def _print_Deriv(self, node: Deriv) -> str:
        return f"\\frac{{\\partial {self.print(node.num)}}}{{\\partial {self.print(node.den)}}}"

    def _print_Sum(self, node) -> str:
        return f"\\sum_{{{node.index}={self.print(node.lo)}}}^{{{self.print(node.hi)}}} {self.print(node.body)}"

    def _print_Indicator(self, node) -> str:
        return f"\\mathbf{{1}}\\left[{self.print(node.arg)} > 0\\right]"

    def _print_Abs(self, node) -> str:
        return f"\\left|{self.print(node.arg)}\\right|"

    def _print_Norm(self, node) -> str:
        if self.one_entry(node.arg):
            return self._print_Abs(node)
        return f"\\left\\lVert {self.print(node.arg)} \\right\\rVert"

    def _print_Subscript(self, node) -> str:
        return f"{self.print(node.arg)}_{{{node.index}}}"

    def _print_Expr(self, node) -> str:
        import sympy

        return sympy.latex(node.expr, ln_notation=True)

    def _print_Text(self, node) -> str:
        return f"\\text{{{node.words.get(self.s['lang'], next(iter(node.words.values())))}}}"

    def _print_Through(self, node) -> str:
        return f"\\left.{self.print(node.deriv)}\\right|_{{{self.print(node.word)}\\ {self.print(node.via)}}}"


class PlainPrinter(Printer):
    minus = "−"
    infinity = "∞"
    dots = "…"
    ops = {"+": " + ", "=": " = ", "-": " − ", "mul": " ", "dot": " · ", "star": " ⋆ ", "odot": " ⊙ ", "oslash": " ⊘ ",
           "fullconv": " ∗ ", "times": " × "}
    notation = "plain"
    math_functions = {"tanh": "tanh", "ln": "ln", "exp": "exp", "diag": "diag", "max": "max", "sqrt": "√",
                      "softplus": "softplus"}

    def scalar(self, v) -> str:
        return V.localize(V.plain(v), self.s["decimal_separator"])

    def decimal(self, text: str) -> str:
        return text

    def paren(self, text: str) -> str:
        return f"({text})"

    def scaled(self, factor: str, tensor: str) -> str:
        return f"{factor} · {tensor}"

    def vector(self, items: list, layout: str) -> str:
        items = self._elide(items, MAX_ENTRIES, "…")
        text = "[" + self.item_separator.join(items) + "]"
        return text + "ᵀ" if layout in ("col", "colT") else text

    def matrix(self, rows: list) -> str:
        rows = [self._elide(r, MAX_ENTRIES, "…") for r in rows]
        if len(rows) > MAX_ROWS:
            rows = rows[:MAX_ROWS - 3] + [["⋮"]] + rows[-2:]
        sep = self.item_separator
        if len(rows) == 1:          # a 1 × n matrix is a row, as the slides write W₂ = [1, 1]
            return "[" + sep.join(rows[0]) + "]"
        return "[" + sep.join("[" + sep.join(r) + "]" for r in rows) + "]"

    def brackets(self, parts: list) -> str:
        return "[" + self.item_separator.join(parts) + "]"

    def _print_Sym(self, node: Sym) -> str:
        text = GREEK.get(node.base, (None, node.base))[1]
        if node.hat:
            text = text + "\u0302"
        if node.sub:
            sub = node.sub.translate(_SUB)
            # subscript letters only for a single letter (xᵢ, h₁₁): a word is written W_iz, W_ir, c_out alike,
            # not Wᵢᵣ beside W_iz (ᶻ has no subscript form) or Nₗᵢₙₑₐᵣ₆ beside N_conv2d1
            word = sum(ch.isalpha() for ch in node.sub) > 1
            text += sub if not word and all(ch in "₀₁₂₃₄₅₆₇₈₉ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ₊₋₌₍₎," for ch in sub) \
                else f"_{node.sub}"
        if node.sup:
            sup = node.sup.translate(_SUP)
            text += sup if all(ch in "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵀᵁᴾᴰⁿᵗᵏⁱ" for ch in sup) else f"^{node.sup}"
        return text

    def _print_Call(self, node: Call) -> str:
        if node.fn == "vector":
            return self.vector([self.print(a) for a in node.args], "colT")
        args = self.item_separator.join(self.print(a) for a in node.args)
        return f"{self.functions.get(node.fn, node.fn.replace(chr(39), '′'))}({args})"     # f' is written f′


    def _print_Frac(self, node: Frac) -> str:
        num, den = self.print(node.num), self.print(node.den)
        if isinstance(node.num, Op) or self._looser_than(node.num, 2):
            num = self.paren(num)
        if isinstance(node.den, Op) or self._looser_than(node.den, 3):     # x/(√6/3), not x/√6/3
            den = self.paren(den)
        return f"{num}/{den}"

    def _print_Power(self, node) -> str:
        base = self.print(node.base)
        exp = self.print(node.exp)
        sup = exp.translate(_SUP)
        return base + (sup if all(ch in "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵀᵁᴾᴰⁿᵗᵏⁱ" for ch in sup) else f"^{exp}")

    def _print_Transpose(self, node: Transpose) -> str:
        flipped = self.transposed_value(node.arg)
        if flipped is not None:
            return flipped
        inner = self.print(node.arg)
        if isinstance(node.arg, (Deriv, Op)):
            inner = self.paren(inner)
        return inner + "ᵀ"

    def _print_Deriv(self, node: Deriv) -> str:
        return f"∂{self.print(node.num)}/∂{self.print(node.den)}"

    def _print_Sum(self, node) -> str:
        return f"Σ_{node.index}={self.print(node.lo)}..{self.print(node.hi)} {self.print(node.body)}"

    def _print_Indicator(self, node) -> str:
        return f"𝟙[{self.print(node.arg)} > 0]"

    def _print_Abs(self, node) -> str:
        return f"|{self.print(node.arg)}|"

    def _print_Norm(self, node) -> str:
        if self.one_entry(node.arg):
            return self._print_Abs(node)
        return f"‖{self.print(node.arg)}‖"

    def _print_Expr(self, node) -> str:
        from examsolver.notation.values import sympy_plain

        return sympy_plain(node.expr)

    def _print_Text(self, node) -> str:
        return node.words.get(self.s["lang"], next(iter(node.words.values())))

    def _print_Through(self, node) -> str:
        return f"{self.print(node.deriv)}|{self.print(node.word)} {self.print(node.via)}"

    def _print_Subscript(self, node) -> str:
        index = node.index.translate(_SUB)
        return f"{self.print(node.arg)}{index if index != node.index or node.index.isdigit() else '_' + node.index}"
