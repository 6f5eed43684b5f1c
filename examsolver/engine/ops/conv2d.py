"""2D convolution with several kernels and input channels, stride, zero padding and optional bias.

As in PyTorch the layer computes a cross-correlation (x ⋆ w); the convention
`convolution: convolution` flips the kernels in both spatial axes first.  An
input given as one (H, W) image is a single channel; the output always has
channels first, (C_out, H', W'), as PyTorch's would without the batch axis.

The spatial-size algebra (`out_extent`, `in_extent`) lives here too, so that a
problem can infer the image size from the layer sizes (engine/shapes.py).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from examsolver.engine.ops.base import Flow, NoParams, layer, val
from examsolver.engine.ops.conv import Convolution
from examsolver.engine.tensor import zeros
from examsolver.errors import EngineError
from examsolver.mathnodes import Call, Const, Op, Paren, Sym, mul
from examsolver.solution import Phrase, Step
from examsolver.spec.model import Tensor

WINDOW_DETAIL_LIMIT = 9    # output maps with at most this many entries show every window sum

Pair = int | list[int]


def pair(value, what: str) -> tuple[int, int]:
    """An int or [a, b] as (a, b); the spec may give either, as PyTorch does."""
    if isinstance(value, int):
        return value, value
    if len(value) != 2:
        raise EngineError(f"{what} must be one number or two ([height, width]), got {value}")
    return int(value[0]), int(value[1])


def as_channels(x: np.ndarray) -> np.ndarray:
    """(H, W) → (1, H, W); (C, H, W) stays."""
    return x.reshape((1,) + x.shape) if x.ndim == 2 else x


def pad2d(X: np.ndarray, p: tuple[int, int]) -> np.ndarray:
    if not any(p):
        return X
    out = zeros((X.shape[0], X.shape[1] + 2 * p[0], X.shape[2] + 2 * p[1]))
    out[:, p[0]:p[0] + X.shape[1], p[1]:p[1] + X.shape[2]] = X
    return out


def out_size(size: int, k: int, s: int, p: int = 0) -> int:
    """⌊(n + 2p − k)/s⌋ + 1, PyTorch's floor rule."""
    return (size + 2 * p - k) // s + 1


def extent_step(lhs: Sym, rhs: Sym, k: int, s: int, p: int, value: int) -> Step:
    """n_in = (n_out − 1)·s + k − 2p: the smallest input whose windows tile the output exactly."""
    form = Op("+", (mul(Paren(Op("-", (rhs, Const(1)))), Sym("s")), Sym("k")))
    if p:
        form = Op("-", (form, mul(Const(2), Sym("p"))))
    return Step(lhs=lhs, forms=[form], bindings={Sym("s"): val(s), Sym("k"): val(k), Sym("p"): val(p)},
                result=value)


def _check_spatial(name: str, X: np.ndarray, k: tuple, p: tuple) -> None:
    if X.ndim != 3:
        raise EngineError(f"{name}: expects an image (H, W) or feature maps (C, H, W), got shape {X.shape}")
    if X.shape[1] + 2 * p[0] < k[0] or X.shape[2] + 2 * p[1] < k[1]:
        raise EngineError(f"{name}: input {X.shape[1]}×{X.shape[2]} is smaller than the window {k[0]}×{k[1]}")


class Conv2dParams(NoParams):
    W: Tensor = Field(alias="kernels")
    b: Tensor | None = None
    stride: Pair = 1
    padding: Pair = 0

    model_config = {**NoParams.model_config, "populate_by_name": True}


@layer
class Conv2d(Convolution):
    spatial_dims = 2
    kind = "conv2d"
    Params = Conv2dParams

    def init_weights(self) -> dict:
        W = self.p.W
        if W.ndim not in (3, 4):
            raise EngineError(f"{self.name}: kernels must be a list of 2D kernels (C_out, kh, kw) or "
                              f"(C_out, C_in, kh, kw), got shape {W.shape}")
        self.stride = pair(self.p.stride, "stride")
        self.padding = pair(self.p.padding, "padding")
        if min(self.stride) < 1 or min(self.padding) < 0 or max(self.stride + self.padding) > 1000:
            raise EngineError(f"{self.name}: stride must be ≥ 1 and padding ≥ 0 (and both ≤ 1000)")
        if self.p.b is None:
            return {"W": W}
        b = self.p.b.reshape(-1)
        if b.shape != (W.shape[0],):
            raise EngineError(f"{self.name}: b has {b.size} entries, expected one per kernel ({W.shape[0]})")
        return {"W": W, "b": b}

    @classmethod
    def param_shapes(cls, sizes: dict) -> dict[str, tuple[int, ...]]:
        """Shapes of W and b from {in_channels, out_channels, kernel_size, bias} (PyTorch's layout)."""
        kh, kw = pair(sizes["kernel_size"], "kernel_size")
        shapes = {"W": (int(sizes["out_channels"]), int(sizes.get("in_channels", 1)), kh, kw)}
        if sizes.get("bias", True):
            shapes["b"] = (int(sizes["out_channels"]),)
        return shapes

    @property
    def kernels(self) -> np.ndarray:
        """(C_out, C_in, kh, kw), flipped for a true convolution."""
        W = self.weights["W"]
        W4 = W.reshape((W.shape[0], 1) + W.shape[1:]) if W.ndim == 3 else W
        return W4[..., ::-1, ::-1] if self.conventions.convolution == "convolution" else W4

    def check_input(self, x):
        X = as_channels(x)
        K = self.kernels
        _check_spatial(self.name, X, K.shape[2:], self.padding)
        if X.shape[0] != K.shape[1]:
            raise EngineError(f"{self.name}: input has {X.shape[0]} channel(s), the kernels expect {K.shape[1]}")

    # spatial-size algebra (for inferring the image size)
    spatial = padded = True

    def input_channels(self) -> int | None:
        return self.kernels.shape[1]

    def out_channels(self, c_in: int | None) -> int:
        return self.kernels.shape[0]

    def out_extent(self, size: int, axis: int, padding: int | None = None) -> int:
        p = self.padding[axis] if padding is None else padding
        return out_size(size, self.kernels.shape[2 + axis], self.stride[axis], p)

    def in_extent(self, size: int, axis: int, padding: int | None = None) -> tuple[int, tuple]:
        """The input size whose windows tile `size` outputs exactly (padding overridable for comparisons)."""
        k, s = self.kernels.shape[2 + axis], self.stride[axis]
        p = self.padding[axis] if padding is None else padding
        return (size - 1) * s + k - 2 * p, (k, s, p)

    # forward and VJP, side by side
    def forward_one(self, x):
        Xp, K, (sh, sw) = pad2d(as_channels(x), self.padding), self.kernels, self.stride
        kh, kw = K.shape[2:]
        y = zeros((K.shape[0], (Xp.shape[1] - kh) // sh + 1, (Xp.shape[2] - kw) // sw + 1))
        for i in range(y.shape[1]):
            for j in range(y.shape[2]):
                window = Xp[:, i * sh:i * sh + kh, j * sw:j * sw + kw]
                for k in range(K.shape[0]):
                    y[k, i, j] = (window * K[k]).sum()
        if "b" in self.weights:
            y = y + self.weights["b"][:, None, None]
        return y

    def vjp_one(self, x, y, gy):
        Xp, K, (sh, sw) = pad2d(as_channels(x), self.padding), self.kernels, self.stride
        kh, kw = K.shape[2:]
        gK, gXp = zeros(K.shape), zeros(Xp.shape)
        for i in range(gy.shape[1]):
            for j in range(gy.shape[2]):
                rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
                for k in range(K.shape[0]):
                    g = gy[k, i, j]
                    if g.sign() == 0:
                        continue
                    gK[k] = gK[k] + g * Xp[:, rows, cols]            # ∂L/∂w_k = x ⋆ ∂L/∂h_k
                    gXp[:, rows, cols] = gXp[:, rows, cols] + g * K[k]
        if self.conventions.convolution == "convolution":
            gK = gK[..., ::-1, ::-1]
        ph, pw = self.padding
        gx = gXp[:, ph:gXp.shape[1] - ph, pw:gXp.shape[2] - pw].reshape(x.shape)
        grads = {"W": gK.reshape(self.weights["W"].shape)}
        if "b" in self.weights:
            grads["b"] = np.array([gy[k].sum() for k in range(gy.shape[0])], dtype=object)
        return gx, grads

    # formulas
    def _upstream(self, flow: Flow, gy, k: int):
        """∂L/∂h of map k as the backward correlations read it: with stride s, dilated by s (s − 1 zeros
        between entries), so that x ⋆ dil(∂L/∂h) and dil(∂L/∂h) ∗ w are plain correlations/convolutions."""
        g = flow.d(self._map_sym(flow, k))
        (sh, sw), G = self.stride, gy[k]
        if (sh, sw) == (1, 1):
            return g, G
        dilated = zeros(((G.shape[0] - 1) * sh + 1, (G.shape[1] - 1) * sw + 1))
        dilated[::sh, ::sw] = G
        return Call("dil", (g,)), dilated

    def _input_views(self, flow: Flow) -> list:
        """[(symbol, padded channel)] — x itself for a one-channel image."""
        padded = pad2d(as_channels(flow.x), self.padding)
        if flow.x.ndim == 2:
            return [(flow.x_sym, padded[0])]
        return [(flow.x_sym.with_sub(str(c + 1)), padded[c]) for c in range(padded.shape[0])]

    def _map_sym(self, flow: Flow, k: int) -> Sym:
        return flow.y_sym.with_sub(str(k + 1))

    def forward_steps(self, flow: Flow) -> list:
        ins = self._input_views(flow)
        c_in = len(ins)
        steps = []
        for k in range(flow.y.shape[0]):
            ys = self._map_sym(flow, k)
            terms, bindings = [], {}
            for c, (xs, xv) in enumerate(ins):
                w = self.kernel_sym(k, None if c_in == 1 else c)
                terms.append(Op("star", (xs, w)))
                bindings[xs] = val(xv)
                bindings[w] = val(self._kernel_value(k, c))
            if "b" in self.weights:
                b = Sym("b", f"{self.number}{k + 1}")
                terms.append(b)
                bindings[b] = val(self.weights["b"][k])
            form = terms[0] if len(terms) == 1 else Op("+", tuple(terms))
            steps.append(Step(lhs=ys, forms=[form], bindings=bindings, result=flow.y[k]))
            if flow.y[k].size <= WINDOW_DETAIL_LIMIT:
                steps.extend(self._window_steps(flow, k, ins))
        steps[0].text = self.phrase("forward")
        return steps

    def phrase(self, direction: str) -> Phrase:
        """The sentence names the map sizes and the padding, which the reader needs for the shapes."""
        (ph, pw), (sh, sw) = self.padding, self.stride
        return Phrase(f"{direction}.{self.kind}", {
            "layer": self.name, "c": self.kernels.shape[0], "kh": self.kernels.shape[2], "kw": self.kernels.shape[3],
            "details": Phrase("conv2d.padding_stride", {"ph": ph, "pw": pw, "sh": sh, "sw": sw})})

    def _window_steps(self, flow: Flow, k: int, ins: list) -> list:
        """h_k[i, j] = Σ (window ⊙ kernel) for every output entry (small maps only)."""
        (sh, sw), (kh, kw) = self.stride, self.kernels.shape[2:]
        out = []
        for i in range(flow.y.shape[1]):
            for j in range(flow.y.shape[2]):
                terms, bindings = [], {}
                for c, (xs, xv) in enumerate(ins):
                    window = Sym("X", f"{c + 1},({i},{j})" if len(ins) > 1 else f"({i},{j})", bold=True)
                    w = self.kernel_sym(k, None if len(ins) == 1 else c)
                    terms.append(Call("sum", (Op("odot", (window, w)),)))
                    bindings[window] = val(xv[i * sh:i * sh + kh, j * sw:j * sw + kw])
                    bindings[w] = val(self._kernel_value(k, c))
                if "b" in self.weights:
                    b = Sym("b", f"{self.number}{k + 1}")
                    terms.append(b)
                    bindings[b] = val(self.weights["b"][k])
                lhs = flow.y_sym.scalar().with_sub(f"{k + 1},({i},{j})")
                out.append(Step(lhs=lhs, forms=[terms[0] if len(terms) == 1 else Op("+", tuple(terms))],
                                bindings=bindings, result=flow.y[k, i, j]))
        return out

    def backward_steps(self, flow: Flow, gy, gx, grads, want_input) -> list:
        steps = []
        ins = self._input_views(flow)
        if "W" in grads:
            gW = grads["W"]
            for k in range(gy.shape[0]):
                g, dilated = self._upstream(flow, gy, k)
                for c, (xs, xv) in enumerate(ins):
                    w = self.kernel_sym(k, None if len(ins) == 1 else c)
                    steps.append(Step(lhs=flow.d(w), forms=[Op("star", (xs, g))],
                                      bindings={xs: val(xv), g: val(dilated)},
                                      result=gW[k] if gW.ndim == 3 else gW[k, c]))
        if "b" in grads:
            for k in range(gy.shape[0]):
                g = flow.d(self._map_sym(flow, k))
                b = Sym("b", f"{self.number}{k + 1}")
                steps.append(Step(lhs=flow.d(b), forms=[Call("sum", (g,))],
                                  bindings={g: val(gy[k])}, result=grads["b"][k]))
        if want_input:
            terms, bindings = [], {}
            for k in range(gy.shape[0]):
                g, dilated = self._upstream(flow, gy, k)
                w = self.kernel_sym(k)
                terms.append(Op("fullconv", (g, w)))
                if len(ins) == 1:              # one input channel: every number can be written in
                    bindings.update({g: val(dilated), w: val(self._kernel_value(k, 0))})
            form = Op("+", tuple(terms)) if len(terms) > 1 else terms[0]
            if any(self.padding):              # the padded border's gradient is dropped
                form = Call("crop", (form,))
            steps.append(Step(lhs=flow.d(flow.x_sym), forms=[form], bindings=bindings, result=gx))
        if steps:
            steps[0].text = self.phrase("backward")
        return steps
