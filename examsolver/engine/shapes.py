"""The input image size, inferred from the layer sizes, and inputs given as sparse tensors.

Exam problems often leave the image size for the student: "two 3×3 kernels,
2×2 max pooling with stride 2, a fully connected layer with 8 inputs — how large
is the image?"  Going backwards from the fully connected layer's width through
flatten (C·H·W), pooling and convolution (n_in = (n_out − 1)·s + k − 2p, the
size whose windows tile the output exactly) gives it, under the padding the
layers state.  Sizes that PyTorch's floor rule also accepts (their last rows
are never used) are listed, and alternative paddings can be compared with the
data: a reading under which a given pixel falls outside the image is rejected.
"""

from __future__ import annotations

import numpy as np

from examsolver.engine.ops.activation import Elementwise
from examsolver.engine.ops.base import val
from examsolver.engine.ops.conv2d import extent_step
from examsolver.engine.scalar import Exact, exact
from examsolver.engine.tensor import zeros
from examsolver.errors import EngineError, SpecError
from examsolver.mathnodes import Frac, Op, Sym, call
from examsolver.solution import Phrase, Step
from examsolver.spec.model import SparseTensor

SEARCH_SPAN = 64        # how far above the exact size the floor-rule alternatives are looked for


def _spatial_chain(layers: list):
    """(layers before flatten that change or keep the size, flatten index, width F, channels C)."""
    chain, channels = [], None
    for i, layer in enumerate(layers):
        if layer.flattens:
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if nxt is None or "W" not in nxt.weights:
                raise EngineError("the input size cannot be inferred: flatten is not followed by a layer with weights W")
            W = nxt.weights["W"]
            width = getattr(nxt, "in_features", W.shape[-1] if W.ndim == 2 else W.shape[0])
            return chain, i, width, channels
        if layer.spatial:
            chain.append(layer)
            channels = layer.out_channels(channels)
        elif not isinstance(layer, Elementwise) and not layer.preserves_shape:
            raise EngineError(f"the input size cannot be inferred through layer {layer.name} ({layer.kind}): "
                              "only conv2d, pooling, elementwise activations and flatten are understood")
    raise EngineError("the input size cannot be inferred: the model has no flatten before a fully connected layer")


def _forward_size(chain, size: int, axis: int, padding) -> int | None:
    for layer in chain:
        size = layer.out_extent(size, axis, padding if layer.padded else None)
        if size < 1:
            return None
    return size


def _inverse(chain, size: int, axis: int, padding) -> tuple[int, list]:
    """The exact-tiling input size and, per layer from the last, (n_out, n_in, (k, s, p))."""
    trail = []
    for layer in reversed(chain):
        n_in, ksp = layer.in_extent(size, axis, padding if layer.padded else None)
        trail.append((layer, size, n_in, ksp))
        size = n_in
    return size, trail


class Inference:
    """The inferred input shape of a model and the steps that derive it."""

    def __init__(self, layers: list, padding: int | None = None):
        self.chain, self.flatten_at, self.width, channels = _spatial_chain(layers)
        first = self.chain[0] if self.chain else None
        self.c_in = (first.input_channels() if first is not None else None) or 1
        self.channels = channels or self.c_in
        self.padding = padding
        if self.width % self.channels:
            raise EngineError(f"the input size cannot be inferred: width {self.width} is not a multiple of "
                              f"the {self.channels} channels")
        area = self.width // self.channels
        side = int(round(area ** 0.5))
        if side * side != area:
            raise EngineError(f"the input size cannot be inferred: {area} = H·W is not a square; give x's shape")
        self.area, self.side = area, side
        self.size = []
        for axis in (0, 1):
            n, trail = _inverse(self.chain, side, axis, padding)
            if n < 1:
                raise EngineError("the input size cannot be inferred: the layers would need an image of size < 1")
            self.size.append(n)
            if axis == 0:
                self.trail = trail
        self.floor_sizes = [n for n in range(self.size[0], self.size[0] + SEARCH_SPAN)
                            if _forward_size(self.chain, n, 0, padding) == side]

    @property
    def shape(self) -> tuple:
        """(H, W), or (C_in, H, W) when the first convolution's kernels name their input channels."""
        first = self.chain[0] if self.chain else None
        if first is not None and first.input_channels() is not None and first.weights["W"].ndim == 4:
            return (self.c_in,) + tuple(self.size)
        return tuple(self.size)

    def steps(self) -> list:
        """F = C·H·W → H = W = √(F/C), then each layer backwards."""
        n = len(self.chain)
        F, C = Sym("F"), Sym("C")
        top = Sym("H", str(n))
        steps = [Step(lhs=Op("mul", (Sym("H", str(n)), Sym("W", str(n)))), forms=[Frac(F, C)],
                      bindings={F: val(self.width), C: val(self.channels)}, result=Exact(self.area),
                      text=Phrase("input_size.flatten", {"width": self.width, "channels": self.channels})),
                 Step(lhs=top, forms=[call("sqrt", Op("mul", (Sym("H", str(n)), Sym("W", str(n)))))],
                      bindings={Op("mul", (Sym("H", str(n)), Sym("W", str(n)))): val(self.area)},
                      result=Exact(self.side), text=Phrase("input_size.square", {}))]
        for j, (layer, n_out, n_in, (k, s, p)) in enumerate(self.trail):
            step = extent_step(Sym("H", str(n - j - 1)), Sym("H", str(n - j)), k, s, p, Exact(n_in))
            step.bindings[Sym("H", str(n - j))] = val(n_out)
            step.text = Phrase("input_size.layer", {"layer": layer.name, "k": k, "s": s, "p": p})
            steps.append(step)
        return steps

    def fits(self, indices: list) -> tuple | None:
        """The first entry index that falls outside the inferred shape, or None."""
        for at in indices:
            if len(at) != len(self.shape) or any(a >= n for a, n in zip(at, self.shape)):
                return tuple(at)
        return None


def _task(spec):
    for t, task in enumerate(getattr(spec, "tasks", [])):
        found = getattr(task, "infer_input_size", None)
        if found is not None:
            return t, found
    return None, None


def materialize(x: SparseTensor, shape: tuple) -> np.ndarray:
    out = zeros(shape)
    for entry in x.entries:
        if len(entry.at) != len(shape) or any(a >= n for a, n in zip(entry.at, shape)):
            raise EngineError(f"entry at {tuple(entry.at)} lies outside the input of shape {tuple(shape)}")
        out[tuple(entry.at)] = exact(entry.value)
    return out


def prepare_inputs(spec, net, solution) -> None:
    """Infer the input size when asked (or needed), add its section, and build sparse inputs."""
    t, task = _task(spec)
    sparse = [m for m, x in enumerate(net.xs) if isinstance(x, SparseTensor)]
    needs = [m for m in sparse if net.xs[m].shape == "infer"]
    if task is None and not needs:
        for m in sparse:
            with net.located(_data_loc(net, m)):
                net.xs[m] = materialize(net.xs[m], tuple(net.xs[m].shape))
        return
    loc = ("tasks", t) if task is not None else _data_loc(net, needs[0])
    with net.located(loc):
        inference = Inference(net.layers)
    section = solution.section("section.input_size")
    for step in inference.steps():
        section.add(step)
    shape = inference.shape
    section.add(Phrase("input_size.result", {"shape": " × ".join(str(s) for s in shape)}))
    if len(inference.floor_sizes) > 1:
        section.add(Phrase("input_size.floor", {"sizes": ", ".join(str(s) for s in inference.floor_sizes),
                                                "size": inference.size[0]}))
    given = [list(e.at) for m in sparse for e in net.xs[m].entries]
    for p in (task.also_padding if task is not None else []):
        with net.located(loc):
            other = Inference(net.layers, padding=p)
        outside = other.fits(given)
        key = "input_size.alternative_outside" if outside else "input_size.alternative_fits"
        section.add(Phrase(key, {"p": p, "shape": " × ".join(str(s) for s in other.shape),
                                 "at": ", ".join(str(a) for a in outside) if outside else ""}))
    solution.results["input_shape"] = np.array([Exact(s) for s in shape], dtype=object)
    for m, x in enumerate(net.xs):
        with net.located(_data_loc(net, m)):
            if isinstance(x, SparseTensor):
                net.xs[m] = materialize(x, shape if x.shape == "infer" else tuple(x.shape))
            elif tuple(x.shape) != shape:
                raise SpecError([net.doc.problem(_data_loc(net, m) + ("x",), f"x has shape {tuple(x.shape)}, "
                                                 f"but the layers imply {tuple(shape)}")])


def _data_loc(net, m: int) -> tuple:
    return ("data",) + ((m,) if net.batched else ())
