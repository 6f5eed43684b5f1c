"""1D max and average pooling over windows of each channel (kernel_size, stride, padding as in PyTorch).

Max pooling decides its winners on exact values with 2D max pooling's rule (`maxpool_ties`: the first
maximum, as PyTorch's CPU kernel, or the gradient split among the tied maxima); padded positions are
−∞ there, so they never win (PyTorch's rule, which also keeps padding ≤ kernel_size/2 so that every
window holds an input).  Average pooling pads with zeros and divides by the kernel size
(`count_include_pad: true`, PyTorch's default) or by the inputs the window covers.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from examsolver.engine.ops.base import Flow, Layer, NoParams, channels, layer, val
from examsolver.engine.ops.pool2d import MaxPool2d, Pool2d, torch_pool
from examsolver.engine.scalar import Exact
from examsolver.engine.tensor import zeros
from examsolver.errors import EngineError
from examsolver.mathnodes import Const, Frac, Sym, mul
from examsolver.solution import Phrase


class Pool1dParams(NoParams):
    kernel_size: int = Field(2, ge=1, le=1000)
    stride: int | None = Field(None, ge=1, le=1000)     # PyTorch's default: the kernel size
    padding: int = Field(0, ge=0, le=500)


class AvgPool1dParams(Pool1dParams):
    count_include_pad: bool = True


class Pool1d(Layer):
    """The window walk of a (C, L) input or one sequence; subclasses give the pooled value and the shares."""

    Params = Pool1dParams
    fn_name: str

    def init_weights(self) -> dict:
        self.size, self.pad = self.p.kernel_size, self.p.padding
        self.stride = self.p.stride if self.p.stride is not None else self.size
        if 2 * self.pad > self.size:
            raise EngineError(f"{self.name}: padding {self.pad} must be at most half the kernel size "
                              f"{self.size} (as PyTorch requires)")
        return {}

    @classmethod
    def param_shapes(cls, sizes: dict) -> dict[str, tuple[int, ...]]:
        return {}

    @classmethod
    def window(cls, sizes: dict) -> tuple:
        size = sizes.get("kernel_size", 2)
        return ((size, sizes.get("stride") if sizes.get("stride") is not None else size),)

    def check_input(self, x):
        if x.ndim not in (1, 2) or x.shape[-1] + 2 * self.pad < self.size:
            raise EngineError(f"{self.name}: expects a sequence (L) or channels (C, L) with L + 2·padding at "
                              f"least {self.size}, got shape {x.shape}")

    def windows(self, length: int):
        """(t, slice of the input) per output position: the window clipped to the real inputs."""
        count = (length + 2 * self.pad - self.size) // self.stride + 1
        for t in range(count):
            start = t * self.stride - self.pad
            yield t, slice(max(start, 0), min(start + self.size, length))

    def _maps(self, x):
        return [x] if x.ndim == 1 else [x[c] for c in range(x.shape[0])]

    def window_values(self, m) -> list:
        return [m[span] for _, span in self.windows(m.shape[0])]

    @property
    def overlapping(self) -> bool:
        return self.stride < self.size or self.pad > 0

    # forward and VJP, side by side
    def forward_one(self, x):
        out = [self._pool_map(m) for m in self._maps(x)]
        return out[0] if x.ndim == 1 else np.stack(out)

    def _pool_map(self, m):
        windows = list(self.windows(m.shape[0]))
        y = zeros((len(windows),))
        for t, span in windows:
            y[t] = self.pool(m[span])
        return y

    def vjp_one(self, x, y, gy):
        out = [self.route(m, g) for m, g in zip(self._maps(x), self._maps(gy))]
        return (out[0] if x.ndim == 1 else np.stack(out)), {}

    def route(self, m, g):
        """∂L/∂x of one channel: each window's upstream gradient times its local shares."""
        gx = zeros(m.shape)
        for t, span in self.windows(m.shape[0]):
            gx[span] = gx[span] + self.shares(m[span]) * g[t]
        return gx

    def share_map(self, m):
        """The local derivatives laid over the channel (for non-overlapping windows: the mask M)."""
        out = zeros(m.shape)
        for _, span in self.windows(m.shape[0]):
            out[span] = out[span] + self.shares(m[span])
        return out

    def torch(self, x, weights):
        return torch_pool(self, x, f"{self.size}, {self.stride}, {self.pad}", 1)

    # formulas
    def _views(self, flow: Flow):
        if flow.x.ndim == 1:
            return [(flow.x_sym, flow.x, flow.y_sym, flow.y)]
        return [(xs, xv, ys, yv) for (xs, xv), (ys, yv) in zip(channels(flow.x_sym, flow.x), channels(flow.y_sym, flow.y))]

    def phrase(self, direction: str) -> Phrase:
        return Phrase(f"{direction}.{self.kind}", {"layer": self.name, "k": self.size, "s": self.stride,
                                                    "p": self.pad})

    layouts = ("colT", "row")
    forward_steps = Pool2d.forward_steps
    backward_steps = Pool2d.backward_steps

    def elementwise(self, xv) -> bool:
        return not self.overlapping and xv.shape[0] % self.size == 0


@layer
class MaxPool1d(Pool1d):
    kind = "max_pool1d"
    fn_name = "maxpool"
    pool = MaxPool2d.pool           # the window's maximum, decided exactly
    shares = MaxPool2d.shares       # 1 at the winner, or split over the ties
    conventions_used = MaxPool2d.conventions_used
    backward_form = MaxPool2d.backward_form

    torch_options = MaxPool2d.torch_options

    def backward_bindings(self, xs, xv):
        return {Sym("M", xs.sub, bold=True): val(self.share_map(xv), "row")}

    tied_windows = MaxPool2d.tied_windows
    degeneracies = MaxPool2d.degeneracies


@layer
class AvgPool1d(Pool1d):
    kind = "avg_pool1d"
    fn_name = "avgpool"
    Params = AvgPool1dParams

    def _divisor(self, window) -> int:
        return self.size if self.p.count_include_pad else window.size

    def pool(self, window):
        return window.sum() / self._divisor(window)

    def shares(self, window):
        out = zeros(window.shape)
        out.fill(Exact(1) / self._divisor(window))
        return out

    def torch_options(self) -> str:
        return "" if self.p.count_include_pad else ", count_include_pad=False"

    def backward_form(self, xs, up):
        return mul(Frac(Const(1), Const(self.size)), up)

    def backward_bindings(self, xs, xv):
        return {}

    def conventions_used(self):
        if not self.pad:
            return []
        return [Phrase(f"convention.avg_pool_pad_{'included' if self.p.count_include_pad else 'excluded'}",
                       {"option": "count_include_pad"})]
