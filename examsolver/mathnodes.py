"""A tiny tree for the formulas of a solution, printed by every renderer.

The engine writes `W x + b` once as nodes; printers turn the same tree into
LaTeX or Unicode, and a step's bindings turn it into the formula "with the
numbers put in" (every node found in the bindings is printed as its value).
"""

from __future__ import annotations

from operator import attrgetter


class Node:
    """Base of formula nodes.  Operators build trees so formulas read like math.

    A node is an immutable record whose fields are its class's annotations, in order, with class
    attributes as defaults: a frozen dataclass without the ~1 ms each of twenty dataclasses cost
    at every start.  Nodes compare by identity unless their kind sets `_value_equality`.
    """

    _fields: tuple = ()
    _value_equality = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._fields = cls._fields + tuple(cls.__dict__.get("__annotations__", ()))
        if cls._value_equality:       # nodes of these kinds are dictionary keys (bindings): keep it fast
            cls._key = staticmethod(attrgetter(*cls._fields))
            cls.__eq__ = Node._equal_values
            cls.__hash__ = Node._hash_values

    def __init__(self, *args, **kwargs):
        if kwargs or len(args) != len(self._fields):   # positional and complete is the common case
            args = self._complete(args, kwargs)
        self.__dict__.update(zip(self._fields, args))

    def _complete(self, args: tuple, kwargs: dict) -> tuple:
        """Every field's value in order: positional, then by name, then the class default."""
        kind = type(self).__name__
        if len(args) > len(self._fields):
            raise TypeError(f"{kind} takes {len(self._fields)} fields, got {len(args)}")
        values = dict(zip(self._fields, args))
        for name, value in kwargs.items():
            if name not in self._fields or name in values:
                raise TypeError(f"{kind}: unexpected or repeated field {name!r}")
            values[name] = value
        missing = [name for name in self._fields if name not in values and not hasattr(type(self), name)]
        if missing:
            raise TypeError(f"{kind}: missing field {missing[0]!r}")
        return tuple(values[name] if name in values else getattr(type(self), name) for name in self._fields)

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} nodes are immutable (use .replace)")

    def replace(self, **changes) -> Node:
        return type(self)(**{**{name: getattr(self, name) for name in self._fields}, **changes})

    def _equal_values(self, other) -> bool:
        return type(other) is type(self) and self._key(self) == other._key(other)

    def _hash_values(self) -> int:
        return hash(self._key(self))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({fields})"

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


class Sym(Node):
    """A named quantity: h_{11}^{(1)}, W_2, μ, ∂-free names only."""

    _value_equality = True
    base: str
    sub: str = ""
    sup: str = ""            # example index, written as a superscript (n)
    bold: bool = False       # vectors and matrices are bold, as on the slides
    hat: bool = False

    def of_example(self, n: int | None) -> Sym:
        return self if n is None else self.replace(sup=f"({n})")

    def with_sup(self, text: str) -> Sym:
        return self.replace(sup=text)

    def with_sub(self, extra: str) -> Sym:
        return self.replace(sub=self.sub + extra, bold=self.bold)

    def hatted(self) -> Sym:
        return self.replace(hat=True)

    def scalar(self) -> Sym:
        return self.replace(bold=False)


class Const(Node):
    """A literal number written into a formula (the ½ of MSE, the 1/N of a mean)."""

    value: object


class Value(Node):
    """A computed value; layout is 'col', 'row' or 'colT' ([…]ᵀ) for vectors."""

    value: object
    layout: str = "col"


class Call(Node):
    """fn(args): fn is a key the printers know (relu, softmax, sigma, avg, ln, …)."""

    fn: str
    args: tuple


class Op(Node):
    """n-ary operator: + - mul (juxtaposition) dot (·) star (⋆) odot (⊙) oslash (⊘)."""

    op: str
    args: tuple


class Neg(Node):
    arg: Node


class Frac(Node):
    num: Node
    den: Node


class Power(Node):
    base: Node
    exp: Node


class Transpose(Node):
    _value_equality = True
    arg: Node


class Deriv(Node):
    """∂num/∂den."""

    _value_equality = True
    num: Node
    den: Node


class Paren(Node):
    arg: Node


class Sum(Node):
    """Σ_{index=lo}^{hi} body."""

    index: str
    lo: Node
    hi: Node
    body: Node


class Indicator(Node):
    """𝟙[arg > 0] elementwise, e.g. the ReLU mask."""

    arg: Node


class Abs(Node):
    arg: Node


class Norm(Node):
    arg: Node
    p: int = 2


class Subscript(Node):
    """An indexed element of a tensor: p_y, x_{t·s + j}."""

    arg: Node
    index: str


class Expr(Node):
    """A sympy expression (symbolic problems); printed by sympy's own printers."""

    expr: object


class Text(Node):
    """Words inside a formula, per language: {"hr": "za", "en": "for"}; printed upright."""

    words: dict


class Through(Node):
    """One reader's share of a gradient, ∂L/∂x|via h₃: what flows back into x through h₃ alone (x read
    by several nodes has the sum of the shares as its gradient)."""

    _value_equality = True
    deriv: Node
    via: Node
    word: Node = Text({"hr": "kroz", "en": "via"})


class Seq(Node):
    """Items separated by commas: X₁, X₃, X₄."""

    items: tuple


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
    if isinstance(node, Through):
        return (node.deriv, node.via)
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
