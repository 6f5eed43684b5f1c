"""A tiny tree for the formulas of a solution, printed by every renderer.

The engine writes `W x + b` once as nodes; printers turn the same tree into
LaTeX or Unicode, and a step's bindings turn it into the formula "with the
numbers put in" (every node found in the bindings is printed as its value).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


class Node:
    """Base of formula nodes.  Operators build trees so formulas read like math."""

    def __add__(self, other):
        return Op("+", (self, _node(other)))

    def __sub__(self, other):
        return Op("-", (self, _node(other)))

    def __mul__(self, other):  # juxtaposition: W x, a · b
        return Op("mul", (self, _node(other)))

    def __neg__(self):
        return Neg(self)

    @property
    def T(self):
        return Transpose(self)


def _node(value) -> Node:
    return value if isinstance(value, Node) else Const(value)


@dataclass(frozen=True, eq=True)
class Sym(Node):
    """A named quantity: h_{11}^{(1)}, W_2, μ, ∂-free names only."""

    base: str
    sub: str = ""
    sup: str = ""            # example index, written as a superscript (n)
    bold: bool = False       # vectors and matrices are bold, as on the slides
    hat: bool = False

    def of_example(self, n: int | None) -> Sym:
        return self if n is None else replace(self, sup=f"({n})")

    def with_sup(self, text: str) -> Sym:
        return replace(self, sup=text)

    def with_sub(self, extra: str) -> Sym:
        return replace(self, sub=self.sub + extra, bold=self.bold)

    def hatted(self) -> Sym:
        return replace(self, hat=True)

    def scalar(self) -> Sym:
        return replace(self, bold=False)

    def __hash__(self):
        return hash((self.base, self.sub, self.sup, self.bold, self.hat))


@dataclass(frozen=True, eq=False)
class Const(Node):
    """A literal number written into a formula (the ½ of MSE, the 1/N of a mean)."""

    value: object


@dataclass(frozen=True, eq=False)
class Value(Node):
    """A computed value; layout is 'col', 'row' or 'colT' ([…]ᵀ) for vectors."""

    value: object
    layout: str = "col"


@dataclass(frozen=True, eq=False)
class Call(Node):
    """fn(args): fn is a key the printers know (relu, softmax, sigma, avg, ln, …)."""

    fn: str
    args: tuple


@dataclass(frozen=True, eq=False)
class Op(Node):
    """n-ary operator: + - mul (juxtaposition) dot (·) star (⋆) odot (⊙) oslash (⊘)."""

    op: str
    args: tuple


@dataclass(frozen=True, eq=False)
class Neg(Node):
    arg: Node


@dataclass(frozen=True, eq=False)
class Frac(Node):
    num: Node
    den: Node


@dataclass(frozen=True, eq=False)
class Power(Node):
    base: Node
    exp: Node


@dataclass(frozen=True, eq=True)
class Transpose(Node):
    arg: Node


@dataclass(frozen=True, eq=True)
class Deriv(Node):
    """∂num/∂den."""

    num: Node
    den: Node


@dataclass(frozen=True, eq=False)
class Paren(Node):
    arg: Node


@dataclass(frozen=True, eq=False)
class Sum(Node):
    """Σ_{index=lo}^{hi} body."""

    index: str
    lo: Node
    hi: Node
    body: Node


@dataclass(frozen=True, eq=False)
class Indicator(Node):
    """𝟙[arg > 0] elementwise, e.g. the ReLU mask."""

    arg: Node


@dataclass(frozen=True, eq=False)
class Abs(Node):
    arg: Node


@dataclass(frozen=True, eq=False)
class Norm(Node):
    arg: Node
    p: int = 2


@dataclass(frozen=True, eq=False)
class Subscript(Node):
    """An indexed element of a tensor: p_y, x_{t·s + j}."""

    arg: Node
    index: str


@dataclass(frozen=True, eq=False)
class Expr(Node):
    """A sympy expression (symbolic problems); printed by sympy's own printers."""

    expr: object


@dataclass(frozen=True, eq=False)
class Text(Node):
    """Words inside a formula, per language: {"hr": "za", "en": "for"}; printed upright."""

    words: dict


@dataclass(frozen=True, eq=False)
class Seq(Node):
    """Items separated by commas: X₁, X₃, X₄."""

    items: tuple


@dataclass(frozen=True, eq=False)
class Infinity(Node):
    """∞ (e.g. the similarity 1/d at d = 0)."""


def children(node: Node) -> tuple:
    """Sub-nodes, for walks that substitute or search."""
    if isinstance(node, (Call, Op)):
        return node.args
    if isinstance(node, Seq):
        return node.items
    if isinstance(node, (Neg, Transpose, Paren, Indicator, Abs, Norm, Subscript)):
        return (node.arg,)
    if isinstance(node, (Frac, Deriv)):
        return (node.num, node.den)
    if isinstance(node, Power):
        return (node.base, node.exp)
    if isinstance(node, Sum):
        return (node.lo, node.hi, node.body)
    return ()


def dot(*args) -> Op:
    return Op("dot", tuple(_node(a) for a in args))


def mul(*args) -> Op:
    return Op("mul", tuple(_node(a) for a in args))


def call(fn: str, *args) -> Call:
    return Call(fn, tuple(_node(a) for a in args))
