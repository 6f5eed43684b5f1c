"""Losses: cross-entropy (class index or distribution), binary cross-entropy, MSE.

Each knows its value and gradient; cross-entropy after softmax and binary
cross-entropy after sigmoid also give the combined gradient ∂L/∂s = p − y
that the slides use.
"""

from __future__ import annotations

import numpy as np

from examsolver.engine import scalar
from examsolver.engine.ops.base import Flow, Loss, NoParams, loss, val
from examsolver.engine.scalar import Exact
from examsolver.engine.tensor import total, zeros
from examsolver.errors import EngineError
from examsolver.mathnodes import Call, Const, Frac, Neg, Norm, Op, Paren, Power, Subscript, Sum, Sym, call, mul
from examsolver.solution import Phrase, Step


def _one_hot(size: int, index: int) -> np.ndarray:
    y = zeros((size,))
    y[index] = Exact(1)
    return y


@loss
class CrossEntropy(Loss):
    kind = "cross_entropy"
    fuses_with = "softmax"

    def torch(self, output, target):
        """−ln p[y] for class indices (an integer tensor), −Σ y ln p for target distributions."""
        return (f"-(torch.log({output}) * (F.one_hot({target}, {output}.shape[-1]) "
                f"if not {target}.is_floating_point() else {target})).sum(-1)")

    def target(self, output, y) -> np.ndarray:
        if output.ndim != 1:
            raise EngineError("cross_entropy expects a vector of class probabilities (end the model with softmax)")
        if y is None:
            raise EngineError("cross_entropy needs a label y for every example")
        if y.ndim == 0:
            if not y[()].is_integer() or not 0 <= int(y[()]) < output.shape[0]:
                raise EngineError(f"label y = {y[()]} is not a class index 0…{output.shape[0] - 1}")
            return _one_hot(output.shape[0], int(y[()]))
        if y.shape != output.shape:
            raise EngineError(f"target distribution has {y.size} entries, the model gives {output.size} classes")
        return y

    def check_target(self, output, y):
        self.target(output, y)

    def value(self, p, y):
        t = self.target(p, y)
        return -total(np.array([ti * scalar.log(pi) for ti, pi in zip(t, p) if ti.sign()], dtype=object))

    def grad(self, p, y):
        t = self.target(p, y)
        return np.array([-(ti / pi) if ti.sign() else Exact(0) for ti, pi in zip(t, p)], dtype=object)

    def fused_grad(self, p, y):
        return p - self.target(p, y)

    def steps(self, flow: Flow, y, value) -> list:
        p = flow.x_sym
        if y is not None and y.ndim == 0:
            k = int(y[()])
            entry = Subscript(p.scalar(), str(k))
            return [Step(lhs=flow.loss_sym, forms=[Neg(call("ln", entry))], bindings={entry: val(flow.x[k])},
                         result=value, text=_phrase("loss.cross_entropy"))]
        y_sym = Sym("y", bold=False)
        form = Neg(Sum("i", Const(1), Const(flow.x.shape[0]), mul(Subscript(y_sym, "i"), call("ln", Subscript(p.scalar(), "i")))))
        return [Step(lhs=flow.loss_sym, forms=[form], result=value, text=_phrase("loss.cross_entropy"))]

    def grad_steps(self, flow: Flow, s_sym, y, grad) -> list:
        p, t = flow.x_sym, Sym("y", "oh" if y.ndim == 0 else "", bold=True)
        target = self.target(flow.x, y)
        if s_sym is not None:
            return [Step(lhs=flow.d(s_sym), forms=[Op("-", (p.T, t.T))],
                         bindings={p.T: val(flow.x, "row"), t.T: val(target, "row")}, result=grad, layout="row",
                         text=_phrase("backward.cross_entropy_softmax"))]
        return [Step(lhs=flow.d(p), forms=[Neg(Op("oslash", (t, p)))], bindings={t: val(target, "row"), p: val(flow.x, "row")},
                     result=grad, layout="row", text=_phrase("backward.cross_entropy"))]


@loss
class BinaryCrossEntropy(Loss):
    kind = "binary_cross_entropy"
    fuses_with = "sigmoid"

    def torch(self, output, target):
        p, y = f"{output}.reshape(-1)", f"{target}.reshape(-1)"
        return f"-({y} * torch.log({p}) + (1 - {y}) * torch.log(1 - {p}))"

    def check_target(self, p, y):
        if p.size != 1:
            raise EngineError("binary_cross_entropy expects one probability (end the model with sigmoid)")
        if y is None or y.size != 1 or not 0 <= y.reshape(())[()] <= 1:
            raise EngineError("binary_cross_entropy needs a label y in [0, 1] for every example")

    def _pair(self, p, y):
        return p.reshape(())[()], y.reshape(())[()]

    def value(self, p, y):
        pv, yv = self._pair(p, y)
        out = Exact(0)
        if yv.sign():
            out = out - yv * scalar.log(pv)
        if (1 - yv).sign():
            out = out - (1 - yv) * scalar.log(1 - pv)
        return out

    def grad(self, p, y):
        pv, yv = self._pair(p, y)
        return np.asarray((pv - yv) / (pv * (1 - pv)), dtype=object).reshape(p.shape)

    def fused_grad(self, p, y):
        pv, yv = self._pair(p, y)
        return np.asarray(pv - yv, dtype=object).reshape(p.shape)

    def steps(self, flow: Flow, y, value) -> list:
        p, t = flow.x_sym.scalar(), Sym("y").of_example(flow.n)
        form = Neg(Paren(Op("+", (mul(t, call("ln", p)), mul(Paren(Op("-", (Const(1), t))), call("ln", Op("-", (Const(1), p))))))))
        return [Step(lhs=flow.loss_sym, forms=[form], bindings={p: val(flow.x.reshape(())[()]), t: val(y.reshape(())[()])},
                     result=value, text=_phrase("loss.binary_cross_entropy"))]

    def grad_steps(self, flow: Flow, s_sym, y, grad) -> list:
        p, t = flow.x_sym.scalar(), Sym("y").of_example(flow.n)
        bindings = {p: val(flow.x.reshape(())[()]), t: val(y.reshape(())[()])}
        if s_sym is not None:
            return [Step(lhs=flow.d(s_sym), forms=[Op("-", (p, t))], bindings=bindings, result=grad,
                         text=_phrase("backward.binary_cross_entropy_sigmoid"))]
        form = Frac(Op("-", (p, t)), mul(p, Paren(Op("-", (Const(1), p)))))
        return [Step(lhs=flow.d(p), forms=[form], bindings=bindings, result=grad,
                     text=_phrase("backward.binary_cross_entropy"))]


class MSEParams(NoParams):
    half: bool = False


@loss
class MSE(Loss):
    kind = "mse"
    Params = MSEParams
    output_name = "o"

    def torch(self, output, target):
        squares = f"(({output} - {target}.reshape({output}.shape)) ** 2).reshape({output}.shape[0], -1).sum(-1)"
        return f"0.5 * {squares}" if self.p.half else squares

    def check_target(self, o, g):
        if g is None or (g.shape != o.shape and g.size != o.size):
            raise EngineError(f"mse needs a target y with the output's shape {o.shape}")

    def conventions_used(self):
        return [Phrase("convention.mse_half" if self.p.half else "convention.mse_plain", {})]

    def _factor(self):
        return Exact(1) / 2 if self.p.half else Exact(1)

    def value(self, o, g):
        d = o - g.reshape(o.shape)
        return self._factor() * total(d * d)

    def grad(self, o, g):
        return (o - g.reshape(o.shape)) * (self._factor() * 2)

    def steps(self, flow: Flow, g, value) -> list:
        o, t = flow.x_sym, Sym("y", bold=flow.x.ndim > 0).of_example(flow.n)
        core = Power(Norm(Op("-", (o, t))), Const(2)) if flow.x.ndim else Power(Paren(Op("-", (o, t))), Const(2))
        form = mul(Frac(Const(1), Const(2)), core) if self.p.half else core
        return [Step(lhs=flow.loss_sym, forms=[form], bindings={o: val(flow.x), t: val(g.reshape(flow.x.shape))},
                     result=value, text=_phrase("loss.mse"))]

    def grad_steps(self, flow: Flow, s_sym, g, grad) -> list:
        o, t = flow.x_sym, Sym("y", bold=flow.x.ndim > 0).of_example(flow.n)
        diff = Paren(Op("-", (o, t)))
        form = diff if self.p.half else mul(Const(2), diff)
        return [Step(lhs=flow.d(o), forms=[form], bindings={o: val(flow.x, "row"), t: val(g.reshape(flow.x.shape), "row")},
                     result=grad, layout="row", text=_phrase("backward.mse"))]



def _phrase(key: str) -> Phrase:
    return Phrase(key, {})


@loss
class SumLoss(Loss):
    """L = Σᵢ oᵢ: the sum of the output's entries (an exam's "let the loss be the sum of the outputs");
    no target. Its gradient is 1 in every entry, so the reverse pass shows each layer's own share."""

    kind = "sum"
    output_name = "o"

    def torch(self, output, target):
        return f"{output}.reshape({output}.shape[0], -1).sum(-1)"

    def value(self, o, y):
        return total(o)

    def grad(self, o, y):
        return np.asarray(o * 0 + 1, dtype=object) if np.ndim(o) else Exact(1)

    def steps(self, flow: Flow, y, value) -> list:
        o = flow.x_sym
        if not np.ndim(flow.x):
            return [Step(lhs=flow.loss_sym, forms=[o], bindings={o: val(flow.x)}, result=value,
                         text=_phrase("loss.sum"))]
        form = Sum("i", Const(1), Const(flow.x.size), Subscript(o.scalar(), "i"))
        return [Step(lhs=flow.loss_sym, forms=[form, Call("sum", (o,))], bindings={o: val(flow.x)}, result=value,
                     text=_phrase("loss.sum"))]

    def grad_steps(self, flow: Flow, s_sym, y, grad) -> list:
        return [Step(lhs=flow.d(flow.x_sym), forms=[], result=grad, layout="row", text=_phrase("backward.sum"))]
