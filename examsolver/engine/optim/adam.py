"""Adam and AdamW (torch.optim.Adam, torch.optim.AdamW), with AMSGrad.

m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g ⊙ g, m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ),
θ ← θ − η m̂ ⊘ (√v̂ + ε).  Adam adds the weight decay to the gradient (L2, g + λθ); AdamW
decays the parameter itself, θ ← (1 − ηλ)θ − η m̂ ⊘ (√v̂ + ε) (Loshchilov & Hutter, as PyTorch).
AMSGrad divides by the running maximum of v instead of v.  Convention `bias_correction: false`
(the form some courses teach) uses m and v without the division by 1 − βᵗ.
"""

from __future__ import annotations

from pydantic import Field

from examsolver.engine.optim.base import (BETA1, BETA2, EPS, ETA, LAMBDA, Optimizer, ParamStep, edivide, emax,
                                          esqrt, filled, optimizer, with_eps)
from examsolver.mathnodes import Call, Const, Frac, Paren, Power, dot, mul
from examsolver.solution import Phrase
from examsolver.spec.model import Number, Strict


class _MomentParams(Strict):
    lr: Number = Field("1e-3", description="learning rate η")
    betas: tuple[Number, Number] = Field(("0.9", "0.999"), description="(β₁, β₂)")
    eps: Number = Field("1e-8", description="ε in the denominator")
    weight_decay: Number = Field(0, description="λ: added to the gradient (Adam) or decoupled (AdamW)")
    amsgrad: bool = False


class AdamParams(_MomentParams):
    decoupled_weight_decay: bool = Field(False, description="true: AdamW's decoupled decay (as torch.optim.Adam)")


class AdamWParams(_MomentParams):
    weight_decay: Number = Field("1e-2", description="λ: decoupled, θ ← (1 − ηλ)θ before the Adam step")


@optimizer("adam")
class Adam(Optimizer):
    Params = AdamParams
    torch_state = {"m": "exp_avg", "v": "exp_avg_sq", "vmax": "max_exp_avg_sq"}

    def torch_rules(self):
        return self.conventions.bias_correction

    @property
    def decoupled(self) -> bool:
        return self.p.decoupled_weight_decay

    def check(self) -> None:
        p = self.p
        if min(p.lr, p.eps, p.weight_decay) < 0:
            raise ValueError("lr, eps and weight_decay must be ≥ 0")
        if not all(0 <= b < 1 for b in p.betas):
            raise ValueError("betas must lie in [0, 1)")

    def l2_decay(self) -> bool:
        return not self.decoupled and self.p.weight_decay != 0

    def initial_state(self, theta):
        state = {"m": filled(theta, 0), "v": filled(theta, 0)}
        if self.p.amsgrad:
            state["vmax"] = filled(theta, 0)
        return state

    def corrections(self, t: int) -> tuple:
        b1, b2 = self.p.betas
        return 1 - b1 ** t, 1 - b2 ** t

    def scalars(self, t: int) -> dict:
        if not self.conventions.bias_correction:
            return {}
        c1, c2 = self.corrections(t)
        return {f"bias_correction1({t})": c1, f"bias_correction2({t})": c2}

    def update(self, ps: ParamStep):
        p, t = self.p, ps.t
        (b1, b2), g = p.betas, self.gradient(ps)
        g_sym = ps.sym_of("g", t)
        binds = {g_sym: g, BETA1: b1, BETA2: b2, EPS: p.eps, ETA: p.lr, LAMBDA: p.weight_decay,
                 ps.param(t - 1): ps.theta}
        m = self.moment(ps, "m", BETA1, g_sym, binds, ps.state["m"] * b1 + g * (1 - b1), "optim.first_moment")
        v = self.moment(ps, "v", BETA2, ps.square(g_sym), binds, ps.state["v"] * b2 + g * g * (1 - b2),
                        "optim.second_moment")
        v_key = "v"
        if p.amsgrad:
            old = ps.sym_of("vmax", t - 1)
            binds[old] = ps.state["vmax"]
            v = ps.show("vmax", "optim.amsgrad", ps.sym_of("vmax", t), Call("max", (old, ps.sym_of("v", t))), binds,
                        emax(ps.state["vmax"], v))
            v_key = "vmax"
            binds[ps.sym_of("vmax", t)] = v
        m_use, v_use = ps.sym_of("m", t), ps.sym_of(v_key, t)
        if self.conventions.bias_correction:
            c1, c2 = self.corrections(t)
            m = self.corrected(ps, "mhat", m_use, BETA1, binds, m, c1)
            v = self.corrected(ps, "vhat", v_use, BETA2, binds, v, c2)
            m_use, v_use = ps.sym_of("mhat", t), ps.sym_of("vhat", t)
        step_form = mul(ETA, ps.ratio(m_use, with_eps(Call("sqrt", (v_use,)), p.eps)))
        step = edivide(m, esqrt(v) + p.eps) * p.lr
        prev = ps.param(t - 1)
        if self.decoupled and p.weight_decay != 0:
            shrink = 1 - p.lr * p.weight_decay
            return ps.show(None, "optim.update_decoupled", ps.param(t),
                           mul(Paren(Const(1) - mul(ETA, LAMBDA)), prev) - step_form, binds, ps.theta * shrink - step)
        return ps.show(None, "optim.update", ps.param(t), prev - step_form, binds, ps.theta - step)

    def moment(self, ps: ParamStep, key, beta, term, binds, value, text):
        new, old = ps.sym_of(key, ps.t), ps.sym_of(key, ps.t - 1)
        binds[old] = ps.state[key]
        result = ps.show(key, text, new, mul(beta, old) + dot(Paren(Const(1) - beta), term), binds, value)
        binds[new] = result
        return result

    def corrected(self, ps: ParamStep, key, moment, beta, binds, value, correction):
        t = ps.t
        text = "optim.bias_correction" if key == "mhat" else None
        form = Frac(moment, Const(1) - Power(beta, Const(t)))
        result = ps.show(key, text, ps.sym_of(key, t), form, binds, value * (1 / correction))
        binds[ps.sym_of(key, t)] = result
        return result

    def conventions_used(self):
        rule = "adamw" if self.decoupled else self.name
        return [Phrase(f"optim.convention.{rule}" + ("" if self.conventions.bias_correction else "_no_bias_correction"),
                       {})]


@optimizer("adamw")
class AdamW(Adam):
    Params = AdamWParams
    decoupled = True            # a class attribute in place of Adam's option
