"""2D convolution with several kernels and input channels, stride, zero padding, dilation, groups and
optional bias.

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
from examsolver.engine.ops.conv import (
    Convolution,
    group_channels,
    pad,
    pair,
    span,
    window_slices,
)
from examsolver.errors import EngineError
from examsolver.mathnodes import Call, Const, Op, Paren, Sym, mul
from examsolver.solution import Phrase, Step
from examsolver.spec.model import Tensor

WINDOW_DETAIL_LIMIT = 9    # output maps with at most this many entries show every window sum

Pair = int | list[int]


def as_channels(x: np.ndarray) -> np.ndarray:
    """(H, W) → (1, H, W); (C, H, W) stays."""
    return x.reshape((1,) + x.shape) if x.ndim == 2 else x


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


class Conv2dParams(NoParams):
    W: Tensor = Field(alias="kernels")
    b: Tensor | None = None
    stride: Pair = 1
    padding: Pair = 0
    dilation: Pair = 1
    groups: int = Field(1, ge=1, le=1000)

    model_config = {**NoParams.model_config, "populate_by_name": True}


@layer
class Conv2d(Convolution):
    spatial_dims = 2
    kind = "conv2d"
    Params = Conv2dParams
    _taps_text = "kh, kw"

    def _tuple(self, name: str) -> tuple:
        return pair(getattr(self.p, name), name)

    def _as_channels(self, x):
        return as_channels(x)

    def check_input(self, x):
        X = as_channels(x)
        if X.ndim != 3:
            raise EngineError(f"{self.name}: expects an image (H, W) or feature maps (C, H, W), got shape {x.shape}")
        self._check_channels(X)

    # spatial-size algebra (for inferring the image size); a dilated kernel spans d(k − 1) + 1
    spatial = padded = True

    def out_channels(self, c_in: int | None) -> int:
        return self.kernels.shape[0]

    def _extent(self, axis: int) -> int:
        return span(self.kernels.shape[2 + axis], self.dilation[axis])

    def out_extent(self, size: int, axis: int, padding: int | None = None) -> int:
        p = self.padding[axis] if padding is None else padding
        return out_size(size, self._extent(axis), self.stride[axis], p)

    def in_extent(self, size: int, axis: int, padding: int | None = None) -> tuple[int, tuple]:
        """The input size whose windows tile `size` outputs exactly (padding overridable for comparisons)."""
        k, s = self._extent(axis), self.stride[axis]
        p = self.padding[axis] if padding is None else padding
        return (size - 1) * s + k - 2 * p, (k, s, p)

    # formulas
    def _input_views(self, flow: Flow) -> list:
        """[(symbol, padded channel)] — x itself for a one-channel image."""
        padded = pad(as_channels(flow.x), self.padding)
        if flow.x.ndim == 2:
            return [(flow.x_sym, padded[0])]
        return [(flow.x_sym.with_sub(str(c + 1)), padded[c]) for c in range(padded.shape[0])]

    def _map_sym(self, flow: Flow, k: int) -> Sym:
        return flow.y_sym.with_sub(str(k + 1))

    def forward_steps(self, flow: Flow) -> list:
        ins = self._input_views(flow)
        steps = []
        for k in range(flow.y.shape[0]):
            ys = self._map_sym(flow, k)
            terms, bindings = [], {}
            for c, (xs, xv) in self._group_inputs(k, ins):
                w, value = self._kernel_node(k, c)
                terms.append(Op("star", (xs, w)))
                bindings[xs] = val(xv)
                bindings[w] = val(value)
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
            "details": Phrase("conv2d.padding_stride", {"ph": ph, "pw": pw, "sh": sh, "sw": sw,
                                                        "more": self.options_phrase()})})

    def _window_steps(self, flow: Flow, k: int, ins: list) -> list:
        """h_k[i, j] = Σ (window ⊙ kernel) for every output entry (small maps only)."""
        taps = self.kernels.shape[2:]
        first = group_channels(k, self.kernels.shape[0], self.kernels.shape[1], self.groups).start
        out = []
        for i in range(flow.y.shape[1]):
            for j in range(flow.y.shape[2]):
                terms, bindings = [], {}
                for c, (xs, xv) in self._group_inputs(k, ins):
                    channel = first + (c or 0)
                    window = Sym("X", f"{channel + 1},({i},{j})" if len(ins) > 1 else f"({i},{j})", bold=True)
                    w = self.kernel_sym(k, c)
                    terms.append(Call("sum", (Op("odot", (window, w)),)))
                    bindings[window] = val(xv[window_slices((i, j), taps, self.stride, self.dilation)])
                    bindings[w] = val(self._kernel_value(k, c or 0))
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
                g = flow.d(self._map_sym(flow, k))
                for c, (xs, xv) in self._group_inputs(k, ins):
                    steps += self.kernel_gradient_steps(flow, g, gy[k], self.kernel_sym(k, c), xs, xv,
                                                        gW[k] if c is None else gW[k, c], "col")
        if "b" in grads:
            for k in range(gy.shape[0]):
                g = flow.d(self._map_sym(flow, k))
                b = Sym("b", f"{self.number}{k + 1}")
                steps.append(Step(lhs=flow.d(b), forms=[Call("sum", (g,))],
                                  bindings={g: val(gy[k])}, result=grads["b"][k]))
        if want_input:
            form, bindings = self.input_gradient_form(flow, gy, lambda k: self._map_sym(flow, k), len(ins) == 1)
            steps.append(Step(lhs=flow.d(flow.x_sym), forms=[form], bindings=bindings, result=gx))
        if steps:
            steps[0].text = self.phrase("backward")
        return steps
