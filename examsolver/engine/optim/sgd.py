"""SGD with momentum, dampening, Nesterov and weight decay (torch.optim.SGD), and two textbook forms.

PyTorch (default): v⁽¹⁾ = g⁽¹⁾, v⁽ᵗ⁾ = μv⁽ᵗ⁻¹⁾ + (1 − τ)g⁽ᵗ⁾, θ ← θ − ηv (Nesterov: θ ← θ − η(g + μv)).
Convention `momentum: ema`: v⁽⁰⁾ = 0, v ← βv + (1 − β)g with β = momentum, θ ← θ − ηv
(Nesterov: θ ← θ − η(βv + (1 − β)g)).  Convention `momentum: velocity` (Sutskever et al., CS231n):
v ← μv − ηg, θ ← θ + v (Nesterov: θ ← θ + μv − ηg); for a constant η it is PyTorch's rule with
v = −η·v_PyTorch.
"""

from __future__ import annotations

from pydantic import Field

from examsolver.engine.optim.base import BETA, ETA, MU, Optimizer, ParamStep, filled, optimizer, shown_value
from examsolver.mathnodes import Const, Paren, dot, mul
from examsolver.solution import Phrase
from examsolver.spec.model import Number, Strict


class SGDParams(Strict):
    lr: Number = Field("1e-3", description="learning rate η")
    momentum: Number = Field(0, description="momentum μ")
    dampening: Number = Field(0, description="dampening τ")
    weight_decay: Number = Field(0, description="L2 penalty λ, added to the gradient")
    nesterov: bool = False


@optimizer("sgd")
class SGD(Optimizer):
    Params = SGDParams

    def check(self) -> None:
        p = self.p
        if p.lr < 0 or p.momentum < 0 or p.weight_decay < 0:
            raise ValueError("lr, momentum and weight_decay must be ≥ 0")
        if p.nesterov and (p.momentum <= 0 or p.dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        if self.form != "pytorch" and p.dampening != 0:
            raise ValueError(f"dampening belongs to PyTorch's momentum; the {self.form} form has none")

    @property
    def form(self) -> str:
        return self.conventions.momentum

    torch_state = {"v": "momentum_buffer"}

    def torch_rules(self):
        return self.p.momentum == 0 or self.form == "pytorch"

    def initial_state(self, theta):
        return {"v": filled(theta, 0)} if self.p.momentum != 0 and self.form != "pytorch" else {}

    def update(self, ps: ParamStep):
        p, t = self.p, ps.t
        g = self.gradient(ps)
        new, prev = ps.param(t), ps.param(t - 1)
        g_sym = ps.sym_of("g", t)
        if p.momentum == 0:
            return ps.show(None, "optim.update", new, prev - mul(ETA, g_sym),
                           {prev: ps.theta, ETA: p.lr, g_sym: g}, ps.theta - g * p.lr)
        v = self.velocity(ps, g)
        v_sym = ps.sym_of("v", t)
        binds = {prev: ps.theta, ETA: p.lr, g_sym: g, v_sym: v, MU: p.momentum, BETA: p.momentum}
        if self.form == "velocity":
            form, value = (prev + mul(MU, v_sym) - mul(ETA, g_sym), ps.theta + v * p.momentum - g * p.lr) \
                if p.nesterov else (prev + v_sym, ps.theta + v)
        elif p.nesterov:
            step, value = self.nesterov_direction(g, v, g_sym, v_sym)
            form, value = prev - mul(ETA, Paren(step)), ps.theta - value * p.lr
        else:
            form, value = prev - mul(ETA, v_sym), ps.theta - v * p.lr
        return ps.show(None, "optim.update", new, form, binds, value)

    def velocity(self, ps: ParamStep, g):
        p, t = self.p, ps.t
        v_new, v_old, g_sym = ps.sym_of("v", t), ps.sym_of("v", t - 1), ps.sym_of("g", t)
        if self.form == "pytorch" and t == 1:
            return ps.show("v", "optim.momentum_first", v_new, g_sym, {g_sym: g}, g)
        old = ps.state["v"]
        binds = {v_old: old, g_sym: g, MU: p.momentum, ETA: p.lr, BETA: p.momentum}
        if self.form == "velocity":
            return ps.show("v", "optim.momentum", v_new, mul(MU, v_old) - mul(ETA, g_sym), binds,
                           old * p.momentum - g * p.lr)
        if self.form == "ema":
            keep = 1 - p.momentum
            return ps.show("v", "optim.momentum", v_new, mul(BETA, v_old) + dot(Paren(Const(1) - BETA), g_sym),
                           binds, old * p.momentum + g * keep)
        keep = 1 - p.dampening
        term = g_sym if p.dampening == 0 else mul(shown_value(keep), g_sym)
        return ps.show("v", "optim.momentum", v_new, mul(MU, v_old) + term, binds, old * p.momentum + g * keep)

    def nesterov_direction(self, g, v, g_sym, v_sym):
        """The look-ahead direction: g + μv (PyTorch), βv + (1 − β)g (EMA form)."""
        mu = self.p.momentum
        if self.form == "ema":
            return mul(BETA, v_sym) + dot(Paren(Const(1) - BETA), g_sym), v * mu + g * (1 - mu)
        return g_sym + mul(MU, v_sym), g + v * mu

    def conventions_used(self):
        if self.p.momentum == 0:
            return [Phrase("optim.convention.sgd", {})]
        if self.p.nesterov:        # the whole rule in one sentence (a second would state θ ← θ − ηv too)
            return [Phrase("optim.convention.nesterov" + ("" if self.form == "pytorch" else f"_{self.form}"), {})]
        return [Phrase(f"optim.convention.sgd_{self.form}", {})]
