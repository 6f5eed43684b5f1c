"""PyTorch's other activations, with its names, options and defaults: LeakyReLU, ELU, GELU,
Softplus (elementwise) and LogSoftmax.

Each derivative at a kink is PyTorch's: LeakyReLU′(0) = negative_slope and ELU′(0) = alpha
(its backward takes the x ≤ 0 branch), Softplus is x itself where βx > threshold.
GELU's exact form Φ(x) = (1 + erf(x/√2))/2 is certified (erf lies outside the ring).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Literal

import numpy as np

from examsolver.engine import scalar
from examsolver.engine.ops.activation import Elementwise
from examsolver.engine.ops.base import Flow, Layer, NoParams, layer, val
from examsolver.errors import EngineError
from examsolver.mathnodes import Call, Const, Deriv, Frac, Indicator, Neg, Op, Paren, Power, Sym, call, mul
from examsolver.solution import Phrase, Step
from examsolver.spec.model import Number


def _not_positive(x_sym):
    """1 − 𝟙[x > 0]: the x ≤ 0 branch."""
    return Paren(Op("-", (Const(scalar.Exact(1)), Indicator(x_sym))))


class LeakyReLUParams(NoParams):
    negative_slope: Number = "0.01"


@layer
class LeakyReLU(Elementwise):
    kind = "leaky_relu"
    fn_name = "LeakyReLU"
    Params = LeakyReLUParams

    def torch(self, x, weights):
        return f"F.leaky_relu({x}, {float(self.p.negative_slope)!r})"

    def f(self, v):
        return v if v.sign() > 0 else v * self.p.negative_slope

    def df(self, x, y):
        return scalar.Exact(1) if x.sign() > 0 else scalar.exact(self.p.negative_slope)

    def derivative_node(self, x_sym, y_sym):
        return Op("+", (Indicator(x_sym), mul(Const(self.p.negative_slope), _not_positive(x_sym))))

    def conventions_used(self):
        return [Phrase("convention.leaky_relu", {"slope": self.p.negative_slope})]


class ELUParams(NoParams):
    alpha: Number = 1


@layer
class ELU(Elementwise):
    """x for x > 0, α(eˣ − 1) otherwise; f′ = y + α on the x ≤ 0 side."""

    kind = "elu"
    fn_name = "ELU"
    Params = ELUParams

    def torch(self, x, weights):
        return f"F.elu({x}, {float(self.p.alpha)!r})"

    def f(self, v):
        return v if v.sign() > 0 else self.p.alpha * (scalar.exp(v) - 1)

    def df(self, x, y):
        return scalar.Exact(1) if x.sign() > 0 else y + self.p.alpha

    def derivative_node(self, x_sym, y_sym):
        return Op("+", (Indicator(x_sym), Op("odot", (_not_positive(x_sym), Paren(Op("+", (y_sym, Sym("alpha"))))))))

    def conventions_used(self):
        return [Phrase("convention.elu", {"alpha": self.p.alpha})]


class SoftplusParams(NoParams):
    beta: Number = 1
    threshold: Number = 20


@layer
class Softplus(Elementwise):
    """(1/β) ln(1 + e^{βx}), and x itself where βx > threshold (PyTorch's linear tail)."""

    kind = "softplus"
    fn_name = "softplus"
    Params = SoftplusParams

    def torch(self, x, weights):
        return f"F.softplus({x}, {float(self.p.beta)!r}, {float(self.p.threshold)!r})"

    def check_input(self, x):
        if self.p.beta.sign() <= 0:
            raise EngineError(f"{self.name}: beta must be positive")

    def _linear(self, v) -> bool:
        return v * self.p.beta > self.p.threshold

    def f(self, v):
        return v if self._linear(v) else scalar.softplus(v * self.p.beta) / self.p.beta

    def df(self, x, y):
        return scalar.Exact(1) if self._linear(x) else scalar.sigmoid(x * self.p.beta)

    def derivative_node(self, x_sym, y_sym):
        beta = self.p.beta
        return call("sigma", x_sym if beta == 1 else mul(Const(beta), x_sym))

    def conventions_used(self):
        return [Phrase("convention.softplus", {"beta": self.p.beta, "threshold": self.p.threshold})]


class GELUParams(NoParams):
    approximate: Literal["none", "tanh"] = "none"


_GELU_CUBIC = scalar.Exact(Fraction(44715, 1000000))


@layer
class GELU(Elementwise):
    """x Φ(x); with `approximate: tanh` PyTorch's ½x(1 + tanh(√(2/π)(x + 0.044715x³)))."""

    kind = "gelu"
    fn_name = "GELU"
    Params = GELUParams

    def torch(self, x, weights):
        return f"F.gelu({x}, approximate={self.p.approximate!r})"

    @staticmethod
    def _erf(v):
        """erf(v/√2), certified through sympy's erf (the ring has no erf)."""
        import sympy

        if v.sign() == 0:
            return scalar.Exact(0)
        return scalar.Exact._sympy(sympy.erf(v.sympy() / sympy.sqrt(2)))

    def _tanh_part(self, v):
        return scalar.tanh(scalar.sqrt(2 / scalar.PI) * (v + _GELU_CUBIC * v * v * v))

    def f(self, v):
        if self.p.approximate == "tanh":
            return v * (1 + self._tanh_part(v)) / 2
        return v / 2 * (1 + self._erf(v))

    def df(self, x, y):
        if self.p.approximate == "tanh":
            t = self._tanh_part(x)
            inner = scalar.sqrt(2 / scalar.PI) * (1 + 3 * _GELU_CUBIC * x * x)
            return (1 + t) / 2 + x * (1 - t * t) * inner / 2
        density = scalar.exp(-x * x / 2) / scalar.sqrt(2 * scalar.PI)      # φ(x)
        return (1 + self._erf(x)) / 2 + x * density

    def derivative_node(self, x_sym, y_sym):
        half, square = Frac(Const(1), Const(2)), Power(x_sym, Const(2))
        if self.p.approximate == "tanh":
            root = call("sqrt", Frac(Const(2), Const(scalar.PI)))
            u = mul(root, Paren(Op("+", (x_sym, mul(Const(_GELU_CUBIC), Power(x_sym, Const(3)))))))
            t = call("tanh", u)
            slope = mul(root, Paren(Op("+", (Const(1), mul(Const(3 * _GELU_CUBIC), square)))))
            return Op("+", (mul(half, Paren(Op("+", (Const(1), t)))),
                            mul(half, x_sym, Paren(Op("-", (Const(1), Power(t, Const(2))))), slope)))
        phi = mul(half, Paren(Op("+", (Const(1), call("erf", Frac(x_sym, call("sqrt", Const(2))))))))
        density = Frac(call("exp", Neg(Frac(square, Const(2)))), call("sqrt", mul(Const(2), Const(scalar.PI))))
        return Op("+", (phi, Op("odot", (x_sym, density))))

    def conventions_used(self):
        return [Phrase(f"convention.gelu_{self.p.approximate}", {})]


@layer
class LogSoftmax(Layer):
    """y = x − ln Σⱼ e^{xⱼ}; ∂L/∂x = ∂L/∂y − softmax(x) Σⱼ ∂L/∂yⱼ."""

    kind = "log_softmax"
    fn_name = "logsoftmax"
    is_activation = True

    def torch(self, x, weights):
        return f"torch.log_softmax({x}, dim=-1)"

    def check_input(self, x):
        if x.ndim != 1:
            raise EngineError(f"{self.name}: log_softmax expects a vector, got shape {x.shape}")

    def _log_total(self, x):
        total = scalar.Exact(0)
        for v in x:
            total = total + scalar.exp(v)
        return scalar.log(total)

    def forward_one(self, x):
        log_total = self._log_total(x)
        return np.array([v - log_total for v in x], dtype=object)

    def vjp_one(self, x, y, gy):
        p = np.array([scalar.exp(v) for v in y], dtype=object)        # softmax(x) = e^y
        total = gy.sum()
        return np.asarray(gy - p * total, dtype=object), {}

    def forward_steps(self, flow: Flow) -> list:
        x = flow.x_sym
        log_total = Call("ln", (Call("sum", (call("exp", x),)),))
        return [Step(lhs=flow.y_sym, forms=[Op("-", (x, log_total))],
                     bindings={x: val(flow.x), log_total: val(self._log_total(flow.x))},
                     result=flow.y, text=self.phrase("forward"))]

    def backward_steps(self, flow: Flow, gy, gx, grads, want_input) -> list:
        if not want_input:
            return []
        y, x = flow.y_sym, flow.x_sym
        g, p = flow.d(y), call("softmax", x)
        total = Call("sum", (g,))
        p_value = np.array([scalar.exp(v) for v in flow.y], dtype=object)
        return [Step(lhs=flow.d(x), forms=[mul(g, Deriv(y, x)), Op("-", (g, mul(total, p)))],
                     bindings={g: val(gy, "row"), total: val(np.asarray(gy).sum()), p: val(p_value, "row")},
                     result=gx, layout="row", text=self.phrase("backward"))]
