"""sympy expressions as one-line text: ASCII our parser reads back, or Unicode for the terminal.

Printer subclasses, not string replacement on sympy's output, so that names such
as EmptySet or Piecewise conditions are never mangled.
"""

from __future__ import annotations

from sympy.printing.str import StrPrinter


class CodeText(StrPrinter):
    """ASCII in the notation of spec/expr.py: ln, e, exp, sqrt, **."""

    def _print_Exp1(self, expr):
        return "e"

    def _print_log(self, expr):
        return f"ln({self._print(expr.args[0])})"

    def _print_MatrixBase(self, expr):
        """A column vector as a list, a matrix as a list of rows (what parse_symbolic reads)."""
        if expr.cols == 1:
            return "[" + ", ".join(self._print(v) for v in expr) + "]"
        return "[" + ", ".join("[" + ", ".join(self._print(v) for v in row) + "]" for row in expr.tolist()) + "]"

    _print_ImmutableDenseMatrix = _print_MatrixBase
    _print_MutableDenseMatrix = _print_MatrixBase


class PlainText(CodeText):
    """Unicode for the terminal: eˣ as e^x, √, π, ·, −, ≥, ∅, cases of a Piecewise."""

    def _print_exp(self, expr):
        arg = self._print(expr.args[0])
        return "e" + (_superscript(arg.replace("-", "−")) or (f"^{arg}" if expr.args[0].is_Atom else f"^({arg})"))

    def _print_Max(self, expr):
        return "max(" + ", ".join(self._print(a) for a in expr.args) + ")"

    def _print_Min(self, expr):
        return "min(" + ", ".join(self._print(a) for a in expr.args) + ")"

    def _print_Interval(self, expr):
        left = "(" if expr.left_open else "["
        right = ")" if expr.right_open else "]"
        return f"{left}{self._print(expr.start)}, {self._print(expr.end)}{right}"

    def _print_Pi(self, expr):
        return "π"

    def _print_EmptySet(self, expr):
        return "∅"

    def _print_Pow(self, expr, rational=False):
        if expr.exp == 1 / 2 or str(expr.exp) == "1/2":
            return f"√({self._print(expr.base)})"
        power = _superscript(self._print(expr.exp)) if expr.exp.is_Atom and not expr.exp.is_negative else None
        if power:     # x², (1 + eᶻ)³; 1/x and x^(−2) as sympy writes them
            from sympy.printing.precedence import PRECEDENCE

            return self.parenthesize(expr.base, PRECEDENCE["Pow"], strict=True) + power
        return super()._print_Pow(expr, rational)

    def _print_Piecewise(self, expr):
        cases = []
        for value, condition in expr.args:
            text = self._print(value)
            cases.append(f"{text} otherwise" if condition == True else f"{text} if {self._print(condition)}")  # noqa: E712
        return "{" + "; ".join(cases) + "}"

    def _print_Relational(self, expr):
        ops = {">=": "≥", "<=": "≤", "!=": "≠", "==": "="}
        op = ops.get(expr.rel_op, expr.rel_op)
        return f"{self._print(expr.lhs)} {op} {self._print(expr.rhs)}"

    def _print_MatrixBase(self, expr):
        """As in CodeText, a column vector marked as such: [a, b]ᵀ."""
        return super()._print_MatrixBase(expr) + ("ᵀ" if expr.cols == 1 else "")

    _print_ImmutableDenseMatrix = _print_MatrixBase
    _print_MutableDenseMatrix = _print_MatrixBase


_SUP = dict(zip("0123456789−+()nixyktmdz", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺⁽⁾ⁿⁱˣʸᵏᵗᵐᵈᶻ"))


def _superscript(text: str) -> str | None:
    """A short exponent (2, x, −z) in Unicode superscripts, or None when one has none."""
    return "".join(_SUP[ch] for ch in text) if text and len(text) <= 4 and all(ch in _SUP for ch in text) else None


def code_text(expr) -> str:
    return CodeText().doprint(expr)


def plain_text(expr) -> str:
    text = PlainText().doprint(expr)
    return text.replace("**", "^").replace("*", "·").replace("-", "−")
