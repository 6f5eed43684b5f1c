"""Batch normalization: training mode (statistics of the current minibatch) or evaluation mode.

Conventions: biased variance (divide by N) unless `variance: unbiased`; eps 0
unless given; backward either through the statistics (`full`) or with them
treated as constants (`conventions: {batchnorm_backward: constants}`).

Running statistics as PyTorch keeps them: `training: false` normalises with the
given `running_mean` and `running_var` (PyTorch's initial 0 and 1 when not
given), so the backward pass is elementwise.  In training mode, once a spec
states `momentum`, `running_mean` or `running_var`, the updated statistics are
results: μ_run ← (1 − m)·μ_run + m·μ and σ²_run ← (1 − m)·σ²_run + m·n/(n − 1)·σ²
(PyTorch stores the unbiased variance of the batch whatever it normalises with).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from examsolver.engine import scalar
from examsolver.engine.ops.base import Flow, Layer, NoParams, layer, symbol_for, val
from examsolver.engine.tensor import emap, ones, to_float, zeros
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
    training: bool = True
    momentum: Number = "1/10"                # PyTorch's default 0.1
    running_mean: Tensor | None = None
    running_var: Tensor | None = None


def affine_defaults(layer: str, params) -> list[Phrase]:
    """γ and β not given start at PyTorch's 1 and 0 (they are parameters all the same): said once."""
    names = ", ".join(sym for key, sym in (("gamma", "γ"), ("beta", "β")) if getattr(params, key) is None
                      and (key == "gamma" or getattr(params, "bias", True)))
    return [Phrase("convention.affine_defaults", {"layer": layer, "names": names})] if names else []


@layer
class BatchNorm(Layer):
    kind = "batchnorm"
    Params = BatchNormParams
    positionwise = True

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
        for key, value in {**self.weights, **self._given_running()}.items():
            if value.shape != (x.shape[0],):
                raise EngineError(f"{self.name}: {key} has {value.size} entries, the input has {x.shape[0]} features")

    def _given_running(self) -> dict:
        return {key: getattr(self.p, key).reshape(-1) for key in ("running_mean", "running_var")
                if getattr(self.p, key) is not None}

    @property
    def tracks(self) -> bool:
        """Running statistics are part of the problem: evaluation mode, or a spec that states them."""
        return not self.p.training or bool({"momentum", "running_mean", "running_var"} & self.p.model_fields_set)

    def _running_value(self, key: str, features: int):
        given = getattr(self.p, key)
        if given is not None:
            return given.reshape(-1)
        return (zeros if key == "running_mean" else ones)((features,))

    def output_symbol(self, x_sym, counter, y_example):
        """x̂ is the normalised input; with γ and β the output γ ⊙ x̂ + β is a new quantity, named like
        any layer's output (its x̂ is reported as <layer>.xhat)."""
        if self.weights and not self.p.out:
            return symbol_for(y_example, "h", str(counter + 1)), counter + 1
        return super().output_symbol(x_sym, counter, y_example)

    @property
    def constants(self) -> bool:
        """The statistics are constants of the backward pass: by convention, or in evaluation mode."""
        return self.conventions.batchnorm_backward == "constants" or not self.p.training

    def torch(self, x, weights):
        """Training-mode batch normalization per feature (per channel of feature maps: over the batch and
        the positions); statistics detached when they are constants in the backward pass."""
        if not self.p.training:
            return self._torch_eval(x, weights)
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

    def _torch_eval(self, x, weights):
        """F.batch_norm in evaluation mode with the running statistics written in (PyTorch's 0 and 1 unless
        given)."""
        stats = [f"torch.tensor({to_float(given.reshape(-1)).tolist()})" if (given := getattr(self.p, key)) is not None
                 else f"torch.{start}({x}.shape[1])" for key, start in (("running_mean", "zeros"), ("running_var", "ones"))]
        return (f"F.batch_norm({x}, {stats[0]}, {stats[1]}, {weights.get('gamma', 'None')}, "
                f"{weights.get('beta', 'None')}, training=False, eps={float(self.p.eps)!r})")

    def _expand(self, stat, like):
        """Per-feature statistics broadcast over an example (channels first)."""
        return stat.reshape(stat.shape + (1,) * (like.ndim - 1))

    def conventions_used(self):
        if not self.p.training:
            return [Phrase("convention.batchnorm_eval", {"layer": self.name, "eps": self.p.eps})]
        out = [Phrase(f"convention.batchnorm_variance_{self.p.variance}", {"eps": self.p.eps}),
               Phrase(f"convention.batchnorm_backward_{self.conventions.batchnorm_backward}", {})]
        if self.tracks:
            out.append(Phrase("convention.batchnorm_running", {"m": self.p.momentum}))
        return out + (affine_defaults(self.name, self.p) if self.p.affine else [])

    # forward and VJP, side by side
    def forward(self, xs: list) -> list:
        X = np.stack(xs)
        count = X.size // X.shape[1]
        if self.p.training:
            mu, var, divisor = self._batch_statistics(X, count)
        else:       # evaluation: the running statistics, as given
            mu, var = (self._running_value(k, X.shape[1]) for k in ("running_mean", "running_var"))
            divisor = None
        sigma = emap(lambda v: scalar.sqrt(v + self.p.eps), var)
        if any(s.sign() == 0 for s in sigma):
            raise EngineError(f"{self.name}: a feature has zero variance and eps = 0 (division by zero)")
        self.stats = {"mean": mu, "var": var, "std": sigma, "divisor": divisor, "count": count, "xhat": []}
        if self.p.training and self.tracks:
            self.stats.update(self._running_update(X, mu, count))
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

    def _batch_statistics(self, X, count: int) -> tuple:
        divisor = count - 1 if self.p.variance == "unbiased" else count
        if divisor < 1:
            raise EngineError(f"{self.name}: unbiased variance needs at least two values per feature")
        mu = X.sum(axis=_axes(X)) / count
        centred = X - mu.reshape((1,) + mu.shape + (1,) * (X.ndim - 2))
        return mu, (centred * centred).sum(axis=_axes(X)) / divisor, divisor

    def _running_update(self, X, mu, count: int) -> dict:
        """PyTorch's update: the running mean moves towards μ, the running variance towards the batch's
        unbiased variance (n/(n − 1) times the biased one), both by the momentum m."""
        if count < 2:
            raise EngineError(f"{self.name}: the running variance needs at least two values per feature "
                              f"(PyTorch refuses a batch of one value per channel in training mode)")
        centred = X - mu.reshape((1,) + mu.shape + (1,) * (X.ndim - 2))
        unbiased = (centred * centred).sum(axis=_axes(X)) / (count - 1)
        m, features = self.p.momentum, X.shape[1]
        old_mean, old_var = (self._running_value(k, features) for k in ("running_mean", "running_var"))
        return {"running_mean": old_mean * (1 - m) + mu * m, "running_var": old_var * (1 - m) + unbiased * m,
                "before": (old_mean, old_var, unbiased)}

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
    def _syms(self) -> tuple:
        """μ and σ: the batch's, or in evaluation mode the running ones."""
        sub = "" if self.p.training else "run"
        return Sym("mu", sub, bold=True), Sym("sigma", sub, bold=True)

    def batch_steps(self, xs: list, x_syms: list) -> list:
        if not self.p.training:
            return self._eval_steps()
        return self._statistics_steps(xs, x_syms) + (self._update_steps() if self.tracks else [])

    def _eval_steps(self) -> list:
        sigma = self._syms()[1]
        var = Power(sigma, Const(2))
        root = call("sqrt", Op("+", (var, Sym("epsilon")))) if self.p.eps.sign() else call("sqrt", var)
        return [Step(lhs=sigma, forms=[root], bindings={var: val(self.stats["var"]), Sym("epsilon"): val(self.p.eps)},
                     result=self.stats["std"], text=Phrase("stats_eval.batchnorm", {"layer": self.name}))]

    def _update_steps(self) -> list:
        """μ_run ← (1 − m)·μ_run + m·μ, σ²_run ← (1 − m)·σ²_run + m·s² with the unbiased s² of the batch."""
        old_mean, old_var, unbiased = self.stats["before"]
        m, n = Sym("m"), self.stats["count"]
        mu, var = Sym("mu", bold=True), Power(Sym("sigma", bold=True), Const(2))
        run_mu, run_var = Sym("mu", "run", bold=True), Power(Sym("sigma", "run", bold=True), Const(2))
        s2 = Power(Sym("s", bold=True), Const(2))
        keep = Paren(Op("-", (Const(1), m)))
        steps = [Step(lhs=run_mu.with_sup("UPD"), forms=[Op("+", (mul(keep, run_mu), mul(m, mu)))],
                      bindings={m: val(self.p.momentum), run_mu: val(old_mean), mu: val(self.stats["mean"])},
                      result=self.stats["running_mean"],
                      text=Phrase("running.batchnorm", {"layer": self.name, "m": self.p.momentum}))]
        if self.stats["divisor"] != n - 1:
            steps.append(Step(lhs=s2, forms=[mul(Frac(Const(n), Const(n - 1)), var)],
                              bindings={var: val(self.stats["var"])}, result=unbiased))
        else:
            s2 = var
        steps.append(Step(lhs=Power(Sym("sigma", "run", bold=True).with_sup("UPD"), Const(2)),
                          forms=[Op("+", (mul(keep, run_var), mul(m, s2)))],
                          bindings={m: val(self.p.momentum), run_var: val(old_var), s2: val(unbiased)},
                          result=self.stats["running_var"]))
        return steps

    def _statistics_steps(self, xs: list, x_syms: list) -> list:
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
        mu, sigma = self._syms()
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
        sigma, steps = self._syms()[1], []
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
