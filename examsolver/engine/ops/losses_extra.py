"""Losses with PyTorch's names, options and defaults: nll, binary_cross_entropy_with_logits, l1,
smooth_l1, huber, kl_div, and distillation (T² · KL between softmaxes at temperature T).

A loss over several output entries is their sum, per example (as mse): PyTorch's reduction='none'
summed over the entries of one example; the network then reduces over the minibatch.  Every branch
(|d| < β, the sign of d, max(−s, 0)) is decided by an exact comparison of the values.
"""

from __future__ import annotations

import numpy as np
from pydantic import field_validator

from examsolver.engine import scalar
from examsolver.engine.ops.base import LossParams, Flow, Loss, loss, val
from examsolver.engine.scalar import Exact
from examsolver.engine.tensor import emap, to_float, total, zeros
from examsolver.errors import EngineError
from examsolver.mathnodes import Abs, Const, Frac, Neg, Node, Op, Paren, Power, Subscript, Sym, call, mul
from examsolver.solution import Phrase, Step
from examsolver.spec.model import Number, Tensor

_HALF = Exact(1) / 2


def _float(x) -> str:
    return repr(float(x))


def _tensor_literal(array) -> str:
    return f"torch.tensor({to_float(array).tolist()!r})"


def _grouped(term: Node) -> Node:
    """A sum's term in parentheses where it is itself a sum or difference."""
    return Paren(term) if isinstance(term, Op) and term.op in "+-" else term


def _sign(x: Exact, at_zero) -> Exact:
    """sign(x), decided exactly; at_zero is the value taken at 0 (the subgradient chosen)."""
    return Exact(x.sign()) if x.sign() else at_zero


# ----- losses summed over the output's entries --------------------------------------------
class EntrywiseLoss(Loss):
    """L = Σ_i ℓ(o_i, y_i) over the entries of one example's output; the target has the output's shape."""

    output_name = "o"

    def check_target(self, o, y):
        if y is None or y.size != o.size:
            raise EngineError(f"{self.kind} needs a target y with the output's shape {o.shape}")

    def ell(self, o: Exact, y: Exact, i: tuple) -> Exact:
        raise NotImplementedError

    def dell(self, o: Exact, y: Exact, i: tuple) -> Exact:
        """∂ℓ/∂o at one entry."""
        raise NotImplementedError

    def ell_form(self, o: Node, y: Node, ov: Exact, yv: Exact, i: tuple) -> Node:
        """ℓ at one entry as a formula of its symbols o, y (the branch chosen from the values)."""
        raise NotImplementedError

    def dell_form(self, o: Node, y: Node, ov: Exact, yv: Exact, i: tuple) -> Node:
        raise NotImplementedError

    def _entries(self, o, y):
        y = y.reshape(o.shape)
        return [(i, o[i], y[i]) for i in np.ndindex(*o.shape)]

    def value(self, o, y):
        return sum((self.ell(ov, yv, i) for i, ov, yv in self._entries(o, y)), Exact(0))

    def grad(self, o, y):
        out = zeros(o.shape)
        for i, ov, yv in self._entries(o, y):
            out[i] = self.dell(ov, yv, i)
        return out

    def _symbols(self, flow: Flow, y):
        """(o_i, y_i) symbols and values of every entry, and their bindings."""
        o_sym, y_sym = flow.x_sym.scalar(), Sym("y").of_example(flow.n)
        rows, bindings = [], {}
        for i, ov, yv in self._entries(flow.x, y):
            sub = ",".join(str(k + 1) for k in i)
            o_i, y_i = (Subscript(o_sym, sub), Subscript(y_sym, sub)) if sub else (o_sym, y_sym)
            rows.append((o_i, y_i, ov, yv, i))
            bindings[o_i], bindings[y_i] = val(ov), val(yv)
        return rows, bindings

    def _formula(self, flow: Flow, y, entry_form):
        """The entries' formulas (entry_form per entry) and every binding they need."""
        rows, bindings = self._symbols(flow, y)
        self.shown = {}
        terms = [entry_form(*row) for row in rows]
        bindings.update(self.constants())
        bindings.update(self.shown)
        return terms, bindings

    def steps(self, flow: Flow, y, value) -> list:
        terms, bindings = self._formula(flow, y, self.ell_form)
        form = terms[0] if len(terms) == 1 else Op("+", tuple(_grouped(t) for t in terms))
        return [Step(lhs=flow.loss_sym, forms=[form], bindings=bindings, result=value,
                     text=Phrase(f"loss.{self.kind}", self.phrase_args()))]

    def grad_steps(self, flow: Flow, s_sym, y, grad) -> list:
        terms, bindings = self._formula(flow, y, self.dell_form)
        form = terms[0] if flow.x.ndim == 0 else call("vector", *terms)
        return [Step(lhs=flow.d(flow.x_sym), forms=[form], bindings=bindings, result=grad,
                     layout="row", text=Phrase(f"backward.{self.kind}", self.phrase_args()))]

    def phrase_args(self) -> dict:
        return {}

    def constants(self) -> dict:
        """The loss's own symbols in the formulas (β, β/2) and the values they stand for."""
        return {}

    def show(self, node: Node, value) -> Node:
        """A part of an entry's formula whose number is shown computed (max(s, 0) → 1/2): the
        printer finds bindings by the node itself, so the node is kept as it is."""
        self.shown[node] = val(value)
        return node

    kink_width = None        # |o − y| at which ℓ has a kink (L1: 0), None: differentiable everywhere

    def degeneracies(self, outputs, targets):
        """The entries exactly at the kink, where the gradient is the subgradient the loss chose."""
        if self.kink_width is None:
            return []
        count = sum(1 for o, y in zip(outputs, targets) if y is not None and o.size == y.size
                    for _, ov, yv in self._entries(o, y) if abs(ov - yv) == self.kink_width)
        return [Phrase("warning.l1_at_kink", {"loss": self.kind, "count": count, "value": self.kink_grad})] if count else []

    def torch(self, output, target):
        """PyTorch's loss with reduction='none', summed over each example's entries."""
        y = f"{target}.reshape({output}.shape)"
        return f"{self.torch_call(output, y)}.reshape({output}.shape[0], -1).sum(-1)"

    def torch_call(self, output: str, target: str) -> str:
        raise NotImplementedError


class L1Params(LossParams):
    grad_at_zero: Number = 0      # PyTorch: sign(0) = 0

    @field_validator("grad_at_zero")
    @classmethod
    def _subgradient(cls, v):
        if not -1 <= v <= 1:
            raise ValueError(f"grad_at_zero must be a subgradient of |d| at 0, in [−1, 1], got {v}")
        return v


@loss
class L1(EntrywiseLoss):
    """ℓ = |o − y|; ℓ′ = sign(o − y), at o = y the value chosen (PyTorch: 0)."""

    kind = "l1"
    Params = L1Params
    kink_width = Exact(0)

    @property
    def kink_grad(self):
        return self.p.grad_at_zero

    def ell(self, o, y, i):
        return abs(o - y)

    def dell(self, o, y, i):
        return _sign(o - y, self.p.grad_at_zero)

    def ell_form(self, o, y, ov, yv, i):
        return Abs(Op("-", (o, y)))

    def dell_form(self, o, y, ov, yv, i):
        return call("sign", Op("-", (o, y)))

    def torch_call(self, output, target):
        return f"F.l1_loss({output}, {target}, reduction='none')"

    def conventions_used(self):
        return [Phrase("convention.l1_at_zero", {"value": self.p.grad_at_zero})]


def _at_least(name: str, bound: int, strict: bool):
    """A validator: the number named must be ≥ bound (> bound when strict)."""
    def check(cls, v):
        if v < bound or (strict and v == bound):
            raise ValueError(f"{name} must be {'>' if strict else '≥'} {bound}, got {v}")
        return v
    return field_validator(name)(classmethod(check))


class SmoothL1Params(LossParams):
    beta: Number = 1
    _beta = _at_least("beta", 0, strict=False)


@loss
class SmoothL1(EntrywiseLoss):
    """ℓ = ½ d²/β where |d| < β, else |d| − ½β (d = o − y); β = 0 is L1 (as PyTorch)."""

    kind = "smooth_l1"
    Params = SmoothL1Params
    symbol = Sym("beta")

    def __init__(self, params):
        super().__init__(params)
        self.half = Frac(self.symbol, Const(2))     # one node: the printer looks bindings up by identity

    @property
    def width(self) -> Exact:
        return self.p.beta

    @property
    def kink_width(self):
        """β = 0 is L1, with its kink at o = y (sign(0) = 0, as PyTorch); for β > 0 ℓ is smooth."""
        return Exact(0) if self.width == 0 else None

    kink_grad = Exact(0)

    def quadratic(self, d: Exact) -> bool:
        return abs(d) < self.width

    def ell(self, o, y, i):
        d, b = o - y, self.width
        return _HALF * d * d / b if self.quadratic(d) else abs(d) - _HALF * b

    def dell(self, o, y, i):
        d = o - y
        return d / self.width if self.quadratic(d) else _sign(d, Exact(0))

    def constants(self):
        return {self.symbol: val(self.width), self.half: val(self.width / 2)}

    def ell_form(self, o, y, ov, yv, i):
        if self.quadratic(ov - yv):
            return Frac(Power(Paren(Op("-", (o, y))), Const(2)), mul(Const(2), self.symbol))
        return Op("-", (Abs(Op("-", (o, y))), self.half))

    def dell_form(self, o, y, ov, yv, i):
        if self.quadratic(ov - yv):
            return Frac(Op("-", (o, y)), self.symbol)
        return call("sign", Op("-", (o, y)))

    def phrase_args(self):
        return {"beta": self.width}

    def torch_call(self, output, target):
        return f"F.smooth_l1_loss({output}, {target}, reduction='none', beta={_float(self.width)})"

    def conventions_used(self):
        return [Phrase(f"convention.{self.kind}", self.phrase_args())]


class HuberParams(LossParams):
    delta: Number = 1
    _delta = _at_least("delta", 0, strict=True)


@loss
class Huber(SmoothL1):
    """ℓ = ½ d² where |d| < δ, else δ(|d| − ½δ): δ times smooth L1 with β = δ (as PyTorch)."""

    kind = "huber"
    Params = HuberParams

    @property
    def width(self) -> Exact:
        return self.p.delta

    def ell(self, o, y, i):
        return self.width * super().ell(o, y, i)

    def dell(self, o, y, i):
        return self.width * super().dell(o, y, i)

    symbol = Sym("delta")

    def ell_form(self, o, y, ov, yv, i):
        if self.quadratic(ov - yv):
            return mul(Frac(Const(1), Const(2)), Power(Paren(Op("-", (o, y))), Const(2)))
        return mul(self.symbol, Paren(super().ell_form(o, y, ov, yv, i)))

    def dell_form(self, o, y, ov, yv, i):
        if self.quadratic(ov - yv):
            return Op("-", (o, y))
        return mul(self.symbol, super().dell_form(o, y, ov, yv, i))

    def phrase_args(self):
        return {"delta": self.width}

    def torch_call(self, output, target):
        return f"F.huber_loss({output}, {target}, reduction='none', delta={_float(self.width)})"


class BCEWithLogitsParams(LossParams):
    weight: Tensor | None = None           # rescales each entry's loss
    pos_weight: Tensor | None = None       # weight of the positive term, per class (last axis)


@loss
class BinaryCrossEntropyWithLogits(EntrywiseLoss):
    """ℓ = w[(1 − y) s + (1 + (p_w − 1) y)(max(−s, 0) + ln(1 + e^{−|s|}))], PyTorch's stable form of
    −w[p_w y ln σ(s) + (1 − y) ln(1 − σ(s))]; ∂ℓ/∂s = w[(1 + (p_w − 1) y) σ(s) − p_w y]."""

    kind = "binary_cross_entropy_with_logits"
    Params = BCEWithLogitsParams
    output_name = "s"

    def check_target(self, s, y):
        super().check_target(s, y)
        if any(not 0 <= v <= 1 for v in y.flat):
            raise EngineError(f"{self.kind} needs targets y in [0, 1]")
        for name in ("weight", "pos_weight"):
            w = getattr(self.p, name)
            if w is not None and w.size != 1 and w.shape != s.shape[s.ndim - w.ndim:]:
                raise EngineError(f"{self.kind}: {name} of shape {w.shape} does not broadcast to the output's "
                                  f"shape {s.shape}")

    def _option(self, name: str, i: tuple) -> Exact:
        w = getattr(self.p, name)
        if w is None:
            return Exact(1)
        return w.reshape(())[()] if w.size == 1 else w[i[len(i) - w.ndim:]]

    def _softplus_neg(self, s: Exact) -> Exact:
        """ln(1 + e^{−s}) = max(−s, 0) + ln(1 + e^{−|s|}): the exponent is never positive."""
        return (-s if s < 0 else Exact(0)) + scalar.log(scalar.exp(-abs(s)) + 1)

    def ell(self, s, y, i):
        pw, w = self._option("pos_weight", i), self._option("weight", i)
        return w * ((1 - y) * s + (1 + (pw - 1) * y) * self._softplus_neg(s))

    def dell(self, s, y, i):
        pw, w = self._option("pos_weight", i), self._option("weight", i)
        return w * ((1 + (pw - 1) * y) * scalar.sigmoid(s) - pw * y)

    def _scaled(self, form: Node, i: tuple) -> Node:
        return form if self.p.weight is None else mul(Const(self._option("weight", i)), Paren(form))

    def _tail(self, s, sv) -> Node:
        """max(−s, 0) + ln(1 + e^{−|s|}), each part's number shown."""
        return Op("+", (self.show(call("max", Neg(s), Const(0)), -sv if sv < 0 else Exact(0)),
                        call("ln", Op("+", (Const(1), call("exp", self.show(Neg(Abs(s)), -abs(sv))))))))

    def _positive_factor(self, y, yv, i) -> Node:
        """1 + (p_w − 1) y"""
        pw = self._option("pos_weight", i)
        return self.show(Op("+", (Const(1), mul(Paren(Op("-", (Sym("p", "w"), Const(1)))), y))), 1 + (pw - 1) * yv)

    def ell_form(self, s, y, sv, yv, i):
        if self.p.pos_weight is None:     # max(s, 0) − s y + ln(1 + e^{−|s|}), the textbook's stable form
            form = Op("+", (self.show(Op("-", (call("max", s, Const(0)), mul(s, y))),
                                      (sv if sv > 0 else Exact(0)) - sv * yv),
                            call("ln", Op("+", (Const(1), call("exp", self.show(Neg(Abs(s)), -abs(sv))))))))
        else:
            form = Op("+", (self.show(mul(Paren(Op("-", (Const(1), y))), s), (1 - yv) * sv),
                            mul(self._positive_factor(y, yv, i), Paren(self._tail(s, sv)))))
        return self._scaled(form, i)

    def dell_form(self, s, y, sv, yv, i):
        if self.p.pos_weight is None:
            form = Op("-", (call("sigma", s), y))
        else:
            pw = self._option("pos_weight", i)
            form = Op("-", (mul(self._positive_factor(y, yv, i), call("sigma", s)),
                            self.show(mul(Sym("p", "w"), y), pw * yv)))
        return self._scaled(form, i)

    def torch_call(self, output, target):
        options = "".join(f", {name}={_tensor_literal(getattr(self.p, name))}"
                          for name in ("weight", "pos_weight") if getattr(self.p, name) is not None)
        return f"F.binary_cross_entropy_with_logits({output}, {target}{options}, reduction='none')"

    def conventions_used(self):
        return [Phrase("convention.bce_with_logits", {})]


# ----- losses on distributions ----------------------------------------------------------
class NLLParams(LossParams):
    weight: Tensor | None = None


@loss
class NLL(Loss):
    """L = −w_y o_y: the negative log-likelihood of class y, o the log-probabilities (PyTorch's nll_loss)."""

    kind = "nll"
    class_index_targets = True
    Params = NLLParams
    output_name = "o"

    def check_target(self, o, y):
        if o.ndim != 1:
            raise EngineError("nll expects a vector of log-probabilities (end the model with log_softmax)")
        if y is None or y.ndim != 0 or not y[()].is_integer() or not 0 <= int(y[()]) < o.shape[0]:
            raise EngineError(f"nll needs a class index 0…{o.shape[0] - 1} as the label y of every example")
        if self.p.weight is not None and self.p.weight.shape != o.shape:
            raise EngineError(f"nll: weight has {self.p.weight.size} entries, the model gives {o.size} classes")

    def _weight(self, k: int) -> Exact:
        return self.p.weight[k] if self.p.weight is not None else Exact(1)

    def value(self, o, y):
        k = int(y[()])
        return -self._weight(k) * o[k]

    def grad(self, o, y):
        k, out = int(y[()]), zeros(o.shape)
        out[k] = -self._weight(k)
        return out

    def _entry(self, flow: Flow, k: int) -> Node:
        return Subscript(flow.x_sym.scalar(), str(k))

    def steps(self, flow: Flow, y, value) -> list:
        k = int(y[()])
        o_k = self._entry(flow, k)
        form = Neg(o_k) if self.p.weight is None else Neg(mul(Const(self._weight(k)), o_k))
        return [Step(lhs=flow.loss_sym, forms=[form], bindings={o_k: val(flow.x[k])}, result=value,
                     text=Phrase("loss.nll", {"k": k}))]

    def grad_steps(self, flow: Flow, s_sym, y, grad) -> list:
        k = int(y[()])
        onehot = Sym("y", "oh", bold=True)
        form = Neg(onehot) if self.p.weight is None else Neg(mul(Const(self._weight(k)), onehot))
        return [Step(lhs=flow.d(flow.x_sym), forms=[form], bindings={onehot: val(_one_hot(flow.x.shape, k), "row")},
                     result=grad, layout="row", text=Phrase("backward.nll", {"k": k}))]

    def torch(self, output, target):
        weight = f", weight={_tensor_literal(self.p.weight)}" if self.p.weight is not None else ""
        return f"F.nll_loss({output}, {target}.long(){weight}, reduction='none')"

    def conventions_used(self):
        return [Phrase("convention.class_weights", {})] if self.p.weight is not None else []


def _one_hot(shape, k: int):
    out = zeros(shape)
    out[k] = Exact(1)
    return out


class KLDivParams(LossParams):
    log_target: bool = False


@loss
class KLDiv(Loss):
    """L = Σ_i y_i (ln y_i − o_i), o the log-probabilities, y the target probabilities (PyTorch's
    kl_div; 0 where y_i = 0); with log_target, y holds log-probabilities: Σ_i e^{y_i} (y_i − o_i)."""

    kind = "kl_div"
    Params = KLDivParams
    output_name = "o"

    def check_target(self, o, y):
        if y is None or y.shape != o.shape:
            raise EngineError(f"kl_div needs a target y with the output's shape {o.shape}")
        if not self.p.log_target and any(v < 0 for v in y.flat):
            raise EngineError("kl_div: target probabilities must not be negative (log_target: true for log-probabilities)")

    def _probabilities(self, y):
        return emap(scalar.exp, y) if self.p.log_target else y

    def _log_target(self, y):
        return y if self.p.log_target else emap(lambda v: scalar.log(v) if v.sign() else Exact(0), y)

    def value(self, o, y):
        q, log_q = self._probabilities(y), self._log_target(y)
        return total(np.array([qi * (li - oi) for qi, li, oi in zip(q.flat, log_q.flat, o.flat) if qi.sign()] or
                              [Exact(0)], dtype=object))

    def grad(self, o, y):
        return -self._probabilities(y)

    def steps(self, flow: Flow, y, value) -> list:
        o, t = flow.x_sym, Sym("y", bold=flow.x.ndim > 0).of_example(flow.n)
        weight, log_y = (call("exp", t), t) if self.p.log_target else (t, call("ln", t))
        form = Op("dot", (weight, Paren(Op("-", (log_y, o)))))
        return [Step(lhs=flow.loss_sym, forms=[form], bindings={o: val(flow.x, "row"), t: val(y, "row")},
                     result=value, text=Phrase("loss.kl_div", {}))]

    def grad_steps(self, flow: Flow, s_sym, y, grad) -> list:
        t = Sym("y", bold=flow.x.ndim > 0).of_example(flow.n)
        form = Neg(call("exp", t)) if self.p.log_target else Neg(t)
        return [Step(lhs=flow.d(flow.x_sym), forms=[form], bindings={t: val(y, "row")}, result=grad,
                     layout="row", text=Phrase("backward.kl_div", {}))]

    def torch(self, output, target):
        log_target = ", log_target=True" if self.p.log_target else ""
        return (f"F.kl_div({output}, {target}.reshape({output}.shape), reduction='none'{log_target})"
                f".reshape({output}.shape[0], -1).sum(-1)")

    def conventions_used(self):
        return [Phrase("convention.kl_div", {})]


class DistillationParams(LossParams):
    temperature: Number = 1
    _temperature = _at_least("temperature", 0, strict=True)


@loss
class Distillation(Loss):
    """L = T² KL(q ‖ p), q = softmax(t/T) of the teacher's scores t (the target), p = softmax(s/T) of
    the student's scores s (the model output, no softmax after it); ∂L/∂s = T (p − q)."""

    kind = "distillation"
    Params = DistillationParams

    def check_target(self, s, t):
        if s.ndim != 1:
            raise EngineError("distillation expects the student's scores as a vector (no softmax at the end)")
        if t is None or t.shape != s.shape:
            raise EngineError(f"distillation needs the teacher's scores as the target y, shape {s.shape}")

    def _log_softmax(self, z):
        """ln softmax(z/T) = z/T − ln Σ_j e^{z_j/T}, exactly where the ring allows."""
        scaled = z / self.p.temperature
        log_z = scalar.log(total(emap(scalar.exp, scaled)))
        return scaled - log_z

    def value(self, s, t):
        log_p, log_q = self._log_softmax(s), self._log_softmax(t)
        q = self._softmax(t)
        T = self.p.temperature
        return T * T * total(q * (log_q - log_p))

    def _softmax(self, z):
        exps = emap(scalar.exp, z / self.p.temperature)
        return exps / total(exps)

    def grad(self, s, t):
        return (self._softmax(s) - self._softmax(t)) * self.p.temperature

    def steps(self, flow: Flow, t, value) -> list:
        s, teacher = flow.x_sym, Sym("y", bold=True).of_example(flow.n)
        p, q, T = Sym("p", bold=True), Sym("q", bold=True), Const(self.p.temperature)
        return [
            Step(lhs=q, forms=[call("softmax", Frac(teacher, T))], bindings={teacher: val(t, "row")},
                 result=self._softmax(t), layout="row", text=Phrase("loss.distillation_teacher", {})),
            Step(lhs=p, forms=[call("softmax", Frac(s, T))], bindings={s: val(flow.x, "row")},
                 result=self._softmax(flow.x), layout="row", text=Phrase("loss.distillation_student", {})),
            Step(lhs=flow.loss_sym, forms=[mul(Power(T, Const(2)), Op("dot", (q, Paren(Op("-", (call("ln", q), call("ln", p)))))))],
                 bindings={q: val(self._softmax(t), "row"), p: val(self._softmax(flow.x), "row")}, result=value,
                 text=Phrase("loss.distillation", {"T": self.p.temperature})),
        ]

    def grad_steps(self, flow: Flow, s_sym, t, grad) -> list:
        p, q, T = Sym("p", bold=True), Sym("q", bold=True), Const(self.p.temperature)
        return [Step(lhs=flow.d(flow.x_sym), forms=[mul(T, Paren(Op("-", (p, q))))],
                     bindings={p: val(self._softmax(flow.x), "row"), q: val(self._softmax(t), "row")}, result=grad,
                     layout="row", text=Phrase("backward.distillation", {}))]

    def torch(self, output, target):
        T = _float(self.p.temperature)
        return (f"{T} ** 2 * F.kl_div(F.log_softmax({output} / {T}, dim=-1), "
                f"F.softmax({target}.reshape({output}.shape) / {T}, dim=-1), reduction='none').sum(-1)")

    def conventions_used(self):
        return [Phrase("convention.distillation", {"T": self.p.temperature})]
