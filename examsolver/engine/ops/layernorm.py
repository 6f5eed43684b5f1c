"""Layer normalization (normalizacija nad slojem), as PyTorch's nn.LayerNorm.

Each example is normalised over its last axes (`normalized_shape`, default the last axis) with
its own mean and biased variance, eps 1e-5 as in PyTorch (`eps: 0` for exact textbook numbers),
then scaled and shifted by γ and β of shape normalized_shape (`elementwise_affine`, `bias`;
γ = 1 and β = 0 when not given, as PyTorch initialises them).  The backward pass goes through
the statistics:  ∂L/∂x = (∂L/∂x̂ − mean(∂L/∂x̂) − x̂ ⊙ mean(∂L/∂x̂ ⊙ x̂)) ⊘ σ.
"""

from __future__ import annotations

import numpy as np

from examsolver.engine import scalar
from examsolver.engine.ops.base import Flow, Layer, NoParams, layer, symbol_for, val
from examsolver.engine.tensor import emap, ones, zeros
from examsolver.errors import EngineError
from examsolver.mathnodes import Call, Const, Frac, Op, Paren, Power, Sym, call
from examsolver.solution import Phrase, Step
from examsolver.spec.model import Number, Tensor


class LayerNormParams(NoParams):
    normalized_shape: int | list[int] | None = None
    eps: Number = "1e-5"
    elementwise_affine: bool = True
    bias: bool = True
    gamma: Tensor | None = None
    beta: Tensor | None = None


@layer
class LayerNorm(Layer):
    kind = "layernorm"
    Params = LayerNormParams
    preserves_shape = True

    @classmethod
    def param_shapes(cls, sizes: dict) -> dict[str, tuple[int, ...]]:
        shape = sizes["normalized_shape"]
        shape = tuple(shape) if isinstance(shape, (list, tuple)) else (shape,)
        if not sizes.get("elementwise_affine", True):
            return {}
        return {"gamma": shape, "beta": shape} if sizes.get("bias", True) else {"gamma": shape}

    def init_weights(self) -> dict:
        if not self.p.elementwise_affine and (self.p.gamma is not None or self.p.beta is not None):
            raise EngineError(f"{self.name}: gamma and beta need elementwise_affine: true")
        if not self.p.bias and self.p.beta is not None:
            raise EngineError(f"{self.name}: beta given with bias: false")
        weights = {"gamma": self.p.gamma, "beta": self.p.beta}
        return {k: v for k, v in weights.items() if v is not None}

    def _shape(self, x) -> tuple:
        given = self.p.normalized_shape
        if given is None:
            return x.shape[-1:]
        return tuple(given) if isinstance(given, list) else (given,)

    def check_input(self, x):
        shape = self._shape(x)
        if x.ndim < len(shape) or x.shape[x.ndim - len(shape):] != shape or not shape:
            raise EngineError(f"{self.name}: normalized_shape {list(shape)} is not the end of the input's shape {x.shape}")
        if self.p.elementwise_affine:           # PyTorch's initial values where none are given
            self.weights.setdefault("gamma", ones(shape))
            if self.p.bias:
                self.weights.setdefault("beta", zeros(shape))
        for key, value in self.weights.items():
            if value.shape != shape:
                raise EngineError(f"{self.name}: {key} has shape {value.shape}, normalized_shape is {shape}")

    def torch(self, x, weights):
        given = self.p.normalized_shape
        dims = f"[{x}.shape[-1]]" if given is None else str(given if isinstance(given, list) else [given])
        return (f"F.layer_norm({x}, {dims}, {weights.get('gamma')}, {weights.get('beta')}, "
                f"eps={float(self.p.eps)!r})")

    def conventions_used(self):
        from examsolver.engine.ops.norm import affine_defaults

        defaults = affine_defaults(self.name, self.p) if self.p.elementwise_affine else []
        return [Phrase("convention.layernorm", {"eps": self.p.eps})] + defaults

    # forward and VJP, side by side (rows: the leading positions, each normalised on its own)
    def _rows(self, x):
        n = int(np.prod(self._shape(x)))
        return x.reshape(-1, n)

    def statistics(self, x):
        """Mean, variance, σ = √(var + ε) and x̂ of each row."""
        rows = self._rows(x)
        n = rows.shape[1]
        mu = rows.sum(axis=1) / n
        centred = rows - mu[:, None]
        var = (centred * centred).sum(axis=1) / n
        sigma = emap(lambda v: scalar.sqrt(v + self.p.eps), var)
        if any(s.sign() == 0 for s in sigma):
            raise EngineError(f"{self.name}: an example has zero variance and eps = 0 (division by zero)")
        return mu, var, sigma, (centred / sigma[:, None]).reshape(x.shape)

    def forward_one(self, x):
        xhat = self.statistics(x)[3]
        return self._affine(xhat)

    def _affine(self, xhat):
        if "gamma" in self.weights:
            xhat = xhat * self.weights["gamma"]
        if "beta" in self.weights:
            xhat = xhat + self.weights["beta"]
        return np.asarray(xhat, dtype=object)

    def vjp_one(self, x, y, gy):
        _, _, sigma, xhat = self.statistics(x)
        grads = {}
        if "gamma" in self.weights:
            grads["gamma"] = (gy * xhat).reshape((-1,) + self._shape(x)).sum(axis=0)
        if "beta" in self.weights:
            grads["beta"] = np.asarray(gy, dtype=object).reshape((-1,) + self._shape(x)).sum(axis=0)
        g = gy * self.weights["gamma"] if "gamma" in self.weights else gy
        G, H = self._rows(np.asarray(g, dtype=object)), self._rows(xhat)
        n = G.shape[1]
        mean_g = G.sum(axis=1) / n
        mean_gh = (G * H).sum(axis=1) / n
        gx = (G - mean_g[:, None] - H * mean_gh[:, None]) / sigma[:, None]
        return np.asarray(gx.reshape(x.shape), dtype=object), grads

    # formulas (written out for vector examples; other shapes show the results)
    def forward_steps(self, flow: Flow) -> list:
        mu, var, sigma_value, xhat_value = self.statistics(flow.x)
        x, xhat = flow.x_sym, flow.x_sym.hatted()
        m, s, eps = Sym("mu").of_example(flow.n), Sym("sigma").of_example(flow.n), Sym("epsilon")
        vector = flow.x.ndim == 1
        steps = [
            Step(lhs=m, forms=[call("mean", x)] if vector else [],
                 bindings={x: val(flow.x, "colT")} if vector else {}, result=mu[0] if vector else mu,
                 text=Phrase("stats.layernorm", {"layer": self.name, "count": len(self._shape(flow.x))})),
            Step(lhs=Power(s, Const(2)), forms=[call("mean", Power(Paren(Op("-", (x, m))), Const(2)))] if vector else [],
                 bindings={x: val(flow.x, "colT"), m: val(mu[0])} if vector else {}, result=var[0] if vector else var),
            Step(lhs=s, forms=[call("sqrt", Op("+", (Power(s, Const(2)), eps)))],
                 bindings={Power(s, Const(2)): val(var[0] if vector else var), eps: val(self.p.eps)},
                 result=sigma_value[0] if vector else sigma_value),
            Step(lhs=xhat, forms=[Frac(Op("-", (x, m)), s)] if vector else [],
                 bindings={x: val(flow.x), m: val(mu[0]), s: val(sigma_value[0])} if vector else {},
                 result=xhat_value, text=self.phrase("normalize")),
        ]
        if self.weights:
            gamma, beta = Sym("gamma", bold=True), Sym("beta", bold=True)
            form = Op("odot", (gamma, xhat)) if "gamma" in self.weights else xhat
            form = Op("+", (form, beta)) if "beta" in self.weights else form
            bindings = {xhat: val(xhat_value)}
            bindings.update({Sym(k, bold=True): val(v) for k, v in self.weights.items()})
            steps.append(Step(lhs=flow.y_sym, forms=[form], bindings=bindings if vector else {}, result=flow.y,
                              text=Phrase("affine.layernorm", {})))
        return steps

    def phrase(self, direction: str) -> Phrase:
        return Phrase(f"{direction}.{self.kind}", {"layer": self.name})

    def output_symbol(self, x_sym, counter, y_example):
        """x̂ is the normalised input; the output γ ⊙ x̂ + β is named like any layer's output."""
        if self.p.elementwise_affine and not self.p.out:
            return symbol_for(y_example, "h", str(counter + 1)), counter + 1
        return super().output_symbol(x_sym, counter, y_example)

    def backward_steps(self, flow: Flow, gy, gx, grads, want_input) -> list:
        _, _, sigma_value, xhat_value = self.statistics(flow.x)
        g, xhat = flow.d(flow.y_sym), flow.x_sym.hatted()
        gamma, beta = Sym("gamma", bold=True), Sym("beta", bold=True)
        vector = flow.x.ndim == 1
        steps = []
        if "gamma" in grads:
            steps.append(Step(lhs=flow.d(gamma), forms=[Op("odot", (g, xhat))] if vector else [],
                              bindings={g: val(gy, "row"), xhat: val(xhat_value, "row")}, result=grads["gamma"],
                              layout="row"))
        if "beta" in grads:
            steps.append(Step(lhs=flow.d(beta), forms=[g] if vector else [], bindings={g: val(gy, "row")},
                              result=grads["beta"], layout="row"))
        if want_input:
            g_hat = gy * self.weights["gamma"] if "gamma" in self.weights else np.asarray(gy, dtype=object)
            dxhat = flow.d(xhat) if self.weights else g
            if "gamma" in self.weights:
                steps.append(Step(lhs=dxhat, forms=[Op("odot", (g, gamma))],
                                  bindings={g: val(gy, "row"), gamma: val(self.weights["gamma"], "row")},
                                  result=g_hat, layout="row"))
            forms, bindings = [], {}
            if vector:
                mean = Call("mean", (dxhat,))
                spread = Call("mean", (Op("odot", (dxhat, xhat)),))
                sigma = Sym("sigma").of_example(flow.n)
                forms = [Frac(Op("-", (dxhat, mean, Op("odot", (xhat, spread)))), sigma)]
                n = len(g_hat)
                bindings = {dxhat: val(g_hat, "row"), mean: val(g_hat.sum() / n),
                            xhat: val(xhat_value, "row"), spread: val((g_hat * xhat_value).sum() / n),
                            sigma: val(sigma_value[0])}
            steps.append(Step(lhs=flow.d(flow.x_sym), forms=forms, bindings=bindings, result=gx, layout="row"))
        if steps:
            steps[0].text = self.phrase("backward")
        return steps
