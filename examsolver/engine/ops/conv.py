"""1D convolution with several kernels, stride, zero padding, dilation, groups and optional bias.

As in PyTorch the layer computes a cross-correlation (x ⋆ w); the convention
`convolution: convolution` flips the kernels first (true convolution).  The
window walk (`correlate`, `correlate_vjp`) is shared with conv2d: output map k
reads the input channels of its group only, and a kernel with dilation d reads
every d-th entry (it is the kernel dil_d(w) with d − 1 zeros between its taps).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from examsolver.engine.ops.base import Flow, Layer, NoParams, channels, layer, val
from examsolver.engine.tensor import zeros
from examsolver.errors import EngineError
from examsolver.mathnodes import Call, Const, Op, Sum, Sym
from examsolver.solution import Phrase, Step
from examsolver.spec.model import Tensor


class Conv1dParams(NoParams):
    W: Tensor = Field(alias="kernels")
    b: Tensor | None = None
    stride: int = Field(1, ge=1, le=1000)
    padding: int = Field(0, ge=0, le=1000)
    dilation: int = Field(1, ge=1, le=1000)
    groups: int = Field(1, ge=1, le=1000)

    model_config = {**NoParams.model_config, "populate_by_name": True}


def span(k: int, d: int) -> int:
    """The extent a kernel of k taps with dilation d covers: d(k − 1) + 1."""
    return d * (k - 1) + 1


def dilate(array: np.ndarray, factors: tuple) -> np.ndarray:
    """factor − 1 zeros between neighbouring entries along the last len(factors) axes."""
    lead = array.ndim - len(factors)
    shape = array.shape[:lead] + tuple((n - 1) * f + 1 for n, f in zip(array.shape[lead:], factors))
    out = zeros(shape)
    out[(Ellipsis,) + tuple(slice(None, None, f) for f in factors)] = array
    return out


def pad(X: np.ndarray, p: tuple) -> np.ndarray:
    """Zero padding of the spatial axes (all but the first) of a channels-first tensor."""
    if not any(p):
        return X
    out = zeros((X.shape[0],) + tuple(n + 2 * q for n, q in zip(X.shape[1:], p)))
    out[(slice(None),) + tuple(slice(q, q + n) for n, q in zip(X.shape[1:], p))] = X
    return out


def window_slices(pos: tuple, taps: tuple, stride: tuple, dilation: tuple) -> tuple:
    return tuple(slice(i * s, i * s + span(k, d), d) for i, k, s, d in zip(pos, taps, stride, dilation))


def correlate(Xp, K, stride: tuple, dilation: tuple, groups: int) -> np.ndarray:
    """y[k, pos] = Σ over the channels of k's group and the taps j of Xp[c, pos·s + j·d] K[k, c, j]
    (PyTorch's convolution on an already padded input, computed exactly)."""
    c_out, per_group, taps = K.shape[0], K.shape[1], K.shape[2:]
    out_shape = tuple((n - span(k, d)) // s + 1 for n, k, s, d in zip(Xp.shape[1:], taps, stride, dilation))
    y = zeros((c_out,) + out_shape)
    for k in range(c_out):
        rows = group_channels(k, c_out, per_group, groups)
        for pos in np.ndindex(*out_shape):
            y[(k,) + pos] = (Xp[(rows,) + window_slices(pos, taps, stride, dilation)] * K[k]).sum()
    return y


def correlate_vjp(Xp, K, gy, stride: tuple, dilation: tuple, groups: int) -> tuple:
    """(∂L/∂K, ∂L/∂Xp) of `correlate` for the upstream gradient gy."""
    c_out, per_group, taps = K.shape[0], K.shape[1], K.shape[2:]
    gK, gXp = zeros(K.shape), zeros(Xp.shape)
    for k in range(c_out):
        rows = group_channels(k, c_out, per_group, groups)
        for pos in np.ndindex(*gy.shape[1:]):
            g = gy[(k,) + pos]
            if g.sign() == 0:
                continue
            index = (rows,) + window_slices(pos, taps, stride, dilation)
            gK[k] = gK[k] + g * Xp[index]                 # ∂L/∂w_k = x ⋆ ∂L/∂h_k
            gXp[index] = gXp[index] + g * K[k]
    return gK, gXp


def _per_axis(value, dims: int, what: str, least: int = 1) -> tuple:
    """One number for every spatial axis, or one per axis (PyTorch accepts both); whole numbers ≥ least."""
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,) * dims
    if len(values) != dims or not all(isinstance(v, int) and not isinstance(v, bool) and v >= least for v in values):
        raise EngineError(f"{what} needs one whole number ≥ {least} or {dims} of them, got {value}")
    return values


def pair(value, what: str) -> tuple[int, int]:
    """An int or [a, b] as (a, b); the spec may give either, as PyTorch does."""
    if isinstance(value, int):
        return value, value
    if len(value) != 2:
        raise EngineError(f"{what} must be one number or two ([height, width]), got {value}")
    return int(value[0]), int(value[1])


def group_channels(k: int, c_out: int, per_group: int, groups: int) -> slice:
    """The input channels output map k reads: those of its group (all of them when groups = 1)."""
    g = k // (c_out // groups)
    return slice(g * per_group, (g + 1) * per_group)


class Convolution(Layer):
    """What 1D and 2D convolutions share: kernel names and values, stride, padding, dilation and groups,
    the window walk and the stated convention."""

    spatial_dims: int = 1      # kernels given without an input-channel axis have spatial_dims + 1 axes
    weight_aliases = {"W": ("kernels",)}
    count_options = ("stride", "padding", "dilation", "groups", "input_size")    # counting: no sizes to probe
    _taps_text = "k"           # the kernel's axes, as the error message names them

    def init_weights(self) -> dict:
        W = self.p.W
        n = self.spatial_dims
        if W.ndim not in (n + 1, n + 2):
            raise EngineError(f"{self.name}: kernels must be a list of {n}D kernels (C_out, {self._taps_text}) or "
                              f"(C_out, C_in/groups, {self._taps_text}), got shape {W.shape}")
        self.stride, self.padding, self.dilation = (self._tuple(name) for name in ("stride", "padding", "dilation"))
        if min(self.stride + self.dilation) < 1 or min(self.padding) < 0 or \
                max(self.stride + self.padding + self.dilation) > 1000:
            raise EngineError(f"{self.name}: stride and dilation must be ≥ 1, padding ≥ 0 (and all ≤ 1000)")
        self.groups = self.p.groups
        if W.shape[0] % self.groups:
            raise EngineError(f"{self.name}: {W.shape[0]} kernels cannot be split into groups={self.groups} "
                              f"(out_channels must be divisible by groups)")
        if self.p.b is None:
            return {"W": W}
        b = self.p.b.reshape(-1)
        if b.shape != (W.shape[0],):
            raise EngineError(f"{self.name}: b has {b.size} entries, expected one per kernel ({W.shape[0]})")
        return {"W": W, "b": b}

    def _tuple(self, name: str) -> tuple:
        return (getattr(self.p, name),)

    @classmethod
    def param_shapes(cls, sizes: dict) -> dict[str, tuple[int, ...]]:
        """W is c_out × c_in/groups × k (× k) (PyTorch's layout); b unless `bias: false`."""
        c_out, c_in, groups = sizes["out_channels"], sizes.get("in_channels", 1), sizes.get("groups", 1)
        if not (isinstance(groups, int) and not isinstance(groups, bool) and groups >= 1):
            raise EngineError(f"groups must be a whole number ≥ 1, got {groups}")
        if groups != 1 and (c_in % groups or c_out % groups):
            raise EngineError(f"in_channels ({c_in}) and out_channels ({c_out}) must be divisible by groups ({groups})")
        taps = (sizes["kernel_size"],) if cls.spatial_dims == 1 else pair(sizes["kernel_size"], "kernel_size")
        shapes = {"W": (c_out, c_in // groups if groups != 1 else c_in) + tuple(taps)}
        if sizes.get("bias", True):
            shapes["b"] = (c_out,)
        return shapes

    @classmethod
    def window(cls, sizes: dict) -> tuple:
        """A dilated kernel spans d(k − 1) + 1 positions per axis, moved by the stride."""
        def axes(key, default):
            return _per_axis(sizes.get(key, default), cls.spatial_dims, key)
        return tuple((span(k, d), s) for k, d, s in zip(axes("kernel_size", None), axes("dilation", 1),
                                                         axes("stride", 1)))

    @classmethod
    def io_shapes(cls, sizes: dict) -> dict:
        """With `input_size` (a length, or H and W): the input and output shapes by PyTorch's rule
        ⌊(n + 2p − d(k − 1) − 1)/s⌋ + 1 per spatial axis."""
        if sizes.get("input_size") is None:
            return {}
        def axes(key, default, least=1):
            return _per_axis(sizes.get(key, default), cls.spatial_dims, key, least)
        extent, taps = axes("input_size", None), axes("kernel_size", None)
        stride, padding, dilation = axes("stride", 1), axes("padding", 0, 0), axes("dilation", 1)
        out = tuple((n + 2 * p - span(k, d)) // s + 1 for n, k, s, p, d in zip(extent, taps, stride, padding, dilation))
        if min(out) < 1:
            raise EngineError(f"the input {'×'.join(map(str, extent))} is smaller than the (dilated) kernel")
        return {"x": (sizes.get("in_channels", 1),) + extent, "h": (sizes["out_channels"],) + out}

    def conventions_used(self):
        layout = [Phrase("convention.kernels_in_out", {})] if self.conventions.weights == "in_out" else []
        return [Phrase(f"convention.{self.conventions.convolution}", {})] + layout

    def input_channels(self) -> int | None:
        return self.kernels.shape[1] * self.groups

    @property
    def kernels(self) -> np.ndarray:
        """(C_out, C_in/groups, taps…), flipped for a true convolution."""
        W = self.weights["W"]
        full = W.reshape((W.shape[0], 1) + W.shape[1:]) if W.ndim == self.spatial_dims + 1 else W
        if self.conventions.convolution == "convolution":
            return full[(Ellipsis,) + (slice(None, None, -1),) * self.spatial_dims]
        return full

    def _torch_options(self) -> str:
        """PyTorch's keyword arguments, the defaults left out."""
        one = lambda t: t[0] if len(set(t)) == 1 else t     # (2, 2) → 2, as PyTorch accepts
        out = f"stride={one(self.stride)}, padding={one(self.padding)}"
        if max(self.dilation) > 1:
            out += f", dilation={one(self.dilation)}"
        if self.groups > 1:
            out += f", groups={self.groups}"
        return out

    def options_phrase(self):
        """", dilation 2, 2 groups …" for the layer's sentence; "" when both are PyTorch's default 1."""
        d, g = max(self.dilation) > 1, self.groups > 1
        if not (d or g):
            return ""
        key = "conv.dilation_groups" if d and g else "conv.dilation" if d else "conv.groups"
        return Phrase(key, {"d": "×".join(map(str, self.dilation)), "g": self.groups, "c": self.kernels.shape[1]})

    def torch(self, x, weights):
        """F.conv1d / F.conv2d on the batch, the kernels reshaped to PyTorch's layout (flipped for a true
        convolution); a single sequence or image per example gets its channel axis."""
        K = self.kernels
        shape = ", ".join(str(n) for n in K.shape)
        kernels = f"{weights['W']}.reshape({shape})"
        if self.conventions.convolution == "convolution":
            kernels += f".flip({', '.join(str(-a) for a in range(1, self.spatial_dims + 1))})"
        c_in = K.shape[1] * self.groups
        spatial = ", ".join(["-1"] + [f"{x}.shape[-{a}]" for a in range(self.spatial_dims - 1, 0, -1)])
        return (f"F.conv{self.spatial_dims}d({x}.reshape({x}.shape[0], {c_in}, {spatial}), {kernels}, "
                f"{weights.get('b', 'None')}, {self._torch_options()})")

    # forward and VJP, side by side (on channels-first tensors; _as_channels adds a lone channel axis)
    def forward_one(self, x):
        y = correlate(pad(self._as_channels(x), self.padding), self.kernels, self.stride, self.dilation, self.groups)
        if "b" in self.weights:
            y = y + self.weights["b"].reshape((-1,) + (1,) * self.spatial_dims)
        return y

    def vjp_one(self, x, y, gy):
        gK, gXp = correlate_vjp(pad(self._as_channels(x), self.padding), self.kernels, gy, self.stride,
                                self.dilation, self.groups)
        if self.conventions.convolution == "convolution":
            gK = gK[(Ellipsis,) + (slice(None, None, -1),) * self.spatial_dims]
        gx = gXp[(slice(None),) + tuple(slice(p, n - p) for p, n in zip(self.padding, gXp.shape[1:]))]
        grads = {"W": gK.reshape(self.weights["W"].shape)}
        if "b" in self.weights:
            grads["b"] = np.array([gy[k].sum() for k in range(gy.shape[0])], dtype=object)
        return gx.reshape(x.shape), grads

    def _check_channels(self, X) -> None:
        c_in = self.kernels.shape[1] * self.groups
        if X.shape[0] != c_in:
            groups = f" ({self.groups} groups of {self.kernels.shape[1]})" if self.groups > 1 else ""
            raise EngineError(f"{self.name}: input has {X.shape[0]} channel(s), the kernels expect {c_in}{groups}")
        extents = [span(k, d) for k, d in zip(self.kernels.shape[2:], self.dilation)]
        if any(n + 2 * p < e for n, p, e in zip(X.shape[1:], self.padding, extents)):
            raise EngineError(f"{self.name}: input {'×'.join(map(str, X.shape[1:]))} is smaller than the "
                              f"(dilated) kernel {'×'.join(map(str, extents))}")

    # formulas
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

    def _kernel_node(self, k: int, c: int | None):
        """(node, value) of kernel k's channel c as the correlation reads it: dil(w) with dilation > 1."""
        w, value = self.kernel_sym(k, c), self._kernel_value(k, c or 0)
        if max(self.dilation) == 1:
            return w, value
        return Call("dil", (w,)), dilate(value, self.dilation)

    def _group_inputs(self, k: int, views: list) -> list:
        """[(kernel channel index or None, (symbol, value))] of the input channels map k reads."""
        per_group = self.kernels.shape[1]
        rows = group_channels(k, self.kernels.shape[0], per_group, self.groups)
        single = per_group == 1 and self.weights["W"].ndim == self.spatial_dims + 1
        return [(None if single else j, view) for j, view in enumerate(views[rows])]

    def _upstream(self, g, G):
        """∂L/∂h of one map as the backward correlations read it: with stride s, dilated by s (s − 1 zeros
        between entries), so that x ⋆ dil(∂L/∂h) and dil(∂L/∂h) ∗ w are plain correlations/convolutions."""
        if max(self.stride) == 1:
            return g, G
        return Call("dil", (g,)), dilate(G, self.stride)

    def _used(self, xv, gy_map):
        """The part of a padded input the windows read (PyTorch's floor rule may leave a last row unread)."""
        ends = [(m - 1) * s + span(k, d) for m, s, k, d in
                zip(gy_map.shape, self.stride, self.kernels.shape[2:], self.dilation)]
        return xv[tuple(slice(0, e) for e in ends)]

    def kernel_gradient_steps(self, flow: Flow, g, G, w: Sym, xs, xv, value, layout: str) -> list:
        """∂L/∂w = x ⋆ dil(∂L/∂h) for one kernel channel; with dilation d that correlation is ∂L/∂dil(w),
        whose every d-th entry (the kernel's taps) is ∂L/∂w."""
        xv = self._used(xv, G)
        g, G = self._upstream(g, G)
        form = Op("star", (xs, g))
        bindings = {xs: val(xv, layout), g: val(G, layout)}
        if max(self.dilation) == 1:
            return [Step(lhs=flow.d(w), forms=[form], bindings=bindings, result=value, layout=layout)]
        one = (1,) * self.spatial_dims
        full = correlate(xv.reshape((1,) + xv.shape), G.reshape((1, 1) + G.shape), one, one, 1)[0]
        return [Step(lhs=flow.d(Call("dil", (w,))), forms=[form], bindings=bindings, result=full, layout=layout),
                Step(lhs=flow.d(w), forms=[], result=value, layout=layout,
                     text=Phrase("conv.dilated_taps", {"d": "×".join(map(str, self.dilation))}))]

    def input_gradient_form(self, flow: Flow, gy, map_sym, single: bool, layout: str = "col"):
        """∂L/∂x = crop(Σ_k dil(∂L/∂h_k) ∗ dil(w_k)): each map's gradient convolved (in full) with its kernel,
        with every number written in when the input has one channel."""
        terms, bindings = [], {}
        for k in range(gy.shape[0]):
            g, G = self._upstream(flow.d(map_sym(k)), gy[k])
            w, value = self._kernel_node(k, None)
            terms.append(Op("fullconv", (g, w)))
            if single:
                bindings.update({g: val(G, layout), w: val(value, layout)})
        form = Op("+", tuple(terms)) if len(terms) > 1 else terms[0]
        if any(self.padding):              # the padded border's gradient is dropped
            form = Call("crop", (form,))
        return form, bindings


@layer
class Conv1d(Convolution):
    kind = "conv1d"
    Params = Conv1dParams

    def _as_channels(self, x):
        return x.reshape(1, -1) if x.ndim == 1 else x

    def check_input(self, x):
        if x.ndim not in (1, 2):
            raise EngineError(f"{self.name}: input has shape {x.shape}, expected a sequence (or C × L channels)")
        self._check_channels(self._as_channels(x))

    def _views(self, flow: Flow) -> list:
        """[(symbol, padded channel)]: x itself for a single sequence."""
        padded = pad(self._as_channels(flow.x), self.padding)
        if flow.x.ndim == 1:
            return [(flow.x_sym, padded[0])]
        return [(sym, padded[c]) for c, (sym, _) in enumerate(channels(flow.x_sym, flow.x))]

    def phrase(self, direction: str) -> Phrase:
        """Stride and padding are named once dilation or groups are (the 2022 slides' sentence otherwise)."""
        more = self.options_phrase()
        details = Phrase("conv1d.options", {"s": self.stride[0], "p": self.padding[0], "more": more}) if more else ""
        return Phrase(f"{direction}.{self.kind}", {"layer": self.name, "details": details})

    # formulas
    def forward_steps(self, flow: Flow) -> list:
        views = self._views(flow)
        steps = []
        for k, (ys, yv) in enumerate(channels(flow.y_sym, flow.y)):
            terms, bindings = [], {}
            for c, (xs, xv) in self._group_inputs(k, views):
                w, value = self._kernel_node(k, c)
                terms.append(Op("star", (xs, w)))
                bindings[xs] = val(xv, "colT")
                bindings[w] = val(value, "colT")
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
        views = self._views(flow)
        y_views = channels(flow.y_sym, flow.y)
        if "W" in grads:
            gW = grads["W"]
            for k, (ys, _) in enumerate(y_views):
                for c, (xs, xv) in self._group_inputs(k, views):
                    value = gW[k] if c is None else gW[k, c]
                    steps += self.kernel_gradient_steps(flow, flow.d(ys), gy[k], self.kernel_sym(k, c), xs, xv,
                                                        value, "row")
        if "b" in grads:
            for k, (ys, _) in enumerate(y_views):
                g = flow.d(ys)
                b = Sym("b", f"{self.number}{k + 1}")
                steps.append(Step(lhs=flow.d(b), forms=[Sum("t", Const(1), Const(gy.shape[1]), g)],
                                  bindings={g: val(gy[k], "row")}, result=grads["b"][k]))
        if want_input:
            form, bindings = self.input_gradient_form(flow, gy, lambda k: y_views[k][0], len(views) == 1, "row")
            steps.append(Step(lhs=flow.d(flow.x_sym), forms=[form], bindings=bindings, result=gx, layout="row"))
        if steps:
            steps[0].text = self.phrase("backward")
        return steps
