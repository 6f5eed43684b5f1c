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
        return f"e^{arg}" if expr.args[0].is_Atom else f"e^({arg})"

    def _print_Pi(self, expr):
        return "π"

    def _print_EmptySet(self, expr):
        return "∅"

    def _print_Pow(self, expr, rational=False):
        if expr.exp == 1 / 2 or str(expr.exp) == "1/2":
            return f"√({self._print(expr.base)})"
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


def code_text(expr) -> str:
    return CodeText().doprint(expr)


def plain_text(expr) -> str:
    text = PlainText().doprint(expr)
    return text.replace("**", "^").replace("*", "·").replace("-", "−")
