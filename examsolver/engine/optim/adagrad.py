"""Adagrad (torch.optim.Adagrad): per-entry step sizes from the sum of squared gradients.

r⁽⁰⁾ = initial_accumulator_value, r⁽ᵗ⁾ = r⁽ᵗ⁻¹⁾ + g ⊙ g, θ ← θ − ηₜ g ⊘ (√r⁽ᵗ⁾ + ε) with
ηₜ = η/(1 + (t − 1)·lr_decay).
"""

from __future__ import annotations

from pydantic import Field

from examsolver.engine.optim.base import (EPS, ETA, Optimizer, ParamStep, edivide, esqrt, filled, optimizer,
                                          with_eps)
from examsolver.mathnodes import Call, Const, Frac, Sym, Value, mul
from examsolver.solution import Phrase, Step
from examsolver.spec.model import Number, Strict


class AdagradParams(Strict):
    lr: Number = Field("1e-2", description="learning rate η")
    lr_decay: Number = Field(0, description="ηₜ = η/(1 + (t − 1)·lr_decay)")
    weight_decay: Number = Field(0, description="L2 penalty λ, added to the gradient")
    initial_accumulator_value: Number = Field(0, description="r⁽⁰⁾")
    eps: Number = Field("1e-10", description="ε in the denominator")


@optimizer("adagrad")
class Adagrad(Optimizer):
    Params = AdagradParams
    torch_state = {"r": "sum"}

    def check(self) -> None:
        p = self.p
        if min(p.lr, p.lr_decay, p.weight_decay, p.initial_accumulator_value, p.eps) < 0:
            raise ValueError("lr, lr_decay, weight_decay, initial_accumulator_value and eps must be ≥ 0")

    def initial_state(self, theta):
        return {"r": filled(theta, self.p.initial_accumulator_value)}

    def rate(self, t: int):
        return self.p.lr / (1 + (t - 1) * self.p.lr_decay)

    def scalars(self, t: int) -> dict:
        return {f"lr({t})": self.rate(t)} if self.p.lr_decay != 0 else {}

    def step_blocks(self, t: int) -> list:
        return [_decay_step(Sym("eta", sub=str(t)), t, self.p)] if self.p.lr_decay != 0 else []

    def update(self, ps: ParamStep):
        p, t = self.p, ps.t
        g = self.gradient(ps)
        g_sym, r_new, r_old = ps.sym_of("g", t), ps.sym_of("r", t), ps.sym_of("r", t - 1)
        r = ps.show("r", "optim.accumulator", r_new, r_old + ps.square(g_sym),
                    {r_old: ps.state["r"], g_sym: g}, ps.state["r"] + g * g)
        eta = ETA
        binds = {ps.param(t - 1): ps.theta, g_sym: g, r_new: r, EPS: p.eps, ETA: p.lr}
        if p.lr_decay != 0:
            eta = Sym("eta", sub=str(t))
            binds[eta] = self.rate(t)
        denom = with_eps(Call("sqrt", (r_new,)), p.eps)
        form = ps.param(t - 1) - mul(eta, ps.ratio(g_sym, denom))
        return ps.show(None, "optim.update", ps.param(t), form, binds,
                       ps.theta - edivide(g, esqrt(r) + p.eps) * self.rate(t))


def _decay_step(eta, t, p):
    """ηₜ = η/(1 + (t − 1)·lr_decay), with its numbers."""
    lr_decay = Sym("lr", sub="decay")
    form = Frac(ETA, Const(1) + mul(Const(t - 1), lr_decay))
    return Step(lhs=eta, forms=[form], bindings={ETA: Value(p.lr), lr_decay: Value(p.lr_decay)},
                result=p.lr / (1 + (t - 1) * p.lr_decay), text=Phrase("optim.lr_decay", {"t": t}))
