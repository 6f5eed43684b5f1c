"""1D convolution with several kernels, stride, zero padding and optional bias.

As in PyTorch the layer computes a cross-correlation (x ⋆ w); the convention
`convolution: convolution` flips the kernels first (true convolution).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from examsolver.engine.ops.base import Flow, Layer, NoParams, channels, layer, val
from examsolver.engine.tensor import zeros
from examsolver.errors import EngineError
from examsolver.mathnodes import Const, Op, Sym, Sum
from examsolver.solution import Phrase, Step
from examsolver.spec.model import Tensor


class Conv1dParams(NoParams):
    W: Tensor = Field(alias="kernels")
    b: Tensor | None = None
    stride: int = Field(1, ge=1, le=1000)
    padding: int = Field(0, ge=0, le=1000)

    model_config = {**NoParams.model_config, "populate_by_name": True}


class Convolution(Layer):
    """What 1D and 2D convolutions share: kernel names, kernel values, the stated convention."""

    spatial_dims: int = 1      # kernels given without an input-channel axis have spatial_dims + 1 axes
    weight_aliases = {"W": ("kernels",)}

    def conventions_used(self):
        return [Phrase(f"convention.{self.conventions.convolution}", {})]

    def formula(self, x):
        """x ⋆ w + b (w₁₁ when there is one kernel)."""
        one = self.weights["W"].shape[0] == 1
        out = Op("star", (x, Sym("w", f"{self.number}1" if one else self.number, bold=True)))
        if "b" in self.weights:
            out = Op("+", (out, Sym("b", f"{self.number}1" if self.weights["b"].shape[0] == 1 else self.number)))
        return out

    def kernel_sym(self, k: int, c: int | None = None) -> Sym:
        sub = f"{self.number}{k + 1}" + ("" if c is None else f",{c + 1}")
        return Sym("w", sub, bold=True)

    def _kernel_value(self, k, c):
        W = self.weights["W"]
        return W[k] if W.ndim == self.spatial_dims + 1 else W[k, c]


@layer
class Conv1d(Convolution):
    kind = "conv1d"
    Params = Conv1dParams

    @classmethod
    def param_shapes(cls, sizes: dict) -> dict[str, tuple[int, ...]]:
        """W is c_out × c_in × k (PyTorch's layout); b unless `bias: false`."""
        shapes = {"W": (sizes["out_channels"], sizes.get("in_channels", 1), sizes["kernel_size"])}
        if sizes.get("bias", True):
            shapes["b"] = (sizes["out_channels"],)
        return shapes

    def init_weights(self) -> dict:
        W = self.p.W
        if W.ndim not in (2, 3):
            raise EngineError(f"{self.name}: kernels must be a list of kernels, got shape {W.shape}")
        c_out = W.shape[0]
        if self.p.b is None:
            return {"W": W}
        b = self.p.b.reshape(-1)
        if b.shape != (c_out,):
            raise EngineError(f"{self.name}: b has {b.size} entries, expected one per kernel ({c_out})")
        return {"W": W, "b": b}

    @property
    def kernels(self) -> np.ndarray:
        """(C_out, C_in, K), flipped for a true convolution."""
        W = self.weights["W"]
        W3 = W.reshape(W.shape[0], 1, W.shape[1]) if W.ndim == 2 else W
        return W3[..., ::-1] if self.conventions.convolution == "convolution" else W3

    def _as_channels(self, x):
        return x.reshape(1, -1) if x.ndim == 1 else x

    def torch(self, x, weights):
        c_out, c_in, k = self.kernels.shape
        kernels = f"{weights['W']}.reshape({c_out}, {c_in}, {k})"
        if self.conventions.convolution == "convolution":
            kernels += ".flip(-1)"
        return (f"F.conv1d({x}.reshape({x}.shape[0], {c_in}, -1), {kernels}, {weights.get('b', 'None')}, "
                f"stride={self.p.stride}, padding={self.p.padding})")

    def check_input(self, x):
        c_in, k = self.kernels.shape[1], self.kernels.shape[2]
        if x.ndim not in (1, 2):
            raise EngineError(f"{self.name}: input has shape {x.shape}, expected a sequence (or C × L channels)")
        X = self._as_channels(x)
        if X.shape[0] != c_in:
            raise EngineError(f"{self.name}: input has shape {x.shape}, kernels expect {c_in} channel(s)")
        if X.shape[1] + 2 * self.p.padding < k:
            raise EngineError(f"{self.name}: input of length {X.shape[1]} is shorter than the kernel ({k})")

    def _padded(self, x):
        X = self._as_channels(x)
        P = self.p.padding
        if not P:
            return X
        out = zeros((X.shape[0], X.shape[1] + 2 * P))
        out[:, P:P + X.shape[1]] = X
        return out

    # forward and VJP, side by side
    def forward_one(self, x):
        Xp, K, S = self._padded(x), self.kernels, self.p.stride
        length = (Xp.shape[1] - K.shape[2]) // S + 1
        y = zeros((K.shape[0], length))
        for t in range(length):
            window = Xp[:, t * S:t * S + K.shape[2]]
            for k in range(K.shape[0]):
                y[k, t] = (window * K[k]).sum()
        if "b" in self.weights:
            y = y + self.weights["b"][:, None]
        return y

    def vjp_one(self, x, y, gy):
        Xp, K, S = self._padded(x), self.kernels, self.p.stride
        width = K.shape[2]
        gK, gXp = zeros(K.shape), zeros(Xp.shape)
        for t in range(gy.shape[1]):
            window = Xp[:, t * S:t * S + width]
            for k in range(K.shape[0]):
                gK[k] = gK[k] + gy[k, t] * window        # ∂L/∂w_k = x ⋆ ∂L/∂h_k
                gXp[:, t * S:t * S + width] = gXp[:, t * S:t * S + width] + gy[k, t] * K[k]
        if self.conventions.convolution == "convolution":
            gK = gK[..., ::-1]
        P = self.p.padding
        gx = gXp[:, P:gXp.shape[1] - P].reshape(x.shape)
        grads = {"W": gK.reshape(self.weights["W"].shape)}
        if "b" in self.weights:
            grads["b"] = gy.sum(axis=1)
        return gx, grads

    # formulas
    def forward_steps(self, flow: Flow) -> list:
        c_in = self.kernels.shape[1]
        xs = [(flow.x_sym, flow.x)] if flow.x.ndim == 1 else channels(flow.x_sym, flow.x)
        steps = []
        for k, (ys, yv) in enumerate(channels(flow.y_sym, flow.y)):
            terms, bindings = [], {}
            for c in range(c_in):
                w = self.kernel_sym(k, None if c_in == 1 else c)
                terms.append(Op("star", (xs[c][0], w)))
                bindings[xs[c][0]] = val(self._padded(flow.x)[c], "colT")
                bindings[w] = val(self._kernel_value(k, c), "colT")
            if "b" in self.weights:
                b = Sym("b", f"{self.number}{k + 1}")
                terms.append(b)
                bindings[b] = val(self.weights["b"][k])
            form = terms[0] if len(terms) == 1 else Op("+", tuple(terms))
            steps.append(Step(lhs=ys, forms=[form], bindings=bindings, result=yv, layout="colT"))
        steps[0].text = self.phrase("forward")
        return steps

    def backward_steps(self, flow: Flow, gy, gx, grads, want_input) -> list:
        steps = []
        c_in = self.kernels.shape[1]
        xs = [(flow.x_sym, flow.x)] if flow.x.ndim == 1 else channels(flow.x_sym, flow.x)
        padded = self._padded(flow.x)
        y_views = channels(flow.y_sym, flow.y)
        if "W" in grads:
            gW = grads["W"]
            for k, (ys, _) in enumerate(y_views):
                g = flow.d(ys)
                for c in range(c_in):
                    w = self.kernel_sym(k, None if c_in == 1 else c)
                    value = gW[k] if gW.ndim == 2 else gW[k, c]
                    steps.append(Step(lhs=flow.d(w), forms=[Op("star", (xs[c][0], g))],
                                      bindings={xs[c][0]: val(padded[c], "row"), g: val(gy[k], "row")},
                                      result=value, layout="row"))
        if "b" in grads:
            for k, (ys, _) in enumerate(y_views):
                g = flow.d(ys)
                b = Sym("b", f"{self.number}{k + 1}")
                steps.append(Step(lhs=flow.d(b), forms=[Sum("t", Const(1), Const(gy.shape[1]), g)],
                                  bindings={g: val(gy[k], "row")}, result=grads["b"][k]))
        if want_input:
            # full convolution of the upstream gradient with each kernel
            terms = [Op("fullconv", (flow.d(ys), self.kernel_sym(k))) for k, (ys, _) in enumerate(y_views)]
            steps.append(Step(lhs=flow.d(flow.x_sym), forms=[Op("+", tuple(terms)) if len(terms) > 1 else terms[0]],
                              result=gx, layout="row"))
        if steps:
            steps[0].text = self.phrase("backward")
        return steps

