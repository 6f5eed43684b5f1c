"""Ops that combine several nodes: addition (residual blocks), concatenation, the elementwise
product and the matrix product.  A layer names the nodes it reads with `inputs: [a, b]`.

Each works example by example; forward and vector-Jacobian product stand side by side.
"""

from __future__ import annotations

import numpy as np

from examsolver.engine.ops.base import Flow, Layer, layer, val
from examsolver.errors import EngineError
from examsolver.mathnodes import Deriv, Op, call, mul
from examsolver.solution import Step


class Combine(Layer):
    """Per example: y = f(a, b, …); the inputs' gradients come from vjp_each."""

    arity = 2

    def forward_many(self, batches: list) -> list:
        return [self.combine(list(values)) for values in zip(*batches)]

    def vjp_many(self, batches: list, ys: list, gys: list) -> list:
        out = [[] for _ in batches]
        for values, y, gy in zip(zip(*batches), ys, gys):
            parts = [None] * len(batches) if gy is None else self.vjp_each(list(values), y, gy)
            for column, part in zip(out, parts):
                column.append(part)
        return out

    def combine(self, values: list):
        raise NotImplementedError

    def vjp_each(self, values: list, y, gy) -> list:
        raise NotImplementedError

    def forward_steps(self, flow: Flow) -> list:
        syms = [flow.x_sym] + [s for s, _ in flow.more]
        values = [flow.x] + [v for _, v in flow.more]
        return [Step(lhs=flow.y_sym, forms=[self.formula(syms)],
                     bindings={s: val(v) for s, v in zip(syms, values)}, result=flow.y, text=self.phrase("forward"))]

    def backward_steps(self, flow: Flow, gy, gx, grads, want_input) -> list:
        syms = [flow.x_sym] + [s for s, _ in flow.more]
        values = [flow.x] + [v for _, v in flow.more]
        out = []
        for k, (sym, g, want) in enumerate(zip(syms, gx, want_input)):
            if not want or g is None:
                continue
            form, bindings = self.local(k, syms, values, flow)
            out.append(Step(lhs=flow.d(sym), forms=[mul(flow.d(flow.y_sym), Deriv(flow.y_sym, sym)), form],
                            bindings={flow.d(flow.y_sym): val(gy, "row"), **bindings}, result=g, layout="row",
                            text=self.phrase("backward") if not out else None))
        return out

    def formula(self, syms: list):
        raise NotImplementedError

    def local(self, k: int, syms: list, values: list, flow: Flow):
        """∂L/∂(input k) written through ∂L/∂y, with what it binds."""
        raise NotImplementedError


@layer
class Add(Combine):
    """y = a + b + …: a residual connection's sum."""

    kind = "add"
    arity = 0

    def combine(self, values):
        shapes = {np.shape(v) for v in values}
        if len(shapes) != 1:
            raise EngineError(f"{self.name}: added nodes have different shapes {sorted(shapes)}")
        total = values[0]
        for v in values[1:]:
            total = total + v
        return np.asarray(total, dtype=object)

    def vjp_each(self, values, y, gy):
        return [gy for _ in values]

    def torch(self, x, weights):
        return " + ".join(x)

    def formula(self, syms):
        return Op("+", tuple(syms))

    def local(self, k, syms, values, flow):
        return flow.d(flow.y_sym), {}


@layer
class Concat(Combine):
    """y = [a; b; …] along the first axis (features, or channels of feature maps)."""

    kind = "concat"
    arity = 0

    def combine(self, values):
        if any(np.ndim(v) == 0 for v in values) or len({np.shape(v)[1:] for v in values}) != 1:
            raise EngineError(f"{self.name}: concatenated nodes must agree in every axis but the first, got "
                              f"shapes {[np.shape(v) for v in values]}")
        return np.concatenate([np.asarray(v, dtype=object) for v in values])

    def torch(self, x, weights):
        return f"torch.cat([{', '.join(x)}], dim=1)"       # dim 0 is the batch

    def vjp_each(self, values, y, gy):
        edges = np.cumsum([0] + [np.shape(v)[0] for v in values])
        return [np.asarray(gy[a:b], dtype=object) for a, b in zip(edges[:-1], edges[1:])]

    def formula(self, syms):
        return call("concat", *syms)

    def local(self, k, syms, values, flow):
        return call("rows", flow.d(flow.y_sym)), {}


@layer
class Multiply(Combine):
    """y = a ⊙ b, entry by entry (gates, masks)."""

    kind = "mul"

    def combine(self, values):
        a, b = values
        if np.shape(a) != np.shape(b):
            raise EngineError(f"{self.name}: multiplied nodes have shapes {np.shape(a)} and {np.shape(b)}")
        return np.asarray(a * b, dtype=object)

    def torch(self, x, weights):
        return f"{x[0]} * {x[1]}"

    def vjp_each(self, values, y, gy):
        a, b = values
        return [np.asarray(gy * b, dtype=object), np.asarray(gy * a, dtype=object)]

    def formula(self, syms):
        return Op("odot", tuple(syms))

    def local(self, k, syms, values, flow):
        other = syms[1 - k]
        return Op("odot", (flow.d(flow.y_sym), other)), {other: val(values[1 - k], "row")}


@layer
class MatMul(Combine):
    """y = A B (matrix by matrix or by vector), as torch.matmul for 1-D and 2-D operands."""

    kind = "matmul"

    def combine(self, values):
        a, b = values
        if np.ndim(a) not in (1, 2) or np.ndim(b) not in (1, 2) or np.shape(a)[-1] != np.shape(b)[0]:
            raise EngineError(f"{self.name}: cannot multiply shapes {np.shape(a)} and {np.shape(b)}")
        return np.asarray(np.dot(a, b), dtype=object)

    def torch(self, x, weights):
        """torch.matmul example by example (on a batch it would read a stack of vectors as a matrix)."""
        return f"torch.vmap(torch.matmul)({x[0]}, {x[1]})"

    def vjp_each(self, values, y, gy):
        a, b = (np.asarray(v, dtype=object) for v in values)
        if a.ndim == 2 and b.ndim == 2:
            ga, gb = gy.dot(b.T), a.T.dot(gy)
        elif a.ndim == 2:                       # A x: ∂/∂A = g xᵀ, ∂/∂x = Aᵀ g
            ga, gb = np.multiply.outer(gy, b), a.T.dot(gy)
        elif b.ndim == 2:                       # xᵀ B: ∂/∂x = B g, ∂/∂B = x gᵀ
            ga, gb = b.dot(gy), np.multiply.outer(a, gy)
        else:                                   # aᵀ b
            ga, gb = gy * b, gy * a
        return [np.asarray(ga, dtype=object), np.asarray(gb, dtype=object)]

    def formula(self, syms):
        return mul(*syms)

    def local(self, k, syms, values, flow):
        g = flow.d(flow.y_sym)
        if k == 0:
            return mul(g, syms[1].T), {syms[1]: val(values[1])}
        return mul(syms[0].T, g), {syms[0]: val(values[0])}
