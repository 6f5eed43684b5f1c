"""Activations: ReLU, sigmoid, tanh (elementwise) and softmax."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from pydantic import Field

from examsolver.engine import scalar
from examsolver.engine.ops.base import (MATRIX_NAME, Flow, Layer, MatrixArgs, channels, derivation_only, grouped, layer,
                                        odot, val)
from examsolver.engine.tensor import emap
from examsolver.errors import EngineError
from examsolver.mathnodes import Call, Const, Deriv, Indicator, Op, Sym, call, mul
from examsolver.solution import Phrase, Step


class Elementwise(Layer):
    """y = f(x) entry by entry; ∂L/∂x = ∂L/∂y ⊙ f′(x)."""

    is_activation = True
    fn_name: str

    def f(self, v):
        raise NotImplementedError

    def df(self, x, y):
        """f′ at one entry, given its input x and output y."""
        raise NotImplementedError

    def derivative_node(self, x_sym: Sym, y_sym: Sym):
        raise NotImplementedError

    def forward_one(self, x):
        return emap(self.f, x)

    # matrix calculus: y = f(a) entry by entry, ∂L/∂a = ∂L/∂y ⊙ f′(a)
    def sympy_f(self, v, exp):
        """f at one sympy entry; None: no symbolic form (the default)."""
        return None

    def sympy_df(self, x, y):
        """f′ at one sympy entry, given its input x and output y; None: no symbolic derivative."""
        return None

    def sympy_forward(self, x, exp):
        entries = [self.sympy_f(v, exp) for v in x]
        return None if None in entries else _column(entries)

    def matrix_local(self, m):
        """(f′ at every entry as a column Matrix, its formula) or None."""
        entries = [self.sympy_df(x, y) for x, y in zip(m.x_entries, m.y_entries)]
        return None if None in entries else (_column(entries), self.derivative_node(m.x_node, m.y_node))

    @classmethod
    def matrix_backward(cls, m):
        local = cls.with_defaults().matrix_local(m)
        if local is None:
            m.refuse(f"{cls.kind} has no symbolic derivative")
        factor, node = local
        m.input_gradient(odot(m.grad_out, grouped(node)), odot(grouped(m.n_out), grouped(node)),
                         m.d_out.multiply_elementwise(factor))

    def vjp_one(self, x, y, gy):
        derivative = np.empty(x.shape, dtype=object)
        for index, xv in np.ndenumerate(x):
            derivative[index] = self.df(xv, y[index])
        return gy * derivative, {}

    def forward_steps(self, flow: Flow) -> list:
        steps = []
        for (xs, xv), (ys, yv) in zip(channels(flow.x_sym, flow.x), channels(flow.y_sym, flow.y)):
            steps.append(Step(lhs=ys, forms=[call(self.fn_name, xs)],
                              bindings={xs: val(xv, _layout(xv, flow))}, result=yv, layout=_layout(yv, flow)))
        steps[0].text = self.phrase("forward")
        return steps

    def backward_steps(self, flow: Flow, gy, gx, grads, want_input) -> list:
        if not want_input:
            return []
        steps = []
        views = zip(channels(flow.x_sym, flow.x), channels(flow.y_sym, flow.y),
                    _split(gy, flow.x), _split(gx, flow.x))
        for (xs, xv), (ys, yv), g, gxv in views:
            dnode = self.derivative_node(xs, ys)
            dvalue = np.asarray(gxv, dtype=object)
            local = np.empty(np.shape(xv), dtype=object)
            for index, v in np.ndenumerate(np.asarray(xv, dtype=object)):
                local[index] = self.df(v, np.asarray(yv, dtype=object)[index])
            steps.append(Step(lhs=flow.d(xs), forms=[mul(flow.d(ys), Deriv(ys, xs)), Op("odot", (flow.d(ys), dnode))],
                              bindings={flow.d(ys): val(g, "row"), dnode: val(local, "row")},
                              result=dvalue, layout="row"))
        steps[0].text = self.phrase("backward")
        return steps


class GenericArgs(MatrixArgs):
    f: str = Field("f", pattern=MATRIX_NAME)     # the function's letter


@derivation_only
class Generic(Elementwise):
    """An activation known only by its letter, h = f(a): a derivation in general form writes its
    derivative as f′(a).  It has no numbers, so it lives in matrix-calculus derivations only."""

    kind = "activation"
    MatrixArgs = GenericArgs

    @classmethod
    def matrix_forward(cls, m):
        f, _ = _unspecified(m.args.f)
        m.value = m.x.applyfunc(f)
        return Call(m.args.f, (m.x_node,))

    @classmethod
    def matrix_backward(cls, m):
        _, prime = _unspecified(m.args.f)
        node = Call(m.args.f + "'", (m.x_node,))
        m.input_gradient(odot(m.grad_out, node), odot(grouped(m.n_out), node),
                         m.d_out.multiply_elementwise(m.x_entries.applyfunc(prime)))


@lru_cache(maxsize=None)
def _unspecified(name: str):
    """sympy functions f and f′ with f′ the derivative of f (one pair per letter)."""
    import sympy as sp
    from sympy.core.function import UndefinedFunction

    prime = sp.Function(name + "'")
    return UndefinedFunction(name, __dict__={"fdiff": lambda self, argindex=1: prime(self.args[0])}), prime


def _column(entries):
    import sympy as sp

    return sp.Matrix(entries)


def _layout(value, flow) -> str:
    return "colT" if np.ndim(value) == 1 and np.ndim(flow.x) >= 2 else "col"


def _split(g, like):
    g = np.asarray(g, dtype=object)
    return [g[k] for k in range(g.shape[0])] if np.ndim(like) >= 2 else [g]


@layer
class ReLU(Elementwise):
    kind = "relu"
    printed = {"latex": "\\mathrm{ReLU}", "plain": "ReLU"}
    fn_name = "relu"

    def torch(self, x, weights):
        """PyTorch's ReLU′(0) is 0; another convention's value c is added where x = 0 as
        c·(x − x.detach()), which is 0 but has the derivative c (x is a variable of the script)."""
        if getattr(self.conventions, "mistakes", ()):
            return None
        c = scalar.exact(self.conventions.relu_grad_at_zero)
        return f"torch.relu({x})" if c == 0 else f"(torch.relu({x}) + {float(c)!r} * ({x} == 0) * ({x} - {x}.detach()))"

    def f(self, v):
        return v if v.sign() > 0 else v * 0

    def df(self, x, y):
        if "relu_mask_forgotten" in getattr(self.conventions, "mistakes", ()):
            return scalar.Exact(1)      # a deliberate mistake, only for diagnosing answers (diagnose/)
        sign = x.sign()
        if sign == 0:
            return scalar.exact(self.conventions.relu_grad_at_zero)
        return scalar.Exact(1 if sign > 0 else 0)

    def derivative_node(self, x_sym, y_sym):
        return Indicator(x_sym)

    def sympy_f(self, v, exp):
        import sympy as sp

        return sp.Max(0, v)

    def matrix_local(self, m):
        """f′ as named symbols, the mask m = 𝟙[a > 0] (its value at 0 taken as 0), which results keep."""
        import sympy as sp

        mask = m.named("m", [sp.Heaviside(v) for v in m.x])
        m.say("symbolic.backprop.mask", m=Sym("m", sub=m.x_name, bold=True), mask=Indicator(m.x_node),
              entries=", ".join(s.name for s in mask))
        return mask, Indicator(m.x_node)

    def conventions_used(self):
        return [Phrase("convention.relu_at_zero", {"value": self.conventions.relu_grad_at_zero})]

    def degeneracies(self, xs):
        zeros = sum(1 for x in xs for v in x.flat if v.sign() == 0)
        return [Phrase("warning.relu_at_zero", {"layer": self.name, "count": zeros})] if zeros else []


@layer
class Sigmoid(Elementwise):
    kind = "sigmoid"
    printed = {"latex": "\\sigma", "plain": "σ"}
    fn_name = "sigma"

    def torch(self, x, weights):
        return f"torch.sigmoid({x})"

    def f(self, v):
        return scalar.sigmoid(v)

    def df(self, x, y):
        return y * (1 - y)

    def derivative_node(self, x_sym, y_sym):
        return Op("odot", (y_sym, Op("-", (Const(1), y_sym))))

    def sympy_f(self, v, exp):
        return 1 / (1 + exp(-v))

    def sympy_df(self, x, y):
        return y * (1 - y)


@layer
class Tanh(Elementwise):
    kind = "tanh"
    printed = {"latex": "\\tanh", "plain": "tanh"}
    fn_name = "tanh"

    def torch(self, x, weights):
        return f"torch.tanh({x})"

    def f(self, v):
        return scalar.tanh(v)

    def df(self, x, y):
        return 1 - y * y

    def derivative_node(self, x_sym, y_sym):
        return Op("-", (Const(1), Op("odot", (y_sym, y_sym))))

    def sympy_f(self, v, exp):
        import sympy as sp

        return sp.tanh(v)

    def sympy_df(self, x, y):
        return 1 - y ** 2


@layer
class Softmax(Layer):
    kind = "softmax"
    printed = {"latex": "\\mathrm{softmax}", "plain": "softmax"}
    is_activation = True

    def torch(self, x, weights):
        return f"torch.softmax({x}, dim=-1)"

    def check_input(self, x):
        if x.ndim != 1:
            raise EngineError(f"{self.name}: softmax expects a vector, got shape {x.shape}")

    def forward_one(self, x):
        exps = [scalar.exp(v) for v in x]
        total = scalar.Exact(0)
        for e in exps:
            total = total + e
        return np.array([e / total for e in exps], dtype=object)

    def sympy_forward(self, x, exp):
        total = sum(exp(v) for v in x)
        return x.applyfunc(lambda v: exp(v) / total)

    def vjp_one(self, x, y, gy):
        jacobian = np.diag(y) - np.multiply.outer(y, y)    # ∂p/∂s = diag(p) − p pᵀ
        return np.asarray(gy.dot(jacobian), dtype=object), {}

    def forward_steps(self, flow: Flow) -> list:
        return [Step(lhs=flow.y_sym, forms=[call("softmax", flow.x_sym)], bindings={flow.x_sym: val(flow.x)},
                     result=flow.y, text=self.phrase("forward"))]

    def backward_steps(self, flow: Flow, gy, gx, grads, want_input) -> list:
        if not want_input:
            return []
        p = flow.y_sym
        jac = Op("-", (call("diag", p), mul(p, p.T)))
        return [Step(lhs=flow.d(flow.x_sym), forms=[mul(flow.d(p), Deriv(p, flow.x_sym)), mul(flow.d(p), jac)],
                     bindings={flow.d(p): val(gy, "row"), p: val(flow.y)}, result=gx, layout="row",
                     text=self.phrase("backward"))]
