"""Elementary graph ops on one example's tensors: the vocabulary of gate equations.

Recurrent cells build every time step from these (W x + b, sums, products,
activations, 1 − z, a block of rows of a stacked weight), so backpropagation
through time for any cell is the graph's one reverse pass.  Each op keeps its
forward, its vector-Jacobian product and the local factor the solution writes
(∂L/∂input = ∂L/∂y ∘ local) side by side.  The activations' f and f′ come from
the activation layers themselves (ops/activation.py): one place for them.
"""

from __future__ import annotations

import numpy as np

from examsolver.engine.graph import GraphOp
from examsolver.engine.tensor import emap, zeros
from examsolver.mathnodes import Call, Const, Indicator, Neg, Op, Paren, call, mul


def _array(value) -> np.ndarray:
    return np.asarray(value, dtype=object)


class Affine(GraphOp):
    """y = W x (+ b): inputs x, W[, b]."""

    def forward(self, values):
        x, W, *b = values
        y = W.dot(x)
        return _array(y + b[0] if b else y)

    def vjp(self, values, out, g, needs):
        x, W, *b = values
        parts = [_array(g.dot(W)) if needs[0] else None, np.multiply.outer(g, x) if needs[1] else None]
        return parts + ([g] if b else [])

    def formula(self, syms):
        wx = mul(syms[1], syms[0])
        return Op("+", (wx, syms[2])) if len(syms) > 2 else wx

    def local(self, k: int, syms: list, g, out=None):
        """∂L/∂x = ∂L/∂y W; ∂L/∂W = (∂L/∂y)ᵀ xᵀ; ∂L/∂b = ∂L/∂y."""
        return [mul(g, syms[1]), mul(g.T, syms[0].T), g][k]


class Sum(GraphOp):
    """y = a + b + …"""

    def forward(self, values):
        total = values[0]
        for v in values[1:]:
            total = total + v
        return _array(total)

    def vjp(self, values, out, g, needs):
        return [g if need else None for need in needs]

    def formula(self, syms):
        return Op("+", tuple(syms))

    def local(self, k, syms, g, out=None):
        return g


class Hadamard(GraphOp):
    """y = a ⊙ b."""

    def forward(self, values):
        return _array(values[0] * values[1])

    def vjp(self, values, out, g, needs):
        a, b = values
        return [_array(g * b) if needs[0] else None, _array(g * a) if needs[1] else None]

    def formula(self, syms):
        return Op("odot", tuple(syms))

    def local(self, k, syms, g, out=None):
        return Op("odot", (g, syms[1 - k]))


class OneMinus(GraphOp):
    """y = 1 − a (GRU's update gate)."""

    def forward(self, values):
        return _array(1 - values[0])

    def vjp(self, values, out, g, needs):
        return [_array(-g)]

    def formula(self, syms):
        return Paren(Op("-", (Const(1), syms[0])))

    def local(self, k, syms, g, out=None):
        return Neg(g)


class Rows(GraphOp):
    """The k-th block of H rows of a stacked weight or bias (one gate of W_ih)."""

    def __init__(self, k: int, size: int, gate: str = ""):
        self.k, self.size, self.gate = k, size, gate

    def formula(self, syms):
        """W_ih's block of gate f is W_if, b_hh's of gate o is b_ho (PyTorch's names)."""
        whole = syms[0]
        return whole.replace(sub=whole.sub[:1] + self.gate)

    def forward(self, values):
        return _array(values[0][self.k * self.size:(self.k + 1) * self.size])

    def vjp(self, values, out, g, needs):
        full = zeros(np.shape(values[0]))
        full[self.k * self.size:(self.k + 1) * self.size] = g
        return [full]

    def local(self, k, syms, g, out=None):
        return g


class Concat(GraphOp):
    """y = [a; b; …]: a bidirectional layer's output stacks both directions' states."""

    def forward(self, values):
        return _array(np.concatenate([_array(v).reshape(-1) for v in values]))

    def vjp(self, values, out, g, needs):
        ends = np.cumsum([0] + [np.size(v) for v in values])
        return [_array(g[a:b]) if need else None for a, b, need in zip(ends, ends[1:], needs)]

    def formula(self, syms):
        return Call("vector", tuple(syms))

    def local(self, k, syms, g, out=None):
        """The k-th block of ∂L/∂y (its entries from the k-th input's)."""
        return Call("block", (g, Const(k + 1)))


class Activation(GraphOp):
    """y = f(a) entry by entry, f and f′ from an activation layer (or the identity)."""

    def __init__(self, fn):
        self.fn = fn                      # an object with f(v), df(x, y) and fn_name (None: identity)

    def forward(self, values):
        return emap(self.fn.f, values[0])

    def formula(self, syms):
        return syms[0] if self.fn.fn_name is None else call(self.fn.fn_name, syms[0])

    def derivative(self, a, y) -> np.ndarray:
        return np.array([self.fn.df(av, yv) for av, yv in zip(_array(a).flat, _array(y).flat)],
                        dtype=object).reshape(np.shape(a))

    def vjp(self, values, out, g, needs):
        return [_array(g * self.derivative(values[0], out))]

    def factor(self, a, y):
        """f′ written through the output where the course does: σ(1 − σ), 1 − tanh², 𝟙[a > 0]; None for
        the identity (and for an activation the course writes no such form for)."""
        return {"sigma": Op("odot", (y, Paren(Op("-", (Const(1), y))))),
                "tanh": Op("-", (Const(1), Op("odot", (y, y)))),
                "relu": Indicator(a)}.get(self.fn.fn_name)

    def local(self, k, syms, g, out=None):
        y = out if out is not None else self.formula(syms)
        factor = self.factor(syms[0], y)
        return g if factor is None else Op("odot", (g, factor))
