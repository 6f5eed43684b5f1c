"""RMSprop (torch.optim.RMSprop): centered or not, with momentum and weight decay.

r ← αr + (1 − α)g ⊙ g; centered: m ← αm + (1 − α)g and the denominator √(r − m ⊙ m) + ε, else √r + ε;
momentum μ > 0: v ← μv + g ⊘ denominator, θ ← θ − ηv; otherwise θ ← θ − η g ⊘ denominator.
"""

from __future__ import annotations

from pydantic import Field

from examsolver.engine.optim.base import (ALPHA, EPS, ETA, MU, Optimizer, ParamStep, edivide, esqrt, filled,
                                          optimizer, with_eps)
from examsolver.mathnodes import Call, Const, Paren, dot, mul
from examsolver.spec.model import Number, Strict


class RMSpropParams(Strict):
    lr: Number = Field("1e-2", description="learning rate η")
    alpha: Number = Field("0.99", description="smoothing constant α")
    eps: Number = Field("1e-8", description="ε in the denominator")
    weight_decay: Number = Field(0, description="L2 penalty λ, added to the gradient")
    momentum: Number = Field(0, description="momentum μ")
    centered: bool = False


@optimizer("rmsprop")
class RMSprop(Optimizer):
    Params = RMSpropParams
    torch_state = {"r": "square_avg", "m": "grad_avg", "v": "momentum_buffer"}

    def check(self) -> None:
        p = self.p
        if min(p.lr, p.alpha, p.eps, p.weight_decay, p.momentum) < 0:
            raise ValueError("lr, alpha, eps, weight_decay and momentum must be ≥ 0")

    def initial_state(self, theta):
        state = {"r": filled(theta, 0)}
        if self.p.centered:
            state["m"] = filled(theta, 0)
        if self.p.momentum > 0:
            state["v"] = filled(theta, 0)
        return state

    def update(self, ps: ParamStep):
        p, t = self.p, ps.t
        g = self.gradient(ps)
        g_sym = ps.sym_of("g", t)
        keep = Paren(Const(1) - ALPHA)
        binds = {g_sym: g, ALPHA: p.alpha, EPS: p.eps, ETA: p.lr, MU: p.momentum}
        r_new, r_old = ps.sym_of("r", t), ps.sym_of("r", t - 1)
        binds[r_old] = ps.state["r"]
        r = ps.show("r", "optim.square_avg", r_new, mul(ALPHA, r_old) + dot(keep, ps.square(g_sym)),
                    binds, ps.state["r"] * p.alpha + g * g * (1 - p.alpha))
        binds[r_new] = r
        if p.centered:
            m_new, m_old = ps.sym_of("m", t), ps.sym_of("m", t - 1)
            binds[m_old] = ps.state["m"]
            m = ps.show("m", "optim.grad_avg", m_new, mul(ALPHA, m_old) + dot(keep, g_sym), binds,
                        ps.state["m"] * p.alpha + g * (1 - p.alpha))
            binds[m_new] = m
            denom, denom_value = Call("sqrt", (r_new - ps.square(m_new),)), esqrt(r - m * m) + p.eps
        else:
            denom, denom_value = Call("sqrt", (r_new,)), esqrt(r) + p.eps
        scaled = ps.ratio(g_sym, with_eps(denom, p.eps))
        step = edivide(g, denom_value)
        prev, new = ps.param(t - 1), ps.param(t)
        binds[prev] = ps.theta
        if p.momentum > 0:
            v_new, v_old = ps.sym_of("v", t), ps.sym_of("v", t - 1)
            binds[v_old] = ps.state["v"]
            v = ps.show("v", "optim.momentum", v_new, mul(MU, v_old) + scaled, binds, ps.state["v"] * p.momentum + step)
            binds[v_new] = v
            return ps.show(None, "optim.update", new, prev - mul(ETA, v_new), binds, ps.theta - v * p.lr)
        return ps.show(None, "optim.update", new, prev - mul(ETA, scaled), binds, ps.theta - step * p.lr)
