"""Batch normalization in training mode (statistics of the current minibatch).

Conventions: biased variance (divide by N) unless `variance: unbiased`; eps 0
unless given; backward either through the statistics (`full`) or with them
treated as constants (`conventions: {batchnorm_backward: constants}`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from examsolver.engine import scalar
from examsolver.engine.ops.base import Flow, Layer, NoParams, layer, symbol_for, val
from examsolver.engine.tensor import emap, ones, zeros
from examsolver.errors import EngineError
from examsolver.mathnodes import Const, Deriv, Frac, Op, Paren, Power, Sum, Sym, call, mul
from examsolver.solution import Phrase, Step
from examsolver.spec.model import Number, Tensor


class BatchNormParams(NoParams):
    eps: Number = 0
    variance: Literal["biased", "unbiased"] = "biased"
    affine: bool = False
    gamma: Tensor | None = None
    beta: Tensor | None = None


@layer
class BatchNorm(Layer):
    kind = "batchnorm"
    Params = BatchNormParams

    @classmethod
    def param_shapes(cls, sizes: dict) -> dict[str, tuple[int, ...]]:
        """γ and β per feature (PyTorch's affine=True default; `affine: false` has none)."""
        C = sizes["num_features"]
        return {"gamma": (C,), "beta": (C,)} if sizes.get("affine", True) else {}

    @classmethod
    def buffer_shapes(cls, sizes: dict) -> dict[str, tuple[int, ...]]:
        """The running mean and variance: stored for inference, not trained."""
        C = sizes["num_features"]
        return {"running_mean": (C,), "running_var": (C,)}
    keeps_symbol = True

    def init_weights(self) -> dict:
        weights = {}
        if self.p.gamma is not None:
            weights["gamma"] = self.p.gamma.reshape(-1)
        if self.p.beta is not None:
            weights["beta"] = self.p.beta.reshape(-1)
        return weights

    def check_input(self, x):
        """`affine: true` without values starts as PyTorch does: γ = 1, β = 0 per feature."""
        if self.p.affine:
            features = x.shape[0]
            self.weights.setdefault("gamma", ones((features,)))
            self.weights.setdefault("beta", zeros((features,)))
        for key, value in self.weights.items():
            if value.shape != (x.shape[0],):
                raise EngineError(f"{self.name}: {key} has {value.size} entries, the input has {x.shape[0]} features")

    def output_symbol(self, x_sym, counter, y_example):
        """x̂ is the normalised input; with γ and β the output γ ⊙ x̂ + β is a new quantity, named like
        any layer's output (its x̂ is reported as <layer>.xhat)."""
        if self.weights and not self.p.out:
            return symbol_for(y_example, "h", str(counter + 1)), counter + 1
        return super().output_symbol(x_sym, counter, y_example)

    @property
    def constants(self) -> bool:
        return self.conventions.batchnorm_backward == "constants"

    def torch(self, x, weights):
        """Training-mode batch normalization per feature (per channel of feature maps: over the batch and
        the positions); statistics detached when they are constants in the backward pass."""
        const = ".detach()" if self.constants else ""
        unbiased = self.p.variance == "unbiased"
        shown = self.stats.get("xhat")            # after a forward pass the example's shape is known
        if shown and np.ndim(shown[0]) == 1:       # feature vectors: the short form of the slides
            mean, var = f"{x}.mean(0){const}", f"{x}.var(0, unbiased={unbiased}){const}"
            per_feature = ""
        else:
            axes = f"(0, {', '.join(str(a) for a in range(2, np.ndim(shown[0]) + 1))})" if shown \
                else f"[0] + list(range(2, {x}.dim()))"
            mean = f"{x}.mean({axes}, keepdim=True){const}"
            var = f"{x}.var({axes}, unbiased={unbiased}, keepdim=True){const}"
            per_feature = f".reshape([-1] + [1] * ({x}.dim() - 2))"
        out = f"(({x} - {mean}) / torch.sqrt({var} + {float(self.p.eps)!r}))"
        if "gamma" in weights:
            out += f" * {weights['gamma']}{per_feature}"
        if "beta" in weights:
            out += f" + {weights['beta']}{per_feature}"
        return out

    def _expand(self, stat, like):
        """Per-feature statistics broadcast over an example (channels first)."""
        return stat.reshape(stat.shape + (1,) * (like.ndim - 1))

    def conventions_used(self):
        return [Phrase(f"convention.batchnorm_variance_{self.p.variance}", {"eps": self.p.eps}),
                Phrase(f"convention.batchnorm_backward_{self.conventions.batchnorm_backward}", {})]

    # forward and VJP, side by side
    def forward(self, xs: list) -> list:
        X = np.stack(xs)
        axes = (0,) + tuple(range(2, X.ndim))
        count = X.size // X.shape[1]
        divisor = count - 1 if self.p.variance == "unbiased" else count
        if divisor < 1:
            raise EngineError(f"{self.name}: unbiased variance needs at least two values per feature")
        mu = X.sum(axis=axes) / count
        centred = X - mu.reshape((1,) + mu.shape + (1,) * (X.ndim - 2))
        var = (centred * centred).sum(axis=axes) / divisor
        sigma = emap(lambda v: scalar.sqrt(v + self.p.eps), var)
        if any(s.sign() == 0 for s in sigma):
            raise EngineError(f"{self.name}: a feature has zero variance and eps = 0 (division by zero)")
        self.stats = {"mean": mu, "var": var, "std": sigma, "divisor": divisor, "count": count, "xhat": []}
        out = []
        for x in xs:
            h = (x - self._expand(mu, x)) / self._expand(sigma, x)
            self.stats["xhat"].append(h)
            if "gamma" in self.weights:
                h = h * self._expand(self.weights["gamma"], x)
            if "beta" in self.weights:
                h = h + self._expand(self.weights["beta"], x)
            out.append(h)
        return out

    def vjp(self, xs, ys, gys):
        mu, sigma = self.stats["mean"], self.stats["std"]
        G = np.stack([g if g is not None else zeros(xs[0].shape) for g in gys])
        X = np.stack(xs)
        shape = (1,) + mu.shape + (1,) * (X.ndim - 2)
        centred, sig = X - mu.reshape(shape), sigma.reshape(shape)
        xhat = centred / sig
        grads = {}
        if "gamma" in self.weights:
            grads["gamma"] = (G * xhat).sum(axis=_axes(X))
            G = G * self.weights["gamma"].reshape(shape)
        if "beta" in self.weights:
            grads["beta"] = np.stack([g for g in gys if g is not None]).sum(axis=_axes(X))
        if self.constants:
            GX = G / sig
            rows = [None if g is None else GX[m] for m, g in enumerate(gys)]
        else:
            axes = _axes(X)
            mean_g = G.sum(axis=axes) / self.stats["count"]
            s = (G * centred).sum(axis=axes)
            GX = (G - mean_g.reshape(shape)) / sig - centred * (s.reshape(shape) / (self.stats["divisor"] * sig ** 3))
            rows = [GX[m] for m in range(len(xs))]
        return rows, grads

    # formulas
    def batch_steps(self, xs: list, x_syms: list) -> list:
        n = len(xs)
        mu, var = Sym("mu", bold=True), Power(Sym("sigma", bold=True), Const(2))
        sigma = Sym("sigma", bold=True)
        if xs[0].ndim != 1:
            return [Step(lhs=mu, forms=[], result=self.stats["mean"], text=self.phrase("stats")),
                    Step(lhs=var, forms=[], result=self.stats["var"]),
                    Step(lhs=sigma, forms=[call("sqrt", Op("+", (var, Sym("epsilon"))))], result=self.stats["std"])]
        total = Op("+", tuple(x_syms)) if n > 1 else x_syms[0]
        mean_step = Step(lhs=mu, forms=[mul(Frac(Const(1), Const(n)), Paren(total))],
                         bindings={s: val(x) for s, x in zip(x_syms, xs)},
                         result=self.stats["mean"], text=self.phrase("stats"))
        squares, bindings = [], {}
        for s, x in zip(x_syms, xs):
            node = Power(Paren(Op("-", (s, mu))), Const(2))
            squares.append(node)
            d = x - self.stats["mean"]
            bindings[node] = val(d * d)
        divisor = self.stats["divisor"]
        var_step = Step(lhs=var, forms=[mul(Frac(Const(1), Const(divisor)),
                                            Paren(Op("+", tuple(squares)) if n > 1 else squares[0]))],
                        bindings=bindings, result=self.stats["var"])
        eps = self.p.eps
        root = call("sqrt", Op("+", (var, Sym("epsilon")))) if eps.sign() else call("sqrt", var)
        std_step = Step(lhs=sigma, forms=[root], bindings={var: val(self.stats["var"]), Sym("epsilon"): val(eps)},
                        result=self.stats["std"])
        return [mean_step, var_step, std_step]

    def forward_steps(self, flow: Flow) -> list:
        mu, sigma = Sym("mu", bold=True), Sym("sigma", bold=True)
        form = Op("oslash", (Paren(Op("-", (flow.x_sym, mu))), sigma))
        bindings = {flow.x_sym: val(flow.x), mu: val(self.stats["mean"]), sigma: val(self.stats["std"])}
        if "gamma" in self.weights or "beta" in self.weights:
            gamma, beta = Sym("gamma", bold=True), Sym("beta", bold=True)
            form = Op("+", (Op("odot", (gamma, Paren(form))), beta))
            bindings[gamma] = val(self.weights.get("gamma", np.array([scalar.Exact(1)] * len(self.stats["mean"]))))
            bindings[beta] = val(self.weights.get("beta", zeros(self.stats["mean"].shape)))
        return [Step(lhs=flow.y_sym, forms=[form], bindings=bindings if flow.x.ndim == 1 else {},
                     result=flow.y, text=self.phrase("normalize"))]

    def _backward_phrase(self) -> Phrase:
        which = "constants" if self.constants else "full"
        return Phrase(f"backward.batchnorm_{which}", {"layer": self.name})

    def backward_steps(self, flow: Flow, gy, gx, grads, want_input) -> list:
        m = (flow.n or 1) - 1
        g, xhat = flow.d(flow.y_sym), flow.x_sym.hatted()
        xhat_value = self.stats["xhat"][m]
        steps = []
        if "gamma" in grads:        # y = γ ⊙ x̂ + β
            steps.append(Step(lhs=flow.d(Sym("gamma", bold=True)), forms=[Op("odot", (g, xhat))],
                              bindings={g: val(gy, "row"), xhat: val(xhat_value, "row")}, result=grads["gamma"],
                              layout="row"))
        if "beta" in grads:
            steps.append(Step(lhs=flow.d(Sym("beta", bold=True)), forms=[g], bindings={g: val(gy, "row")},
                              result=grads["beta"], layout="row"))
        if want_input:
            steps += self._input_steps(flow, gy, gx, m, g, xhat)
        if steps:
            steps[0].text = self._backward_phrase()
        return steps

    def _input_steps(self, flow: Flow, gy, gx, m: int, g, xhat) -> list:
        """∂L/∂x: through γ, then (with the statistics) through μ and σ as well."""
        sigma, steps = Sym("sigma", bold=True), []
        gamma = self.weights.get("gamma")
        dxhat = flow.d(xhat) if gamma is not None else g
        if gamma is not None:
            steps.append(Step(lhs=dxhat, forms=[Op("odot", (g, Sym("gamma", bold=True)))],
                              bindings={g: val(gy, "row"), Sym("gamma", bold=True): val(gamma, "row")},
                              result=gy * self._expand(gamma, gy), layout="row"))
        if flow.x.ndim != 1 or flow.gys is None:
            return steps + [Step(lhs=flow.d(flow.x_sym), forms=[], result=gx, layout="row")]
        scale = (lambda v: v * gamma) if gamma is not None else (lambda v: v)
        rows = [scale(v) if v is not None else zeros(gy.shape) for v in flow.gys]
        std = self.stats["std"]
        if self.constants:          # as the 2022 slides: ∂L/∂x = ∂L/∂x̂ · diag(1 ⊘ σ)
            scale = call("diag", Op("oslash", (Const(1), sigma)))
            form = mul(dxhat, scale)
            bindings = {dxhat: val(rows[m], "row"), scale: val(np.diag(emap(lambda v: 1 / v, std)))}
        else:
            n, every = len(rows), Deriv(flow.loss_sym, xhat.of_example("i"))
            mean = mul(Frac(Const(1), Const(self.stats["count"])), Sum("i", Const(1), Const(n), every))
            spread = mul(Frac(Const(1), Const(self.stats["divisor"])),
                         Sum("i", Const(1), Const(n), Op("odot", (every, xhat.of_example("i")))))
            form = Op("oslash", (Paren(Op("-", (dxhat, mean, Op("odot", (xhat, spread))))), sigma))
            total = sum(rows[1:], rows[0]) / self.stats["count"]
            weighted = sum((r * x for r, x in zip(rows[1:], self.stats["xhat"][1:])), rows[0] * self.stats["xhat"][0])
            bindings = {dxhat: val(rows[m], "row"), mean: val(total, "row"), xhat: val(self.stats["xhat"][m], "row"),
                        spread: val(weighted / self.stats["divisor"], "row"), sigma: val(std, "row")}
        return steps + [Step(lhs=flow.d(flow.x_sym), forms=[form], bindings=bindings, result=gx, layout="row")]


def _axes(X):
    return (0,) + tuple(range(2, X.ndim))
