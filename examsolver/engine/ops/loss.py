"""Losses: cross-entropy (class index or distribution, label smoothing, class weights), binary
cross-entropy, MSE.

Each knows its value and gradient; cross-entropy after softmax and binary
cross-entropy after sigmoid also give the combined gradient ∂L/∂s = p − y
that the slides use.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import field_validator

from examsolver.engine import scalar
from examsolver.engine.ops.base import LossParams, Flow, Loss, loss, val
from examsolver.engine.scalar import Exact
from examsolver.engine.tensor import ones, to_float, total, zeros
from examsolver.errors import EngineError
from examsolver.mathnodes import Call, Const, Frac, Neg, Norm, Op, Paren, Power, Subscript, Sum, Sym, call, mul
from examsolver.solution import Phrase, Step
from examsolver.spec.model import Number, Tensor


def _one_hot(size: int, index: int) -> np.ndarray:
    y = zeros((size,))
    y[index] = Exact(1)
    return y


class CrossEntropyParams(LossParams):
    label_smoothing: Number = 0
    weight: Tensor | None = None                 # class weights w_c
    label_smoothing_convention: Literal["pytorch", "wrong_classes"] = "pytorch"

    @field_validator("label_smoothing")
    @classmethod
    def _in_unit_interval(cls, eps):
        if not 0 <= eps <= 1:
            raise ValueError(f"label_smoothing must lie in [0, 1], got {eps}")
        return eps


@loss
class CrossEntropy(Loss):
    """L = −Σ_c w_c q_c ln p_c: q the (smoothed) target, w the class weights (PyTorch's per-example
    loss, reduction='none').  Smoothing as PyTorch: q = (1 − ε) y + ε/K on every class; the
    wrong_classes convention puts ε/(K − 1) on the wrong classes only (PyTorch's with ε·K/(K − 1))."""

    kind = "cross_entropy"
    class_index_targets = True
    Params = CrossEntropyParams
    fuses_with = "softmax"

    @property
    def plain(self) -> bool:
        """No smoothing and no weights: the slides' cross-entropy, written as before."""
        return not self.p.label_smoothing.sign() and self.p.weight is None

    # matrix calculus: L = −Σₖ gₖ ln oₖ against a target distribution g; through softmax ∂L/∂z = o − g
    target_is_distribution = True

    def sympy_value(self, o, g):
        import sympy as sp

        return -sum(gk * sp.log(ok) for gk, ok in zip(g, o)) if self.plain else None

    def matrix_loss(self, m):
        entry = Subscript(m.g_node.scalar(), "k")
        return Neg(Sum("k", Const(1), m.K, mul(entry, call("ln", Subscript(m.o_node.scalar(), "k"))))) \
            if self.plain else None

    def matrix_fused_grad(self, m):
        return (Op("-", (m.o_node, m.g_node)), m.o - m.g) if self.plain else None

    def torch(self, output, target):
        """−ln p[y] for class indices (an integer tensor), −Σ y ln p for target distributions."""
        if self.plain:
            return (f"-(torch.log({output}) * (F.one_hot({target}, {output}.shape[-1]) "
                    f"if not {target}.is_floating_point() else {target})).sum(-1)")
        eps = repr(float(self.p.label_smoothing))
        if self.p.label_smoothing_convention == "wrong_classes":
            eps = f"{eps} * {output}.shape[-1] / ({output}.shape[-1] - 1)"
        weight = f"torch.tensor({to_float(self.p.weight).tolist()!r})" if self.p.weight is not None else "None"
        # log p as logits: log_softmax(log p) = log p, since p sums to 1
        return (f"F.cross_entropy(torch.log({output}), {target}, weight={weight}, label_smoothing={eps}, "
                f"reduction='none')")

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

    def smoothed(self, output, y) -> np.ndarray:
        """q: the target after label smoothing."""
        t, eps, k = self.target(output, y), self.p.label_smoothing, output.shape[0]
        if not eps.sign():
            return t
        if self.p.label_smoothing_convention == "wrong_classes":
            return t * (1 - eps) + (1 - t) * (eps / (k - 1))
        return t * (1 - eps) + eps / k

    def weights(self, output) -> np.ndarray:
        return self.p.weight if self.p.weight is not None else ones(output.shape)

    def check_target(self, output, y):
        self.target(output, y)
        if self.p.weight is not None and self.p.weight.shape != output.shape:
            raise EngineError(f"cross_entropy: weight has {self.p.weight.size} entries, the model gives "
                              f"{output.size} classes")
        if self.p.label_smoothing_convention == "wrong_classes" and output.shape[0] < 2:
            raise EngineError("cross_entropy: smoothing onto the wrong classes needs at least two classes")

    def value(self, p, y):
        wq = self.weights(p) * self.smoothed(p, y)
        return -total(np.array([c * scalar.log(pi) for c, pi in zip(wq, p) if c.sign()], dtype=object))

    def grad(self, p, y):
        wq = self.weights(p) * self.smoothed(p, y)
        return np.array([-(c / pi) if c.sign() else Exact(0) for c, pi in zip(wq, p)], dtype=object)

    def fused_grad(self, p, y):
        """∂L/∂s = (Σ_c w_c q_c) p − w ⊙ q (p − q without weights)."""
        wq = self.weights(p) * self.smoothed(p, y)
        return p * total(wq) - wq

    def conventions_used(self):
        out = []
        if self.p.label_smoothing.sign():
            out.append(Phrase(f"convention.label_smoothing_{self.p.label_smoothing_convention}",
                              {"eps": self.p.label_smoothing}))
        if self.p.weight is not None:
            out.append(Phrase("convention.class_weights", {}))
        return out

    def fused_conventions(self):
        """p − y without options; with class weights or smoothing the general form (w·q)p − w ⊙ q."""
        return super().fused_conventions() if self.plain else [Phrase("convention.cross_entropy_options_gradient", {})]

    def steps(self, flow: Flow, y, value) -> list:
        p = flow.x_sym
        if self.plain and y is not None and y.ndim == 0:
            k = int(y[()])
            entry = Subscript(p.scalar(), str(k))
            return [Step(lhs=flow.loss_sym, forms=[Neg(call("ln", entry))], bindings={entry: val(flow.x[k])},
                         result=value, text=_phrase("loss.cross_entropy"))]
        if self.plain:
            y_sym = Sym("y", bold=False)
            form = Neg(Sum("i", Const(1), Const(flow.x.shape[0]),
                           mul(Subscript(y_sym, "i"), call("ln", Subscript(p.scalar(), "i")))))
            return [Step(lhs=flow.loss_sym, forms=[form], result=value, text=_phrase("loss.cross_entropy"))]
        steps, q = self._smoothing_steps(flow, y)
        wq, bindings = q, {q: val(self.smoothed(flow.x, y), "row"), p: val(flow.x, "row")}
        if self.p.weight is not None:
            w = Sym("w", bold=True)
            wq, bindings[w] = Op("odot", (w, q)), val(self.p.weight, "row")
        steps.append(Step(lhs=flow.loss_sym, forms=[Neg(Op("dot", (_grouped(wq), call("ln", p))))], bindings=bindings,
                          result=value, text=_phrase("loss.cross_entropy_options")))
        return steps

    def _smoothing_steps(self, flow: Flow, y) -> tuple[list, Sym]:
        """q = (1 − ε) y + ε/K (or ε/(K − 1) on the wrong classes); no step without smoothing."""
        t = Sym("y", "oh" if y.ndim == 0 else "", bold=True)
        target = self.target(flow.x, y)
        eps, k = self.p.label_smoothing, flow.x.shape[0]
        if not eps.sign():
            return [], t
        q, e, K = Sym("q", bold=True), Sym("epsilon"), Sym("K")
        keep, spread = Paren(Op("-", (Const(1), e))), Frac(e, K)
        bindings = {t: val(target, "row"), keep: val(1 - eps), spread: val(eps / k)}
        if self.p.label_smoothing_convention == "wrong_classes":
            spread = Frac(e, Paren(Op("-", (K, Const(1)))))
            bindings[spread] = val(eps / (k - 1))
            form = Op("+", (mul(keep, t), mul(spread, Paren(Op("-", (Sym("1", bold=True), t))))))
        else:
            form = Op("+", (mul(keep, t), spread))
        step = Step(lhs=q, forms=[form], bindings=bindings, result=self.smoothed(flow.x, y),
                    layout="row", text=_phrase(f"loss.label_smoothing_{self.p.label_smoothing_convention}"))
        return [step], q

    def grad_steps(self, flow: Flow, s_sym, y, grad) -> list:
        p, t = flow.x_sym, Sym("y", "oh" if y.ndim == 0 else "", bold=True)
        q = Sym("q", bold=True) if self.p.label_smoothing.sign() else t
        values = {p: val(flow.x, "row"), q: val(self.smoothed(flow.x, y), "row")}
        wq = q
        if self.p.weight is not None:
            w = Sym("w", bold=True)
            wq, values[w] = Op("odot", (w, q)), val(self.p.weight, "row")
        if s_sym is not None:
            if self.p.weight is None:       # the slides' pᵀ − yᵀ, rows bound to the transposed symbols
                form, bindings = Op("-", (p.T, q.T)), {p.T: values[p], q.T: values[q]}
            else:
                form, bindings = Op("-", (mul(Paren(Op("dot", (w, q))), p), wq)), values
            return [Step(lhs=flow.d(s_sym), forms=[form], bindings=bindings, result=grad, layout="row",
                         text=_phrase("backward.cross_entropy_softmax"))]
        return [Step(lhs=flow.d(p), forms=[Neg(Op("oslash", (_grouped(wq), p)))], bindings=values,
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


class MSEParams(LossParams):
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

    # matrix calculus: L = Σₖ (oₖ − gₖ)², ∂L/∂o = 2(o − g) (the rules are written without the ½)
    def sympy_value(self, o, g):
        return sum((ok - gk) ** 2 for ok, gk in zip(o, g)) * (self._factor().sympy())

    def matrix_loss(self, m):
        error = Op("-", (Subscript(m.o_node.scalar(), "k"), Subscript(m.g_node.scalar(), "k")))
        return None if self.p.half else Sum("k", Const(1), m.K, Power(Paren(error), Const(2)))

    def matrix_grad(self, m):
        return None if self.p.half else (mul(Const(2), Paren(Op("-", (m.o_node, m.g_node)))), 2 * (m.o - m.g))

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



def _grouped(node):
    """w ⊙ q in parentheses inside a product; a bare q as it is."""
    return Paren(node) if isinstance(node, Op) else node


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
