"""2D max and average pooling over windows of each feature map (kernel, stride, padding as in PyTorch:
padded positions never win a max window; an average counts them unless `count_include_pad: false`).

Max pooling decides its winners on exact values, so ties are real ties: with
`conventions.maxpool_ties: first` the gradient of a window goes to its first
maximum in row-major order (what PyTorch's CPU kernel does: it keeps the
running maximum with a strict `>`), with `split` it is shared equally among
the tied maxima.  Every tied window is reported by `degeneracies()`.
"""

from __future__ import annotations

import numpy as np

from examsolver.engine.ops.base import Flow, Layer, NoParams, channels, layer, val
from examsolver.engine.ops.conv2d import Pair, out_size, pair
from examsolver.engine.scalar import Exact
from examsolver.engine.tensor import zeros
from examsolver.errors import EngineError
from examsolver.mathnodes import Call, Const, Frac, Op, Sym, mul
from examsolver.solution import Phrase, Step


class Pool2dParams(NoParams):
    kernel_size: Pair = 2
    stride: Pair | None = None          # PyTorch's default: the kernel size
    padding: Pair = 0                   # at most half the kernel, as PyTorch requires


class AvgPool2dParams(Pool2dParams):
    count_include_pad: bool = True


def torch_pool(layer, x: str, args: str, example_dims: int) -> str | None:
    """F.<kind>(x, args) on the batch, an example without a channel axis given one; None when the layer's
    tie rule has no PyTorch equivalent."""
    if layer.torch_options() is None:
        return None
    call = f"F.{layer.kind}({{}}, {args}{layer.torch_options()})"
    return f"({call.format(f'{x}.unsqueeze(1)')}.squeeze(1) if {x}.dim() == {example_dims + 1} else {call.format(x)})"


class Pool2d(Layer):
    """Shared window walk; subclasses give the per-window forward and gradient share."""

    Params = Pool2dParams
    fn_name: str

    def init_weights(self) -> dict:
        self.size = pair(self.p.kernel_size, "kernel_size")
        self.stride = pair(self.p.stride if self.p.stride is not None else self.p.kernel_size, "stride")
        self.pad = pair(self.p.padding, "padding")
        if min(self.size + self.stride) < 1 or max(self.size + self.stride) > 1000:
            raise EngineError(f"{self.name}: kernel_size and stride must be between 1 and 1000")
        if any(p < 0 or 2 * p > k for p, k in zip(self.pad, self.size)):
            raise EngineError(f"{self.name}: padding must be between 0 and half the kernel size (PyTorch's rule)")
        return {}

    @classmethod
    def param_shapes(cls, sizes: dict) -> dict[str, tuple[int, ...]]:
        return {}

    @classmethod
    def window(cls, sizes: dict) -> tuple:
        size = pair(sizes.get("kernel_size", 2), "kernel_size")
        stride = pair(sizes.get("stride") if sizes.get("stride") is not None else size, "stride")
        return tuple(zip(size, stride))

    def torch(self, x, weights):
        return torch_pool(self, x, f"{self.size}, {self.stride}, {self.pad}", 2)

    def torch_options(self) -> str | None:
        return ""

    def check_input(self, x):
        if x.ndim not in (2, 3) or x.shape[-2] + 2 * self.pad[0] < self.size[0] \
                or x.shape[-1] + 2 * self.pad[1] < self.size[1]:
            raise EngineError(f"{self.name}: expects feature maps (C, H, W) or (H, W) of at least "
                              f"{self.size[0]}×{self.size[1]}, got shape {x.shape}")

    # spatial-size algebra
    spatial = True

    def out_channels(self, c_in):
        return c_in

    def out_extent(self, size: int, axis: int, padding: int | None = None) -> int:
        return out_size(size, self.size[axis], self.stride[axis], self.pad[axis])

    def in_extent(self, size: int, axis: int, padding: int | None = None) -> tuple[int, tuple]:
        k, s, p = self.size[axis], self.stride[axis], self.pad[axis]
        return (size - 1) * s + k - 2 * p, (k, s, p)

    def windows(self, shape):
        """(i, j, rows, cols) for every output position of an (H, W) map: a window over the padded map,
        clipped to the map (padding holds nothing that could win or be averaged in)."""
        (kh, kw), (sh, sw), (ph, pw) = self.size, self.stride, self.pad
        for i in range(out_size(shape[0], kh, sh, ph)):
            for j in range(out_size(shape[1], kw, sw, pw)):
                r, c = i * sh - ph, j * sw - pw
                yield i, j, slice(max(r, 0), min(r + kh, shape[0])), slice(max(c, 0), min(c + kw, shape[1]))

    def _maps(self, x):
        return [x] if x.ndim == 2 else [x[c] for c in range(x.shape[0])]

    def window_values(self, m) -> list:
        return [m[rows, cols] for _, _, rows, cols in self.windows(m.shape)]

    @property
    def overlapping(self) -> bool:
        """Windows that overlap, or are clipped by padding: no mask ⊙ up(·) form then."""
        return self.stride[0] < self.size[0] or self.stride[1] < self.size[1] or any(self.pad)

    # forward and VJP, side by side (per map; shares() is the local derivative of one window)
    def forward_one(self, x):
        out = [self._pool_map(m) for m in self._maps(x)]
        return out[0] if x.ndim == 2 else np.stack(out)

    def _pool_map(self, m):
        shape = tuple(out_size(m.shape[a], self.size[a], self.stride[a], self.pad[a]) for a in (0, 1))
        y = zeros(shape)
        for i, j, rows, cols in self.windows(m.shape):
            y[i, j] = self.pool(m[rows, cols])
        return y

    def vjp_one(self, x, y, gy):
        maps, gmaps = self._maps(x), self._maps(gy)
        out = [self.route(m, g) for m, g in zip(maps, gmaps)]
        return (out[0] if x.ndim == 2 else np.stack(out)), {}

    def route(self, m, g):
        """∂L/∂x of one map: each window's upstream gradient times its local shares."""
        gx = zeros(m.shape)
        for i, j, rows, cols in self.windows(m.shape):
            gx[rows, cols] = gx[rows, cols] + self.shares(m[rows, cols]) * g[i, j]
        return gx

    def share_map(self, m):
        """The local derivatives laid over the map (for non-overlapping windows: the mask M)."""
        out = zeros(m.shape)
        for _, _, rows, cols in self.windows(m.shape):
            out[rows, cols] = out[rows, cols] + self.shares(m[rows, cols])
        return out

    def pool(self, window):
        raise NotImplementedError

    def shares(self, window) -> np.ndarray:
        raise NotImplementedError

    # formulas
    def _views(self, flow: Flow):
        if flow.x.ndim == 2:
            return [(flow.x_sym, flow.x, flow.y_sym, flow.y)]
        return [(xs, xv, ys, yv) for (xs, xv), (ys, yv) in zip(channels(flow.x_sym, flow.x), channels(flow.y_sym, flow.y))]

    def phrase(self, direction: str) -> Phrase:
        padding = Phrase("pool.padding", {"ph": self.pad[0], "pw": self.pad[1]}) if any(self.pad) else ""
        return Phrase(f"{direction}.{self.kind}", {"layer": self.name, "kh": self.size[0], "kw": self.size[1],
                                                    "sh": self.stride[0], "sw": self.stride[1], "padding": padding})

    layouts = ("col", "col")      # how the forward and backward steps print a map (1D pooling: a sequence)

    def elementwise(self, xv) -> bool:
        """The gradient is mask ⊙ up(∂L/∂h): the windows tile the map without overlapping."""
        return not self.overlapping

    def forward_steps(self, flow: Flow) -> list:
        steps = [Step(lhs=ys, forms=[Call(self.fn_name, (xs,))], bindings={xs: val(xv, self.layouts[0])}, result=yv,
                      layout=self.layouts[0]) for xs, xv, ys, yv in self._views(flow)]
        steps[0].text = self.phrase("forward")
        return steps

    def backward_steps(self, flow: Flow, gy, gx, grads, want_input) -> list:
        if not want_input:
            return []
        steps = []
        gys, gxs = self._maps(np.asarray(gy, dtype=object)), self._maps(np.asarray(gx, dtype=object))
        for (xs, xv, ys, _), g, gxv in zip(self._views(flow), gys, gxs):
            up = Call("up", (flow.d(ys),))
            bindings = {flow.d(ys): val(g, self.layouts[1])}
            forms = []              # windows overlap (or pad): the shares add up, no elementwise form
            if self.elementwise(xv):
                forms = [self.backward_form(xs, up)]
                bindings.update(self.backward_bindings(xs, xv))
            steps.append(Step(lhs=flow.d(xs), forms=forms, bindings=bindings, result=gxv, layout=self.layouts[1]))
        steps[0].text = self.phrase("backward")
        return steps


@layer
class MaxPool2d(Pool2d):
    kind = "max_pool2d"
    fn_name = "maxpool"

    def pool(self, window):
        best = window.flat[0]
        for v in window.flat:
            if v > best:
                best = v
        return best

    def shares(self, window):
        best = self.pool(window)
        tied = [n for n, v in enumerate(window.flat) if v == best]
        out = zeros(window.shape)
        if self.conventions.maxpool_ties == "split":
            for n in tied:
                out.flat[n] = Exact(1) / len(tied)
        else:
            out.flat[tied[0]] = Exact(1)            # first maximum in row-major order, as PyTorch
        return out

    def backward_form(self, xs, up):
        return Op("odot", (Sym("M", xs.sub, bold=True), up))

    def torch_options(self) -> str | None:
        """PyTorch's max pooling gives a tied window's gradient to its first maximum: no split rule."""
        return "" if self.conventions.maxpool_ties == "first" else None

    def backward_bindings(self, xs, xv):
        return {Sym("M", xs.sub, bold=True): val(self.share_map(xv))}

    def conventions_used(self):
        return [Phrase(f"convention.maxpool_{self.conventions.maxpool_ties}", {})]

    def tied_windows(self, xs: list) -> tuple[int, int]:
        """(windows with more than one maximum, all windows) over the inputs."""
        tied = total = 0
        for x in xs:
            for m in self._maps(x):
                for window in self.window_values(m):
                    best = self.pool(window)
                    total += 1
                    tied += sum(1 for v in window.flat if v == best) > 1
        return tied, total

    def degeneracies(self, xs):
        tied, total = self.tied_windows(xs)
        if not tied:
            return []
        return [Phrase("warning.maxpool_ties", {"layer": self.name, "count": tied, "total": total,
                                                "rule": Phrase(f"convention.maxpool_{self.conventions.maxpool_ties}", {})})]


@layer
class AvgPool2d(Pool2d):
    kind = "avg_pool2d"
    fn_name = "avgpool"
    Params = AvgPool2dParams

    def _divisor(self, window) -> int:
        """The whole kernel (padding counted, PyTorch's default), or the window's entries in the map."""
        return self.size[0] * self.size[1] if self.p.count_include_pad else window.size

    def pool(self, window):
        return window.sum() / self._divisor(window)

    def shares(self, window):
        out = zeros(window.shape)
        out.fill(Exact(1) / self._divisor(window))
        return out

    def torch_options(self) -> str | None:
        return "" if self.p.count_include_pad else ", count_include_pad=False"

    def conventions_used(self):
        if not any(self.pad):
            return []
        return [Phrase(f"convention.avg_pool_pad_{'included' if self.p.count_include_pad else 'excluded'}",
                       {"option": "count_include_pad"})]

    def backward_form(self, xs, up):
        return mul(Frac(Const(1), Const(self.size[0] * self.size[1])), up)

    def backward_bindings(self, xs, xv):
        return {}
