"""Every registered layer and loss checked against PyTorch autograd (float64).

The engine computes exactly on random small-denominator fractions; PyTorch
computes the same function in float64 and differentiates it by autograd.  The
tests are parametrized over the registries (LAYERS, LOSSES): a registered kind
with no oracle below fails with "add an oracle for <kind>", so no op escapes.

An oracle is a PyTorch builder `fn(layer, X, w) -> Y` on a batch X of shape
(N, *example shape) with the layer's weights `w` (torch tensors keyed like
`layer.weights`), plus a few spec-parameter cases.  Random values are distinct
and non-zero, so no ReLU sits at 0 and no max-pool window has a tie unless a
case asks for it (the conventions cases).
"""

from __future__ import annotations

import random
import runpy
import zlib
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from examsolver.engine.network import Network
from examsolver.engine.ops import LAYERS, LOSSES
from examsolver.pipeline import parse_spec, solve_file
from examsolver.engine.tensor import tensor, to_float
from examsolver.errors import EngineError
from examsolver.solution import Solution
from examsolver.spec.load import load_file
from examsolver.spec.model import Conventions

from conftest import PROBLEMS, ROOT

RTOL, ATOL = 1e-9, 1e-12
SEEDS = (1, 2, 3)


@pytest.fixture(autouse=True)
def float64_default():
    """torch computes in float64 here; the global default is restored for other modules."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


# ----- random exact values ------------------------------------------------------------
def random_fractions(rng: random.Random, count: int, *, zeros: bool = False, positive: bool = False,
                     lo: int = -12, hi: int = 12, dens=(1, 2, 3, 4, 5, 6, 8)) -> list:
    """Distinct small-denominator fractions (no zeros unless asked: no ties at ReLU 0 or in max-pool)."""
    out, seen = [], set()
    while len(out) < count:
        q = Fraction(rng.randint(1 if positive else lo, hi), rng.choice(dens))
        if q in seen or (q == 0 and not zeros):
            continue
        seen.add(q)
        out.append(q)
    if zeros and count >= 2:
        for i in rng.sample(range(count), max(1, count // 3)):
            out[i] = Fraction(0)
    return out


def random_array(rng, shape, **kw) -> np.ndarray:
    """Object array of Fractions with the given shape."""
    values = random_fractions(rng, int(np.prod(shape, dtype=int)), **kw)
    out = np.empty(shape, dtype=object)
    for index, q in zip(np.ndindex(*shape), values):
        out[index] = q
    return out


def random_indices(rng, shape, count: int) -> np.ndarray:
    """Integers in [0, count), repeats likely (a row used twice gets two gradients)."""
    return tensor(np.array([rng.randrange(count) for _ in range(int(np.prod(shape, dtype=int)))],
                           dtype=object).reshape(shape))


def exact_array(rng, shape, ints: int = 0, **kw) -> np.ndarray:
    if ints:
        return tensor(np.array([rng.randint(-ints, ints) for _ in range(int(np.prod(shape, dtype=int)))],
                               dtype=object).reshape(shape))
    return tensor(random_array(rng, shape, **kw))


@dataclass(frozen=True)
class Rand:
    """A random spec tensor of this shape (filled per seed), written as '3/4' strings."""

    shape: tuple
    positive: bool = False

    def fill(self, rng):
        array = random_array(rng, self.shape, positive=self.positive)
        return np.vectorize(str, otypes=[object])(array).tolist() if array.ndim else str(array[()])


def fill_params(params: dict, rng) -> dict:
    return {k: v.fill(rng) if isinstance(v, Rand) else v for k, v in params.items()}


def as_torch(array, grad: bool = False) -> torch.Tensor:
    return torch.tensor(to_float(array), dtype=torch.float64, requires_grad=grad)


def close(engine_value, torch_value, what: str) -> None:
    expected = torch_value.detach().numpy() if isinstance(torch_value, torch.Tensor) else torch_value
    actual = np.asarray(to_float(engine_value), dtype=float)
    assert actual.shape == np.shape(expected), f"{what}: shape {actual.shape}, torch {np.shape(expected)}"
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, err_msg=what)


# ----- layer oracles ------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    id: str
    x: tuple                       # one example's shape
    params: dict = field(default_factory=dict)
    batch: int = 2
    conventions: dict = field(default_factory=dict)
    zeros: bool = False            # put exact zeros in the input (convention cases)
    positive: bool = False         # strictly positive inputs
    ints: int = 0                  # draw integers in [-ints, ints] instead (ties on purpose)
    indices: int = 0               # draw indices in [0, indices) instead (embedding rows)
    forward_only: str = ""         # the engine refuses the VJP with an EngineError for this reason
    seeds: tuple = SEEDS           # fewer draws where exact values nest (tanh of tanh …) and get slow


def per_example(fn):
    """A builder for an op defined on one example: applied row by row."""
    return lambda layer, X, w: torch.stack([fn(layer, x, w) for x in X])


def t_linear(layer, X, w):
    out = X @ (w["W"].T if w["W"].dim() == 2 else w["W"])
    return out + w["b"] if "b" in w else out          # no b given: nn.Linear(bias=False)


def t_conv1d(layer, X, w):
    K = w["W"] if w["W"].dim() == 3 else w["W"].unsqueeze(1)
    if layer.conventions.convolution == "convolution":
        K = K.flip(-1)        # a true convolution is torch's cross-correlation with the flipped kernel
    Xc = X.unsqueeze(1) if X.dim() == 2 else X
    return F.conv1d(Xc, K, w.get("b"), stride=layer.p.stride, padding=layer.p.padding, dilation=layer.p.dilation,
                    groups=layer.p.groups)


def t_conv2d(layer, X, w):
    K = w["W"] if w["W"].dim() == 4 else w["W"].unsqueeze(1)
    if layer.conventions.convolution == "convolution":
        K = K.flip(-2, -1)
    Xc = X.unsqueeze(1) if X.dim() == 3 else X
    return F.conv2d(Xc, K, w.get("b"), stride=layer.p.stride, padding=layer.p.padding, dilation=layer.p.dilation,
                    groups=layer.p.groups)


def _maps(fn):
    """Run a (N, C, H, W) torch op on (N, H, W) too (one map per example, as the engine allows)."""
    def run(layer, X, w):
        return fn(layer, X.unsqueeze(1)).squeeze(1) if X.dim() == 3 else fn(layer, X)
    return run


def _max_pool_split(layer, X):
    """Max pooling whose window gradient is shared equally among tied maxima (overlaps add up)."""
    N, C, H, W = X.shape
    (kh, kw), (sh, sw) = layer.size, layer.stride
    cols = F.unfold(X.reshape(N * C, 1, H, W), (kh, kw), stride=(sh, sw))   # (N·C, kh·kw, L)
    mask = (cols == cols.max(dim=1, keepdim=True).values).to(X.dtype)
    mask = (mask / mask.sum(dim=1, keepdim=True)).detach()
    out = (cols * mask).sum(dim=1)
    return out.reshape(N, C, (H - kh) // sh + 1, (W - kw) // sw + 1)


def t_max_pool2d(layer, X):
    if layer.conventions.maxpool_ties == "split":
        return _max_pool_split(layer, X)
    return F.max_pool2d(X, layer.size, layer.stride, layer.pad)      # CPU: first maximum in row-major order


def t_avg_pool2d(layer, X):
    return F.avg_pool2d(X, layer.size, layer.stride, layer.pad, count_include_pad=layer.p.count_include_pad)


def _sequences(fn):
    """Run a (N, C, L) torch op on (N, L) too (one sequence per example)."""
    def run(layer, X, w):
        return fn(layer, X.unsqueeze(1)).squeeze(1) if X.dim() == 2 else fn(layer, X)
    return run


def t_max_pool1d(layer, X):
    """CPU max pooling takes a window's first maximum; the split rule is written out window by window
    (padding is −∞, as in PyTorch: it never wins)."""
    if layer.conventions.maxpool_ties == "first":
        return F.max_pool1d(X, layer.size, layer.stride, layer.pad)
    Xp = F.pad(X, (layer.pad, layer.pad), value=float("-inf"))
    outs = []
    for t in range((Xp.shape[-1] - layer.size) // layer.stride + 1):
        window = Xp[..., t * layer.stride:t * layer.stride + layer.size]
        mask = (window == window.max(dim=-1, keepdim=True).values).to(X.dtype)
        mask = (mask / mask.sum(dim=-1, keepdim=True)).detach()
        outs.append((torch.where(mask > 0, window, torch.zeros_like(window)) * mask).sum(dim=-1))
    return torch.stack(outs, dim=-1)


def t_avg_pool1d(layer, X):
    return F.avg_pool1d(X, layer.size, layer.stride, layer.pad, count_include_pad=layer.p.count_include_pad)


def t_attention(layer, X, w):
    """torch's scaled_dot_product_attention after nn.Linear projections (a missing one: X itself)."""
    def project(role):
        W = w.get(f"W_{role}")
        return X if W is None else F.linear(X, W, w.get(f"b_{role}"))
    mask = torch.tensor(layer.p.mask) if layer.p.mask is not None else None
    scale = None if layer.p.scale is None else float(layer.p.scale)
    return F.scaled_dot_product_attention(project("q"), project("k"), project("v"), attn_mask=mask,
                                          is_causal=layer.p.is_causal, scale=scale)


def t_flatten(layer, X, w):
    if X.dim() == 4 and layer.conventions.flatten == "channel_last":
        X = X.permute(0, 2, 3, 1)
    return X.reshape(X.shape[0], -1)


def _sequence(X, d):
    return X.unsqueeze(-1) if X.dim() == 2 and d == 1 else X         # (N, T) → (N, T, 1)


def t_rnn(layer, X, w):
    """h(t) = f(W_hh h(t−1) + W_xh x(t) + b_h), written out; autograd does the backpropagation through time."""
    f = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda v: v}[layer.p.activation]
    X = _sequence(X, w["W_xh"].shape[1])
    h = as_torch(layer.h0).expand(X.shape[0], -1)
    out = []
    for t in range(X.shape[1]):
        h = f(h @ w["W_hh"].T + X[:, t] @ w["W_xh"].T + w.get("b_h", 0))       # no b_h given: none
        out.append(h)
    return torch.stack(out, dim=1)


def t_gated(module_cls):
    """PyTorch's own LSTM / GRU with the layer's weights (checks gate order and equations)."""
    def run(layer, X, w):
        H, d = w["W_hh"].shape[1], w["W_ih"].shape[1]
        module = module_cls(d, H, batch_first=True).double()
        params = {"weight_ih_l0": w["W_ih"], "weight_hh_l0": w["W_hh"], "bias_ih_l0": w["b_ih"],
                  "bias_hh_l0": w["b_hh"]}
        h0 = as_torch(layer.h0).reshape(1, 1, H).expand(1, X.shape[0], H).contiguous()
        state = (h0, as_torch(layer.c0).reshape(1, 1, H).expand(1, X.shape[0], H).contiguous()) \
            if hasattr(layer, "c0") else h0
        out, _ = torch.func.functional_call(module, params, (_sequence(X, d), state))
        return out
    return run


def t_relu(layer, X, w):
    c = float(layer.conventions.relu_grad_at_zero)
    at_zero = (X == 0).to(X.dtype)
    # torch's relu has derivative 0 at 0; the convention's value c is added there (value unchanged)
    return torch.relu(X) + c * at_zero * (X - X.detach())


def t_global_avg_pool(layer, X, w):
    dims = tuple(range(1, X.dim())) if X.dim() == 2 else tuple(range(2, X.dim()))
    return X.mean(dim=dims)


def t_batchnorm(layer, X, w):
    eps = float(layer.p.eps)
    if not layer.p.training:        # evaluation: the running statistics (PyTorch's 0 and 1 unless given)
        C = X.shape[1]
        mean = as_torch(layer.p.running_mean.reshape(-1)) if layer.p.running_mean is not None else torch.zeros(C)
        var = as_torch(layer.p.running_var.reshape(-1)) if layer.p.running_var is not None else torch.ones(C)
        return F.batch_norm(X, mean, var, w.get("gamma"), w.get("beta"), training=False, eps=eps)
    constants = layer.conventions.batchnorm_backward == "constants"
    gamma, beta = w.get("gamma"), w.get("beta")
    if layer.p.variance == "biased" and not constants and eps > 0:
        # torch's own batch_norm in training mode normalises with the biased variance (it refuses eps 0)
        return F.batch_norm(X, None, None, gamma, beta, training=True, momentum=0.0, eps=eps)
    axes = (0,) + tuple(range(2, X.dim()))
    mu = X.mean(dim=axes, keepdim=True)
    var = X.var(dim=axes, correction=1 if layer.p.variance == "unbiased" else 0, keepdim=True)
    if constants:
        mu, var = mu.detach(), var.detach()
    H = (X - mu) / torch.sqrt(var + eps)
    shape = (1, -1) + (1,) * (X.dim() - 2)
    if gamma is not None:
        H = H * gamma.view(shape)
    if beta is not None:
        H = H + beta.view(shape)
    return H


def t_dropout(layer, X, w):
    """PyTorch's inverted dropout with the layer's mask (torch.nn.Dropout draws it at random; the
    mask test below takes torch's own draw); the textbook form scales at inference instead."""
    p, inverted = float(layer.p.p), layer.conventions.dropout == "inverted"
    if not layer.p.train:
        return F.dropout(X, p, training=False) if inverted else X * (1 - p)
    mask = as_torch(layer.p.mask)
    return X * mask / (1 - p) if inverted else X * mask


def t_global_max_pool(layer, X, w):
    """Adaptive max pooling to 1 (CPU: the first maximum); amax shares the gradient among ties."""
    if layer.conventions.maxpool_ties == "split":
        return X.amax(dim=-1) if X.dim() == 2 else X.flatten(2).amax(dim=-1)
    if X.dim() == 2:
        return F.adaptive_max_pool1d(X.unsqueeze(1), 1).flatten()
    if X.dim() == 4:
        return F.adaptive_max_pool2d(X, 1).flatten(1)
    return F.adaptive_max_pool1d(X, 1).flatten(1)


ELEMENTWISE_SHAPES = [Case("scalar", ()), Case("vector", (5,)), Case("channels", (2, 4)),
                      Case("maps", (2, 2, 3), batch=1)]

LAYER_ORACLES: dict = {
    "linear": (t_linear, [
        Case("matrix", (4,), {"W": Rand((3, 4)), "b": Rand((3,))}),
        Case("matrix_no_b", (3,), {"W": Rand((2, 3))}, batch=3),
        Case("row", (4,), {"W": Rand((4,)), "b": Rand(())}),
        Case("row_no_b", (2,), {"W": Rand((2,))}, batch=1),
    ]),
    "conv1d": (t_conv1d, [
        Case("basic", (7,), {"kernels": Rand((2, 3))}),
        Case("stride_pad_bias", (8,), {"kernels": Rand((3, 2)), "b": Rand((3,)), "stride": 2, "padding": 1}),
        Case("multichannel", (3, 9), {"kernels": Rand((2, 3, 3)), "b": Rand((2,)), "stride": 2, "padding": 2}),
        Case("one_channel_3d", (1, 6), {"kernels": Rand((2, 1, 3))}, batch=1),
        Case("flipped", (9,), {"kernels": Rand((2, 4)), "b": Rand((2,)), "stride": 3},
             conventions={"convolution": "convolution"}),
        Case("flipped_multichannel", (2, 7), {"kernels": Rand((3, 2, 3)), "padding": 1},
             conventions={"convolution": "convolution"}),
        Case("dilation", (9,), {"kernels": Rand((2, 3)), "dilation": 2}),
        Case("dilation_stride_pad", (2, 11), {"kernels": Rand((3, 2, 3)), "b": Rand((3,)), "stride": 2,
                                               "padding": 2, "dilation": 3}),
        Case("groups", (4, 7), {"kernels": Rand((4, 2, 3)), "b": Rand((4,)), "groups": 2}),
        Case("depthwise", (3, 8), {"kernels": Rand((3, 2)), "groups": 3, "stride": 2}, batch=3),
        Case("depthwise_multiplier", (2, 6), {"kernels": Rand((4, 1, 2)), "groups": 2, "padding": 1}),
        Case("groups_dilation_flipped", (4, 10), {"kernels": Rand((2, 2, 3)), "groups": 2, "dilation": 2,
                                                  "b": Rand((2,))}, conventions={"convolution": "convolution"}),
    ]),
    "conv2d": (t_conv2d, [
        Case("basic", (4, 4), {"kernels": Rand((2, 2, 2))}),
        Case("stride_pad_bias", (5, 4), {"kernels": Rand((2, 3, 3)), "b": Rand((2,)), "stride": 2, "padding": 1}),
        Case("multichannel_pairs", (2, 5, 6), {"kernels": Rand((3, 2, 2, 3)), "b": Rand((3,)),
                                               "stride": [1, 2], "padding": [1, 0]}, batch=1),
        Case("flipped", (4, 5), {"kernels": Rand((2, 2, 3)), "b": Rand((2,))},
             conventions={"convolution": "convolution"}),
        Case("flipped_multichannel", (2, 4, 4), {"kernels": Rand((2, 2, 3, 2)), "padding": [0, 1], "stride": 2},
             conventions={"convolution": "convolution"}, batch=1),
        Case("dilation", (5, 5), {"kernels": Rand((2, 2, 2)), "dilation": 2}),
        Case("dilation_pairs", (2, 6, 7), {"kernels": Rand((2, 2, 2, 3)), "b": Rand((2,)), "dilation": [2, 1],
                                          "stride": [1, 2], "padding": [1, 2]}, batch=1),
        Case("groups", (4, 4, 4), {"kernels": Rand((6, 2, 2, 2)), "b": Rand((6,)), "groups": 2}, batch=1),
        Case("depthwise_dilation_stride", (3, 6, 5), {"kernels": Rand((3, 2, 2)), "groups": 3, "dilation": [3, 2],
                                                      "stride": 2, "padding": 1}),
        Case("groups_dilation_flipped", (2, 5, 5), {"kernels": Rand((4, 1, 3, 2)), "groups": 2, "dilation": 2},
             conventions={"convolution": "convolution"}, batch=1),
    ]),
    "max_pool2d": (_maps(t_max_pool2d), [
        Case("basic", (2, 4, 4), {"kernel_size": 2}),
        Case("one_map_stride", (5, 5), {"kernel_size": 3, "stride": 2}),
        Case("rect_overlap", (2, 4, 5), {"kernel_size": [2, 3], "stride": [1, 2]}, batch=1),
        Case("ties_first", (2, 4, 4), {"kernel_size": 2}, ints=1, conventions={"maxpool_ties": "first"}),
        Case("ties_first_overlap", (4, 4), {"kernel_size": 2, "stride": 1}, ints=1),
        Case("ties_split", (2, 4, 4), {"kernel_size": 2}, ints=1, conventions={"maxpool_ties": "split"}),
        Case("ties_split_overlap", (5, 5), {"kernel_size": 3, "stride": 1}, ints=1,
             conventions={"maxpool_ties": "split"}),
        Case("padding", (2, 5, 5), {"kernel_size": 3, "stride": 2, "padding": 1}),
        Case("padding_rect_ties", (4, 5), {"kernel_size": [2, 3], "stride": [2, 1], "padding": [1, 1]}, ints=1),
    ]),
    "avg_pool2d": (_maps(t_avg_pool2d), [
        Case("basic", (2, 4, 4), {"kernel_size": 2}),
        Case("one_map_overlap", (5, 5), {"kernel_size": 3, "stride": 1}),
        Case("rect", (1, 4, 6), {"kernel_size": [2, 3], "stride": [2, 3]}, batch=1),
        Case("padding", (2, 5, 5), {"kernel_size": 3, "stride": 2, "padding": 1}),
        Case("padding_excluded", (4, 5), {"kernel_size": [2, 4], "stride": [1, 2], "padding": [1, 2],
                                          "count_include_pad": False}),
    ]),
    "max_pool1d": (_sequences(t_max_pool1d), [
        Case("basic", (6,), {"kernel_size": 2}),
        Case("channels_stride", (2, 7), {"kernel_size": 3, "stride": 2}),
        Case("padding", (2, 7), {"kernel_size": 3, "stride": 2, "padding": 1}),
        Case("overlap", (8,), {"kernel_size": 3, "stride": 1}),
        Case("ties_first", (2, 6), {"kernel_size": 2}, ints=1),
        Case("ties_first_pad_overlap", (7,), {"kernel_size": 3, "stride": 2, "padding": 1}, ints=1, batch=3),
        Case("ties_split", (2, 6), {"kernel_size": 2}, ints=1, conventions={"maxpool_ties": "split"}),
        Case("ties_split_pad_overlap", (7,), {"kernel_size": 4, "stride": 1, "padding": 2}, ints=1,
             conventions={"maxpool_ties": "split"}),
    ]),
    "avg_pool1d": (_sequences(t_avg_pool1d), [
        Case("basic", (6,), {"kernel_size": 2}),
        Case("channels_stride", (2, 7), {"kernel_size": 3, "stride": 2}),
        Case("padding", (7,), {"kernel_size": 3, "stride": 2, "padding": 1}),
        Case("padding_excluded", (2, 6), {"kernel_size": 4, "stride": 2, "padding": 2, "count_include_pad": False}),
        Case("overlap", (5,), {"kernel_size": 2, "stride": 1}, batch=1),
    ]),
    "attention": (t_attention, [
        Case("self_d4", (3, 4), seeds=(1, 2)),
        Case("projections", (3, 2), {"W_q": Rand((2, 2)), "W_k": Rand((2, 2)), "W_v": Rand((3, 2))}, seeds=(1,)),
        Case("biases_mask_scale", (3, 2), {"W_q": Rand((1, 2)), "b_q": Rand((1,)), "W_k": Rand((1, 2)),
                                           "b_k": Rand((1,)), "W_v": Rand((2, 2)), "b_v": Rand((2,)),
                                           "mask": [[1, 0, 1], [1, 1, 0], [0, 0, 1]]}, seeds=(1,)),
        Case("causal_scale", (3, 2), {"is_causal": True, "scale": "1/3", "W_v": Rand((2, 2))}, batch=1),
    ]),
    "flatten": (t_flatten, [
        Case("maps", (2, 2, 3)),
        Case("maps_channel_last", (3, 2, 2), conventions={"flatten": "channel_last"}),
        Case("matrix", (3, 4), batch=1),
        Case("vector", (5,), batch=1),
    ]),
    "rnn": (t_rnn, [
        Case("tanh", (2, 2), {"W_hh": Rand((2, 2)), "W_xh": Rand((2, 2)), "b_h": Rand((2,))}, batch=1,
             seeds=(1,)),
        Case("relu_h0", (4, 1), {"W_hh": Rand((3, 3)), "W_xh": Rand((3, 1)), "b_h": Rand((3,)),
                                 "h0": Rand((3,)), "activation": "relu"}),
        Case("identity_scalar_steps", (3,), {"W_hh": Rand((2, 2)), "W_xh": Rand((2, 1)), "activation": "identity"}),
    ]),
    "lstm": (t_gated(torch.nn.LSTM), [
        # two steps of hidden size 1: exact values nest σ(…tanh(…)…) and grow until the value tower lands
        Case("basic", (2, 1), {"W_ih": Rand((4, 1)), "W_hh": Rand((4, 1)), "b_ih": Rand((4,)),
                               "b_hh": Rand((4,)), "h0": Rand((1,)), "c0": Rand((1,))}, batch=1,
             seeds=(1,)),
    ]),
    "gru": (t_gated(torch.nn.GRU), [
        Case("basic", (2, 1), {"W_ih": Rand((3, 1)), "W_hh": Rand((3, 1)), "b_ih": Rand((3,)),
                               "b_hh": Rand((3,)), "h0": Rand((1,))}, batch=1,
             seeds=(1,)),
    ]),
    "relu": (t_relu, ELEMENTWISE_SHAPES + [
        Case("zeros_default", (6,), zeros=True),
        Case("zeros_grad_one", (6,), zeros=True, conventions={"relu_grad_at_zero": 1}),
        Case("zeros_grad_half", (2, 3), zeros=True, conventions={"relu_grad_at_zero": "1/2"}),
    ]),
    "sigmoid": (per_example(lambda layer, x, w: torch.sigmoid(x)), ELEMENTWISE_SHAPES[:3]),
    "tanh": (per_example(lambda layer, x, w: torch.tanh(x)), ELEMENTWISE_SHAPES[:3]),
    "softmax": (lambda layer, X, w: torch.softmax(X, dim=-1), [Case("k3", (3,)), Case("k4", (4,), batch=1)]),
    "global_avg_pool": (t_global_avg_pool, [Case("vector", (5,)), Case("channels", (3, 4)),
                                            Case("maps", (2, 3, 3), batch=1)]),
    "leaky_relu": (lambda layer, X, w: F.leaky_relu(X, float(layer.p.negative_slope)), ELEMENTWISE_SHAPES + [
        Case("zeros_default", (6,), zeros=True),
        Case("slope", (2, 3), {"negative_slope": "1/5"}, zeros=True),
    ]),
    "elu": (lambda layer, X, w: F.elu(X, float(layer.p.alpha)), ELEMENTWISE_SHAPES[:3] + [
        Case("alpha_zeros", (5,), {"alpha": "3/2"}, zeros=True),
    ]),
    "softplus": (lambda layer, X, w: F.softplus(X, float(layer.p.beta), float(layer.p.threshold)), [
        Case("default", (4,)),
        Case("beta_threshold", (2, 3), {"beta": 2, "threshold": 5}),
    ]),
    "gelu": (lambda layer, X, w: F.gelu(X, approximate=layer.p.approximate), [
        Case("exact", (4,), zeros=True),
        Case("exact_channels", (2, 2), batch=1),
        Case("tanh", (4,), {"approximate": "tanh"}, zeros=True),
    ]),
    "log_softmax": (lambda layer, X, w: torch.log_softmax(X, dim=-1), [Case("k3", (3,)), Case("k4", (4,), batch=1)]),
    "layernorm": (lambda layer, X, w: F.layer_norm(X, layer._shape(X[0]), w.get("gamma"), w.get("beta"),
                                                   eps=float(layer.p.eps)), [
        Case("default", (4,)),
        Case("eps0_affine", (3,), {"eps": 0, "gamma": Rand((3,)), "beta": Rand((3,))}, batch=3),
        Case("no_affine", (5,), {"elementwise_affine": False, "eps": "1/8"}),
        Case("no_bias", (3,), {"bias": False, "gamma": Rand((3,)), "eps": 0}),
        Case("rows", (2, 3), {"gamma": Rand((3,)), "beta": Rand((3,))}, batch=1),
        Case("two_axes", (2, 3), {"normalized_shape": [2, 3], "gamma": Rand((2, 3)), "eps": 0}),
    ]),
    "dropout": (t_dropout, [
        Case("one_mask", (4,), {"mask": [1, 0, 1, 1], "p": "1/4"}),
        Case("per_example", (3,), {"mask": [[0, 1, 1], [1, 1, 0]]}),
        Case("maps_p0", (2, 2), {"mask": [[1, 1], [0, 1]], "p": 0}, batch=1),
        Case("eval", (3,), {"train": False, "p": "1/3"}),
        Case("plain", (3,), {"mask": [1, 0, 1], "p": "1/5"}, conventions={"dropout": "plain"}),
        Case("plain_eval", (3,), {"train": False, "p": "1/5"}, conventions={"dropout": "plain"}),
    ]),
    "global_max_pool": (t_global_max_pool, [
        Case("vector", (5,)), Case("channels", (3, 4)), Case("maps", (2, 3, 3), batch=1),
        Case("ties_first", (3, 4), ints=1), Case("ties_first_maps", (2, 2, 3), ints=1),
        Case("ties_split", (3, 4), ints=1, conventions={"maxpool_ties": "split"}),
        Case("ties_split_vector", (6,), ints=1, conventions={"maxpool_ties": "split"}),
    ]),
    "embedding": (lambda layer, X, w: F.embedding(X.detach().long(), w["W"], padding_idx=layer.p.padding_idx), [
        Case("sequence", (5,), {"W": Rand((4, 3))}, indices=4),
        Case("one_index", (), {"W": Rand((3, 2))}, indices=3, batch=3),
        Case("grid_padding", (2, 3), {"W": Rand((3, 2)), "padding_idx": 1}, indices=3),
        Case("padding_negative", (4,), {"W": Rand((3, 2)), "padding_idx": -1}, indices=3, batch=1),
    ]),
    "batchnorm": (t_batchnorm, [
        Case("full", (3,), batch=3),
        Case("full_two", (2,), batch=2),
        Case("full_eps", (3,), {"eps": "1/8"}, batch=3),
        Case("full_eps_affine", (3,), {"eps": "1/10", "gamma": Rand((3,)), "beta": Rand((3,))}, batch=4),
        Case("full_gamma_only", (2,), {"gamma": Rand((2,))}, batch=3),
        Case("full_channels", (2, 3), {"eps": "0.01"}, batch=2),
        Case("unbiased", (2,), {"variance": "unbiased", "beta": Rand((2,))}, batch=3),
        Case("constants", (3,), batch=3, conventions={"batchnorm_backward": "constants"}),
        Case("constants_eps_affine", (2,), {"eps": "1/4", "gamma": Rand((2,)), "beta": Rand((2,))}, batch=3,
             conventions={"batchnorm_backward": "constants"}),
        Case("constants_channels", (2, 3), batch=2, conventions={"batchnorm_backward": "constants"}),
        Case("eval", (3,), {"training": False, "running_mean": Rand((3,)), "running_var": Rand((3,), positive=True)},
             batch=3),
        Case("eval_affine_eps", (2,), {"training": False, "eps": "1/10", "gamma": Rand((2,)), "beta": Rand((2,)),
                                       "running_mean": Rand((2,)), "running_var": Rand((2,), positive=True)}),
        Case("eval_defaults_maps", (2, 2, 2), {"training": False, "eps": "1/4", "affine": True}, batch=1),
        Case("eval_channels", (2, 3), {"training": False, "running_mean": Rand((2,)),
                                       "running_var": Rand((2,), positive=True), "gamma": Rand((2,))}),
        Case("training_tracked", (3,), {"momentum": "1/4", "eps": "1/8", "running_mean": Rand((3,))}, batch=3),
    ]),
}


def build_layer(kind: str, case: Case, rng):
    cls = LAYERS[kind]
    params = cls.Params.model_validate(fill_params(case.params, rng))
    return cls(params, 0, Conventions.model_validate(case.conventions))


def torch_weights(layer) -> dict:
    return {key: as_torch(value, grad=True) for key, value in layer.weights.items()}


# Ops that read several nodes: a torch function of the inputs, and cases as one shape per input.
MULTI_ORACLES = {
    "add": (lambda *xs: sum(xs[1:], xs[0]), [Case("two", ((3,), (3,))), Case("three_maps", ((2, 2), (2, 2), (2, 2)))]),
    "concat": (lambda *xs: torch.cat(xs, dim=1), [Case("vectors", ((2,), (3,))), Case("maps", ((1, 2), (2, 2), (1, 2)))]),
    "mul": (lambda a, b: a * b, [Case("vectors", ((3,), (3,))), Case("maps", ((2, 3), (2, 3)))]),
    "matmul": (lambda a, b: torch.stack([torch.matmul(p, q) for p, q in zip(a, b)]),
               [Case("matrix_vector", ((2, 3), (3,))), Case("vector_matrix", ((3,), (3, 2))),
                Case("matrices", ((2, 3), (3, 2))), Case("dot", ((3,), (3,)))]),
}


def check_multi(kind: str, case: Case, seed: int) -> None:
    """Forward values and every input's gradient of an op that reads several nodes, against autograd."""
    rng = random.Random(zlib.crc32(f"{kind}/{case.id}/{seed}".encode()))
    layer = build_layer(kind, case, rng)
    batches = [[exact_array(rng, shape) for _ in range(case.batch)] for shape in case.x]
    ys = layer.forward_many(batches)
    gys = [exact_array(rng, np.shape(y)) for y in ys]
    gys[0] = None if seed == 0 else gys[0]
    Xs = [as_torch(np.stack(b), grad=True) for b in batches]
    Y = MULTI_ORACLES[kind][0](*Xs)
    close(np.stack(ys), Y, f"{kind} forward")
    gins = layer.vjp_many(batches, ys, gys)
    Y.backward(torch.stack([torch.zeros(Y.shape[1:]) if g is None else as_torch(g) for g in gys]))
    for k, (column, X) in enumerate(zip(gins, Xs)):
        for m, g in enumerate(column):
            close(np.zeros(X.shape[1:]) if g is None else g, X.grad[m], f"{kind} dL/d(input {k + 1}) of example {m + 1}")


def _layer_params():
    for kind in sorted(LAYERS):
        if LAYERS[kind].arity != 1:
            for case in MULTI_ORACLES.get(kind, (None, [None]))[1]:
                yield pytest.param(kind, case, id=f"{kind}-{case.id if case else 'missing'}")
            continue
        if kind not in LAYER_ORACLES:
            yield pytest.param(kind, None, id=f"{kind}-missing")
            continue
        for case in LAYER_ORACLES[kind][1]:
            yield pytest.param(kind, case, id=f"{kind}-{case.id}")


def random_batch(rng, case: Case) -> list:
    """The case's examples: indices where the op reads indices (embedding), exact values otherwise."""
    return [random_indices(rng, case.x, case.indices) if case.indices else
            exact_array(rng, case.x, ints=case.ints, zeros=case.zeros, positive=case.positive)
            for _ in range(case.batch)]


def check_layer(kind: str, case: Case, seed: int, drop_first: bool) -> None:
    """One random draw: forward values, ∂L/∂x and ∂L/∂θ against autograd."""
    rng = random.Random(zlib.crc32(f"{kind}/{case.id}/{seed}".encode()))
    builder = LAYER_ORACLES[kind][0]
    layer = build_layer(kind, case, rng)
    xs = random_batch(rng, case)
    for x in xs:
        layer.check_input(x)
    ys = layer.forward(xs)
    gys = [exact_array(rng, np.shape(y)) for y in ys]
    if drop_first:
        gys[0] = None                   # the engine's "zero upstream gradient" marker
    X = as_torch(np.stack(xs), grad=True)
    w = torch_weights(layer)
    Y = builder(layer, X, w)
    close(np.stack(ys), Y, f"{kind} forward")
    if case.forward_only:
        try:
            layer.vjp(xs, ys, gys)
        except EngineError:
            return                      # a stated limitation; once the VJP exists it is checked below
    gxs, grads = layer.vjp(xs, ys, gys)
    G = torch.stack([torch.zeros(Y.shape[1:]) if g is None else as_torch(g) for g in gys])
    Y.backward(G)
    for m, gx in enumerate(gxs):
        engine_gx = np.zeros(case.x) if gx is None else gx
        torch_gx = X.grad[m] if X.grad is not None else torch.zeros(case.x)   # indices: not differentiated
        close(engine_gx, torch_gx, f"{kind} dL/dx of example {m + 1}")
    assert set(grads) == set(layer.weights), f"{kind}: gradients for {sorted(grads)}, weights {sorted(layer.weights)}"
    for key, value in grads.items():
        close(value, w[key].grad, f"{kind} dL/d{key}")


@pytest.mark.parametrize("kind, case", list(_layer_params()))
def test_layer_matches_torch(kind, case):
    if case is None:
        pytest.fail(f"add an oracle for {kind}")
    if LAYERS[kind].arity != 1:
        for seed in (0,) + case.seeds:
            check_multi(kind, case, seed)
        return
    for seed in case.seeds:
        check_layer(kind, case, seed, drop_first=False)
    if case.batch > 1:
        check_layer(kind, case, 0, drop_first=True)


def test_flipped_convolution_differs_from_cross_correlation():
    """The convention changes the numbers (an asymmetric kernel), so its test above is not vacuous."""
    rng = random.Random(7)
    params = {"kernels": [["1", "2", "-1"]]}
    x = exact_array(rng, (6,))
    outs = []
    for convention in ("cross_correlation", "convolution"):
        layer = LAYERS["conv1d"](LAYERS["conv1d"].Params.model_validate(params), 0,
                                 Conventions(convolution=convention))
        outs.append(to_float(layer.forward_one(x)))
    assert not np.allclose(outs[0], outs[1])


def test_dropout_with_the_mask_torch_drew():
    """torch's own F.dropout draws a mask; given that mask, the engine's values and ∂L/∂x are torch's."""
    rng = random.Random(11)
    xs = [exact_array(rng, (6,)) for _ in range(3)]
    X = as_torch(np.stack(xs), grad=True)
    torch.manual_seed(5)
    Y = F.dropout(X, 0.4, training=True)
    mask = (Y != 0).to(torch.int64)
    layer = build_layer("dropout", Case("torch", (6,), {"mask": mask.tolist(), "p": "2/5"}), rng)
    ys = layer.forward(xs)
    close(np.stack(ys), Y, "dropout forward")
    gys = [exact_array(rng, (6,)) for _ in range(3)]
    Y.backward(as_torch(np.stack(gys)))
    close(np.stack(layer.vjp(xs, ys, gys)[0]), X.grad, "dropout dL/dx")
    assert 0 < int(mask.sum()) < mask.numel()        # some kept, some dropped: not vacuous


@pytest.mark.parametrize("shape, momentum, eps, unbiased", [((4, 3), "1/10", "1/100", False),
                                                           ((3, 2, 2, 3), "3/10", "1/8", False),
                                                           ((2, 2, 5), "1/2", "1/4", True)])
def test_batchnorm_running_statistics_match_torch(shape, momentum, eps, unbiased):
    """torch.nn.BatchNorm1d/2d in training mode: output, gradients and the running statistics after the step
    (PyTorch's unbiased running variance); then the same module in evaluation mode with those statistics."""
    rng = random.Random(zlib.crc32(f"bn-running/{shape}".encode()))
    C = shape[1]
    params = {"momentum": momentum, "eps": eps, "gamma": Rand((C,)), "beta": Rand((C,)),
              "running_mean": Rand((C,)), "running_var": Rand((C,), positive=True)}
    if unbiased:
        params["variance"] = "unbiased"            # the normalisation changes; PyTorch's running update does not
    layer = build_layer("batchnorm", Case("running", shape[1:], params), rng)
    xs = random_batch(rng, Case("x", shape[1:], batch=shape[0]))
    module = (torch.nn.BatchNorm1d if len(shape) < 4 else torch.nn.BatchNorm2d)(C, eps=float(layer.p.eps), momentum=float(layer.p.momentum))
    with torch.no_grad():
        module.weight.copy_(as_torch(layer.weights["gamma"]))
        module.bias.copy_(as_torch(layer.weights["beta"]))
        module.running_mean.copy_(as_torch(layer.p.running_mean))
        module.running_var.copy_(as_torch(layer.p.running_var))
    X = as_torch(np.stack(xs), grad=True)
    Y = module.double()(X)
    ys = layer.forward(xs)
    if not unbiased:
        close(np.stack(ys), Y, "batchnorm forward")
    close(layer.stats["running_mean"], module.running_mean, "running mean after the step")
    close(layer.stats["running_var"], module.running_var, "running variance after the step")
    # evaluation mode with the updated statistics: values and every gradient
    evaluated = build_layer("batchnorm", Case("eval", shape[1:], {
        "training": False, "eps": eps, "gamma": [str(v) for v in layer.weights["gamma"]],
        "beta": [str(v) for v in layer.weights["beta"]],
        "running_mean": [str(v) for v in layer.stats["running_mean"]],
        "running_var": [str(v) for v in layer.stats["running_var"]]}), rng)
    module.eval()
    X = as_torch(np.stack(xs), grad=True)
    Y = module(X)
    ys = evaluated.forward(xs)
    close(np.stack(ys), Y, "batchnorm evaluation forward")
    gys = [exact_array(rng, np.shape(y)) for y in ys]
    gxs, grads = evaluated.vjp(xs, ys, gys)
    Y.backward(as_torch(np.stack(gys)))
    close(np.stack(gxs), X.grad, "batchnorm evaluation dL/dx")
    close(grads["gamma"], module.weight.grad, "batchnorm evaluation dL/dgamma")
    close(grads["beta"], module.bias.grad, "batchnorm evaluation dL/dbeta")


def test_attention_problem_key_is_torchs():
    """problems/extra_attention.yaml's key (4 decimals) against PyTorch alone: its own
    scaled_dot_product_attention on the spec's numbers, autograd for the gradients."""
    import yaml

    spec = yaml.safe_load((PROBLEMS / "extra_attention.yaml").read_text(encoding="utf-8"))
    attn, example, key = spec["model"][0]["attention"], spec["data"][0], spec["answers"]
    W = {k: torch.tensor(attn[k], dtype=torch.float64, requires_grad=True) for k in ("W_q", "W_k", "W_v")}
    X = torch.tensor(example["x"], dtype=torch.float64, requires_grad=True)
    Y = F.scaled_dot_product_attention(X @ W["W_q"].T, X @ W["W_k"].T, X @ W["W_v"].T, is_causal=attn["is_causal"])
    L = ((Y - torch.tensor(example["y"], dtype=torch.float64)) ** 2).sum()
    L.backward()
    checks = [("loss", L), ("attn(1)", Y), ("x.grad(1)", X.grad)] + [(f"attn.{k}.grad", W[k].grad) for k in W]
    assert sum(name in key for name, _ in checks) >= 5          # the key is not vacuous
    for name, value in ((n, v) for n, v in checks if n in key):
        np.testing.assert_allclose(np.array(key[name], dtype=float), value.detach().numpy(), atol=5e-5, err_msg=name)


def test_attention_trains_like_torch():
    """Two SGD steps: the second forward pass sees the updated weights (nothing of the first is reused)."""
    from examsolver.pipeline import solve_document
    from examsolver.spec.load import load_text

    text = ("id: att_train\nmodel:\n  - attention: {name: attn, W_v: [[1, 0], [0, 2]], W_q: [[1, 0], [0, 1]]}\n"
            "loss: mse\ndata:\n  - {x: [[1, 0], [0, 1]], y: [[1, 0], [0, 1]]}\n"
            "tasks:\n  - train: {optimizer: {sgd: {lr: 1/2}}, steps: 2}\n")
    results = solve_document(load_text(text, "att_train.yaml"), answers={}).results
    X, Y = torch.eye(2), torch.eye(2)
    W_q = torch.eye(2, requires_grad=True)
    W_v = torch.tensor([[1.0, 0], [0, 2]], requires_grad=True)
    opt = torch.optim.SGD([W_q, W_v], lr=0.5)
    for t in (1, 2):
        opt.zero_grad()
        ((F.scaled_dot_product_attention(X @ W_q.T, X, X @ W_v.T) - Y) ** 2).sum().backward()
        opt.step()
        close(results[f"attn.W_v.updated({t})"], W_v, f"W_v after step {t}")
        close(results[f"attn.W_q.updated({t})"], W_q, f"W_q after step {t}")


# ----- loss oracles ---------------------------------------------------------------------
def probabilities(rng, k: int) -> np.ndarray:
    raw = random_fractions(rng, k, positive=True, hi=9)
    total = sum(raw)
    return tensor([q / total for q in raw])


def unit_interval(rng, shape) -> np.ndarray:
    """Values strictly inside (0, 1)."""
    values = [Fraction(rng.randint(1, 9), 10) for _ in range(int(np.prod(shape, dtype=int)))]
    return tensor(np.array(values, dtype=object).reshape(shape))


@dataclass(frozen=True)
class LossCase:
    id: str
    make: object                 # rng → (output p, target y) as exact arrays
    params: dict = field(default_factory=dict)


def _weight(array):
    return None if array is None else as_torch(array)


def t_cross_entropy(loss, P, T):
    """PyTorch's cross_entropy on the logits log p (log_softmax(log p) = log p); the wrong_classes
    smoothing written out as the textbook target instead."""
    eps, K, w = float(loss.p.label_smoothing), P.shape[-1], _weight(loss.p.weight)
    target = T.long().unsqueeze(0) if T.dim() == 0 else T.unsqueeze(0)
    if loss.p.label_smoothing_convention == "wrong_classes":
        y = F.one_hot(T.long(), K).double() if T.dim() == 0 else T
        q = (1 - eps) * y + eps / (K - 1) * (1 - y)
        return -((w if w is not None else 1.0) * q * torch.log(P)).sum()
    def ce(logits):
        return F.cross_entropy(logits.unsqueeze(0), target, weight=w, label_smoothing=eps, reduction="none")[0]
    # ce(log p) = −Σ c_i ln p_i + (Σ c) ln Σ p: the engine's loss is the first term (a function of p off the
    # simplex too), so the second is taken off, Σ c = ce(0)/ln K read from PyTorch (its value is 0 here)
    return ce(torch.log(P)) - ce(torch.zeros(K)) / np.log(K) * torch.logsumexp(torch.log(P), -1)


def t_nll(loss, P, T):
    return F.nll_loss(P.unsqueeze(0), T.long().unsqueeze(0), weight=_weight(loss.p.weight), reduction="none")[0]


def t_bce_with_logits(loss, S, T):
    return F.binary_cross_entropy_with_logits(S, T.reshape(S.shape), weight=_weight(loss.p.weight),
                                              pos_weight=_weight(loss.p.pos_weight), reduction="sum")


def t_l1(loss, P, T):
    """|d| summed; at d = 0 the chosen subgradient g₀ added as g₀ (P − P.detach()) (value unchanged)."""
    T = T.reshape(P.shape)
    ties = (P.detach() == T).double()
    return F.l1_loss(P, T, reduction="sum") + float(loss.p.grad_at_zero) * (ties * (P - P.detach())).sum()


def t_smooth_l1(loss, P, T):
    return F.smooth_l1_loss(P, T.reshape(P.shape), reduction="sum", beta=float(loss.p.beta))


def t_huber(loss, P, T):
    return F.huber_loss(P, T.reshape(P.shape), reduction="sum", delta=float(loss.p.delta))


def t_kl_div(loss, P, T):
    return F.kl_div(P, T.reshape(P.shape), reduction="sum", log_target=loss.p.log_target)


def t_distillation(loss, S, T):
    t = float(loss.p.temperature)
    return t ** 2 * F.kl_div(F.log_softmax(S / t, dim=-1), F.softmax(T / t, dim=-1), reduction="sum")


def t_binary_cross_entropy(loss, P, T):
    return F.binary_cross_entropy(P.reshape(-1), T.reshape(-1).expand(P.numel()))


def t_mse(loss, P, T):
    return F.mse_loss(P, T.reshape(P.shape), reduction="sum") * (0.5 if loss.p.half else 1.0)


def t_triplet(loss, P, T):
    """torch.nn.TripletMarginLoss on the rows (anchor, positive, negative); the squared form by hand."""
    a, p, n = P[0:1], P[1:2], P[2:3]
    eps = float(loss.eps)
    if not loss.squared:
        return torch.nn.TripletMarginLoss(margin=float(loss.m), p=loss.p_norm, eps=eps)(a, p, n)
    d = [F.pairwise_distance(a, x, p=loss.p_norm, eps=eps)[0] for x in (p, n)]
    return torch.clamp(d[0] ** 2 - d[1] ** 2 + float(loss.m), min=0)


def t_contrastive(loss, P, T):
    """The contrastive loss written out: f·d² for a positive pair (T = 1), f·max(0, m − d)² for a negative."""
    d = torch.linalg.vector_norm(P[0] - P[1] + float(loss.eps), ord=loss.p_norm)
    power = 2 if loss.squared else 1
    f = 0.5 if loss.half else 1.0
    return f * (d ** power if int(T) == 1 else torch.clamp(float(loss.m) - d, min=0) ** power)


def _rows(count: int, target=None):
    """count embeddings of one random size as rows (distinct, so no distance is 0)."""
    def make(rng):
        D = rng.randint(1, 4)
        return exact_array(rng, (count, D), lo=-4, hi=4), tensor(rng.randint(0, 1) if target is None else target)
    return make


def _ce_index(rng):
    p = probabilities(rng, 4)
    return p, tensor(rng.randrange(4))


def _ce_distribution(rng):
    return probabilities(rng, 3), probabilities(rng, 3)


def _ce_sparse_distribution(rng):
    return probabilities(rng, 3), tensor([Fraction(1, 4), 0, Fraction(3, 4)])


def _ce_random_index(k: int | None = None):
    """K classes (random from 2 to 5 unless given), a random class index."""
    def make(rng):
        size = k or rng.randint(2, 5)
        return probabilities(rng, size), tensor(rng.randrange(size))
    return make


def _ce_random_distribution(k: int):
    return lambda rng: (probabilities(rng, k), probabilities(rng, k))


def _log_probabilities(rng, k: int) -> np.ndarray:
    """ln p of random probabilities: exact values of the tower, as log_softmax would give."""
    from examsolver.engine import scalar

    return np.array([scalar.log(v) for v in probabilities(rng, k)], dtype=object)


def _random_shape(rng) -> tuple:
    return rng.choice([(), (1,), (2,), (3,), (2, 2)])


def _pair_at_kinks(width):
    """Outputs and targets with some differences exactly 0 or ±width (the kinks), the rest random."""
    def make(rng):
        o = exact_array(rng, (4,))
        offsets = [Fraction(0), Fraction(width), -Fraction(width), Fraction(rng.randint(-9, 9), 4)]
        return o, tensor([ov - tensor(off)[()] for ov, off in zip(o.flat, offsets)])
    return make


def _entrywise(rng):
    shape = _random_shape(rng)
    return exact_array(rng, shape), exact_array(rng, shape)


def _logits_and_labels(shape=None, soft: bool = False):
    def make(rng):
        size = shape if shape is not None else _random_shape(rng)
        s = exact_array(rng, size, lo=-6, hi=6, dens=(1, 2, 3))
        y = unit_interval(rng, size) if soft else tensor(np.array(
            [rng.randint(0, 1) for _ in range(int(np.prod(size, dtype=int)))], dtype=object).reshape(size))
        return s, y
    return make


LOSS_ORACLES: dict = {
    "cross_entropy": (t_cross_entropy, [
        LossCase("class_index", _ce_index),
        LossCase("distribution", _ce_distribution),
        LossCase("distribution_with_zero", _ce_sparse_distribution),
        LossCase("smoothing", _ce_random_index(), {"label_smoothing": "1/10"}),
        LossCase("smoothing_wrong_classes", _ce_random_index(), {"label_smoothing": "1/5",
                                                                  "label_smoothing_convention": "wrong_classes"}),
        LossCase("weight", _ce_random_index(3), {"weight": ["1/2", "2", "3/2"]}),
        LossCase("weight_smoothing", _ce_random_index(4), {"weight": ["1", "1/3", "2", "5/4"], "label_smoothing": "1/4"}),
        LossCase("distribution_weight_smoothing", _ce_random_distribution(3),
                 {"weight": ["2", "1/2", "1"], "label_smoothing": "3/10"}),
        LossCase("distribution_wrong_classes", _ce_random_distribution(4),
                 {"label_smoothing": "1/10", "label_smoothing_convention": "wrong_classes", "weight": ["1", "2", "1", "1/2"]}),
    ]),
    "nll": (t_nll, [
        LossCase("log_probabilities", lambda rng: (_log_probabilities(rng, 4), tensor(rng.randrange(4)))),
        LossCase("scores", lambda rng: (exact_array(rng, (3,)), tensor(rng.randrange(3)))),
        LossCase("weight", lambda rng: (exact_array(rng, (3,)), tensor(rng.randrange(3))), {"weight": ["1/2", "3", "2"]}),
    ]),
    "binary_cross_entropy_with_logits": (t_bce_with_logits, [
        LossCase("labels", _logits_and_labels()),
        LossCase("soft_labels", _logits_and_labels(soft=True)),
        LossCase("score_zero", lambda rng: (tensor([0, Fraction(rng.randint(1, 6), 2)]), tensor([1, 0]))),
        LossCase("pos_weight", _logits_and_labels((3,)), {"pos_weight": ["2", "1/2", "3"]}),
        LossCase("weight_pos_weight_matrix", _logits_and_labels((2, 3), soft=True),
                 {"weight": ["1", "2", "1/3"], "pos_weight": "3/2"}),
    ]),
    "l1": (t_l1, [
        LossCase("random", _entrywise),
        LossCase("at_zero", _pair_at_kinks(1)),
        LossCase("at_zero_half", _pair_at_kinks(1), {"grad_at_zero": "1/2"}),
    ]),
    "smooth_l1": (t_smooth_l1, [
        LossCase("random", _entrywise),
        LossCase("beta", _entrywise, {"beta": "5/2"}),
        LossCase("at_kinks", _pair_at_kinks(Fraction(1, 2)), {"beta": "1/2"}),
        LossCase("beta_zero", _pair_at_kinks(1), {"beta": 0}),
    ]),
    "huber": (t_huber, [
        LossCase("random", _entrywise),
        LossCase("delta", _entrywise, {"delta": "3/2"}),
        LossCase("at_kinks", _pair_at_kinks(2), {"delta": 2}),
    ]),
    "kl_div": (t_kl_div, [
        LossCase("probabilities", lambda rng: (_log_probabilities(rng, 3), probabilities(rng, 3))),
        LossCase("target_with_zero", lambda rng: (exact_array(rng, (4,)), tensor([Fraction(1, 2), 0, Fraction(1, 4), Fraction(1, 4)]))),
        LossCase("log_target", lambda rng: (exact_array(rng, (3,)), exact_array(rng, (3,), lo=-4, hi=0)),
                 {"log_target": True}),
    ]),
    "distillation": (t_distillation, [
        LossCase("temperature_1", lambda rng: (exact_array(rng, (3,), lo=-4, hi=4), exact_array(rng, (3,), lo=-4, hi=4))),
        LossCase("temperature_2", lambda rng: (exact_array(rng, (4,), lo=-4, hi=4), exact_array(rng, (4,), lo=-4, hi=4)),
                 {"temperature": 2}),
        LossCase("temperature_half", lambda rng: (exact_array(rng, (2,), lo=-2, hi=2), exact_array(rng, (2,), lo=-2, hi=2)),
                 {"temperature": "1/2"}),
    ]),
    "binary_cross_entropy": (t_binary_cross_entropy, [
        LossCase("label_1", lambda rng: (unit_interval(rng, ()), tensor(1))),
        LossCase("label_0_vector", lambda rng: (unit_interval(rng, (1,)), tensor(0))),
        LossCase("soft_label", lambda rng: (unit_interval(rng, ()), tensor(Fraction(2, 5)))),
    ]),
    "triplet": (t_triplet, [
        LossCase("pytorch", _rows(3, 0)),
        LossCase("margin_p1", _rows(3, 0), {"margin": "5/2", "p": 1}),
        LossCase("p3_eps", _rows(3, 0), {"margin": "1/2", "p": 3, "eps": "1/1000000"}),
        LossCase("squared", _rows(3, 0), {"margin": 4, "squared": True}),
        LossCase("squared_p1", _rows(3, 0), {"margin": 2, "squared": True, "p": 1}),
    ]),
    "contrastive": (t_contrastive, [
        LossCase("positive", _rows(2, 1)),
        LossCase("negative", _rows(2, 0), {"margin": 6}),
        LossCase("half_random_label", _rows(2), {"margin": 5, "half": True}),
        LossCase("unsquared", _rows(2), {"margin": 4, "squared": False}),
        LossCase("p1_eps", _rows(2), {"margin": 5, "p": 1, "eps": "1/1000"}),
    ]),
    "mse": (t_mse, [
        LossCase("vector", lambda rng: (exact_array(rng, (3,)), exact_array(rng, (3,)))),
        LossCase("vector_half", lambda rng: (exact_array(rng, (3,)), exact_array(rng, (3,))), {"half": True}),
        LossCase("scalar", lambda rng: (exact_array(rng, ()), exact_array(rng, ()))),
        LossCase("matrix_half", lambda rng: (exact_array(rng, (2, 2)), exact_array(rng, (2, 2))), {"half": True}),
    ]),
    "sum": (lambda loss, P, T: P.sum(), [            # no target: T is a placeholder
        LossCase("vector", lambda rng: (exact_array(rng, (3,)), tensor(0))),
        LossCase("scalar", lambda rng: (exact_array(rng, ()), tensor(0))),
        LossCase("matrix", lambda rng: (exact_array(rng, (2, 3)), tensor(0))),
    ]),
}


def _loss_params():
    for kind in sorted(LOSSES):
        if kind not in LOSS_ORACLES:
            yield pytest.param(kind, None, id=f"{kind}-missing")
            continue
        for case in LOSS_ORACLES[kind][1]:
            yield pytest.param(kind, case, id=f"{kind}-{case.id}")


def build_loss(kind: str, case: LossCase):
    cls = LOSSES[kind]
    return cls(cls.Params.model_validate(case.params))


@pytest.mark.parametrize("kind, case", list(_loss_params()))
def test_loss_matches_torch(kind, case):
    if case is None:
        pytest.fail(f"add an oracle for {kind}")
    builder = LOSS_ORACLES[kind][0]
    loss = build_loss(kind, case)
    for seed in SEEDS:
        rng = random.Random(zlib.crc32(f"{kind}/{case.id}/{seed}".encode()))
        p, y = case.make(rng)
        loss.check_target(p, y)
        P, T = as_torch(p, grad=True), as_torch(y)
        L = builder(loss, P, T)
        close(loss.value(p, y), L, f"{kind} value")
        L.backward()
        close(loss.grad(p, y), P.grad, f"{kind} dL/dp")


@pytest.mark.parametrize("kind, case", [p for p in _loss_params()
                                        if p.values[1] is not None and LOSSES[p.values[0]].fuses_with])
def test_fused_loss_gradient_matches_torch(kind, case):
    """∂L/∂s = p − y through the final activation, against autograd through that activation."""
    loss = build_loss(kind, case)
    act_kind = loss.fuses_with
    act_builder = LAYER_ORACLES[act_kind][0]
    activation = LAYERS[act_kind](LAYERS[act_kind].Params(), 0, Conventions())
    for seed in SEEDS:
        rng = random.Random(zlib.crc32(f"fused/{kind}/{case.id}/{seed}".encode()))
        p_shape, y = case.make(rng)
        s = exact_array(rng, np.shape(p_shape), lo=-4, hi=4, dens=(1, 2, 3))
        p = activation.forward_one(s)
        S = as_torch(s, grad=True)
        P = act_builder(activation, S.unsqueeze(0), {})[0]
        L = LOSS_ORACLES[kind][0](loss, P, as_torch(y))
        close(loss.value(p, y), L, f"{kind} after {act_kind}: value")
        L.backward()
        close(loss.fused_grad(p, y), S.grad, f"{kind} after {act_kind}: dL/ds")


@pytest.mark.parametrize("smoothing", ["0", "1/5"])
def test_weighted_cross_entropy_against_torch_mean(smoothing):
    """PyTorch's reduction='mean' with class weights divides by Σ_n w_{y_n}, not by N: the engine's
    per-example losses L⁽ⁿ⁾ (PyTorch's reduction='none') summed and divided so give torch's value and
    gradient; the network's minibatch mean (÷ N) differs from it by N/Σ_n w_{y_n}, as its convention says."""
    loss = LOSSES["cross_entropy"](LOSSES["cross_entropy"].Params.model_validate(
        {"weight": ["1/2", "2", "3/2"], "label_smoothing": smoothing}))
    softmax = LAYERS["softmax"](LAYERS["softmax"].Params(), 0, Conventions())
    for seed in SEEDS:
        rng = random.Random(seed)
        s = [exact_array(rng, (3,), lo=-4, hi=4, dens=(1, 2)) for _ in range(4)]
        y = [tensor(rng.randrange(3)) for _ in s]
        p = [softmax.forward_one(v) for v in s]
        S = as_torch(np.stack(s), grad=True)
        Y = torch.tensor([int(v[()]) for v in y])
        W = as_torch(loss.p.weight)
        L = F.cross_entropy(S, Y, weight=W, label_smoothing=float(loss.p.label_smoothing), reduction="mean")
        L.backward()
        norm = sum(loss.p.weight[int(v[()])] for v in y)
        close(sum(loss.value(pm, ym) for pm, ym in zip(p, y)) / norm, L, "weighted mean")
        close(np.stack([loss.fused_grad(pm, ym) / norm for pm, ym in zip(p, y)]), S.grad, "weighted mean dL/ds")


# ----- whole problems -------------------------------------------------------------------
def test_2022_z3_matches_the_slides_torch_script(capsys):
    """The PyTorch check script printed in the slides (float32 in part, hence rtol 1e-6)."""
    torch.set_default_dtype(torch.float32)
    try:
        ns = runpy.run_path(str(ROOT / "benchmarks" / "torch_check_z3.py"))
    finally:
        torch.set_default_dtype(torch.float64)
    solution = solve_file(PROBLEMS / "2022_z3.yaml")
    grad = to_float(solution.results["conv1.W.grad"])
    np.testing.assert_allclose(grad, ns["w1"].grad.view(2, 3).double().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(float(solution.results["loss"]), float(ns["L"].detach()), rtol=1e-6)
    np.testing.assert_allclose(to_float(solution.results["p"]), ns["p"].detach().view(-1).double().numpy(),
                               rtol=1e-6)
    assert "tensor" in capsys.readouterr().out          # the script ran to its print


def test_2022_z1_matches_a_torch_reimplementation():
    """Task 1 written out in PyTorch: batch statistics detached, BCE, mean over the batch, lr 1."""
    X = torch.tensor([[1.0, 1.0], [-1.0, 3.0]])
    Y = torch.tensor([1.0, 1.0])
    W1 = torch.eye(2, requires_grad=True)
    b1 = torch.zeros(2, requires_grad=True)
    W2 = torch.tensor([1.0, 1.0], requires_grad=True)
    b2 = torch.tensor(-1.0, requires_grad=True)
    H1 = X @ W1.T + b1
    mu = H1.mean(dim=0).detach()
    sigma = torch.sqrt(H1.var(dim=0, correction=0)).detach()
    H2 = torch.relu((H1 - mu) / sigma)
    P = torch.sigmoid(H2 @ W2 + b2)
    L = F.binary_cross_entropy(P, Y)
    L.backward()
    solution = solve_file(PROBLEMS / "2022_z1.yaml")
    r = solution.results
    close(r["loss"], L, "loss")
    close(np.stack([r["p(1)"], r["p(2)"]]), P, "p")
    for name, param in (("fc1.W", W1), ("fc1.b", b1), ("fc2.W", W2), ("fc2.b", b2)):
        close(r[f"{name}.grad"], param.grad, f"{name}.grad")
        close(r[f"{name}.updated"], param - param.grad, f"{name}.updated")


def _network_problems():
    for path in sorted(PROBLEMS.glob("*.yaml")):
        doc = load_file(path)
        if isinstance(doc.data, dict) and doc.data.get("kind", "network") == "network":
            yield pytest.param(path, id=path.stem)


@pytest.mark.parametrize("path", list(_network_problems()))
def test_network_problem_matches_torch(path):
    """Every sequential-model problem, rebuilt in PyTorch from the oracles above: all gradients."""
    doc = load_file(path)
    spec = parse_spec(doc)
    net = Network(spec, doc)
    from examsolver.engine.shapes import prepare_inputs

    prepare_inputs(spec, net, Solution(problem_id="oracle", title={}))    # sparse inputs → tensors
    solution = solve_file(path)
    results = solution.results
    weights = [torch_weights(layer) for layer in net.layers]
    X = as_torch(np.stack(net.xs), grad=True)
    H, nodes = X, {"x": X}
    for layer, w in zip(net.layers, weights):
        inputs = [nodes[n] for n in layer.p.inputs] if layer.p.inputs else [H]   # a graph model names them
        if layer.arity != 1:
            H = MULTI_ORACLES[layer.kind][0](*inputs)
        elif layer.kind not in LAYER_ORACLES:
            pytest.fail(f"add an oracle for {layer.kind}")
        else:
            H = LAYER_ORACLES[layer.kind][0](layer, inputs[0], w)
        nodes[layer.name] = H
    if net.loss is None:
        return
    train = next((t.train_step for t in spec.tasks if getattr(t, "train_step", None)), None)
    reduction = train.reduction if train else "mean"
    losses = [LOSS_ORACLES[net.loss.kind][0](net.loss, H[m], as_torch(y)) for m, y in enumerate(net.ys)]
    total = torch.stack(losses).sum()
    L = total / len(losses) if (reduction == "mean" and net.batched) else total
    close(results["loss"], L, f"{path.name}: loss")
    params = {f"{layer.name}.{key}": t for layer, w in zip(net.layers, weights) for key, t in w.items()}
    checked = 0
    per_example = [torch.autograd.grad(l_m, list(params.values()) + [X], retain_graph=True, allow_unused=True)
                   for l_m in losses]
    scale = 1 / len(losses) if reduction == "mean" else 1
    for i, name in enumerate(list(params) + ["x"]):
        rows = [g[i] if g[i] is not None else torch.zeros_like((list(params.values()) + [X])[i]) for g in per_example]
        if name == "x":
            rows = [r[m] for m, r in enumerate(rows)]
        if f"{name}.grad" in results and name != "x":
            close(results[f"{name}.grad"], sum(rows) * scale, f"{path.name}: {name}.grad")
            checked += 1
        for m, row in enumerate(rows):
            key = f"{name}.grad({m + 1})" if net.batched else f"{name}.grad"
            if key in results:
                close(results[key], row, f"{path.name}: {key}")
                checked += 1
        if f"{name}.updated" in results:
            new = params[name] - float(train.lr) * sum(rows) * scale
            close(results[f"{name}.updated"], new, f"{path.name}: {name}.updated")
            checked += 1
    wants_gradients = any(getattr(t, "gradient", None) or getattr(t, "train_step", None) for t in spec.tasks)
    assert checked or not wants_gradients, f"{path.name}: no gradient result was compared"


# ----- the PyTorch references the ops declare (Layer.torch / Loss.torch) ------------------------------
def _declared_references():
    """Every (kind, case) whose op declares a PyTorch reference: the exported check scripts use it."""
    for kind in sorted(LAYER_ORACLES):
        for case in LAYER_ORACLES[kind][1]:
            layer = build_layer(kind, case, random.Random(0))
            if layer.torch("X", {key: f"w[{key!r}]" for key in layer.weights}) is not None:
                yield pytest.param(kind, case, id=f"{kind}-{case.id}")


@pytest.mark.parametrize("kind, case", list(_declared_references()))
def test_declared_torch_reference_matches_the_oracle(kind, case):
    """The expression an op declares for the exported script computes what its oracle computes."""
    rng = random.Random(zlib.crc32(f"reference/{kind}/{case.id}".encode()))
    layer = build_layer(kind, case, rng)
    xs = random_batch(rng, case)
    for x in xs:
        layer.check_input(x)
    expression = layer.torch("X", {key: f"w[{key!r}]" for key in layer.weights})
    outputs, grads = [], []
    for build in (lambda X, w: eval(expression, {"torch": torch, "F": F, "X": X, "w": w}),   # the ops' own text
                  lambda X, w: LAYER_ORACLES[kind][0](layer, X, w)):
        X, w = as_torch(np.stack(xs), grad=not case.indices), torch_weights(layer)
        Y = build(X, w)
        outputs.append(Y.detach().numpy())
        Y.backward(as_torch(np.stack([exact_array(random.Random(5), Y.shape[1:])] * Y.shape[0])))
        grads.append([t.grad for t in [X, *w.values()] if t.grad is not None])
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=RTOL, atol=ATOL, err_msg=expression)
    assert len(grads[0]) == len(grads[1]), expression
    for declared, expected in zip(*grads):        # the conventions' derivatives too (ReLU′(0))
        np.testing.assert_allclose(declared.numpy(), expected.numpy(), rtol=RTOL, atol=ATOL, err_msg=expression)


@pytest.mark.parametrize("kind, case", [pytest.param(kind, case, id=f"{kind}-{case.id}")
                                        for kind in sorted(MULTI_ORACLES) for case in MULTI_ORACLES[kind][1]])
def test_declared_reference_of_an_op_reading_several_nodes(kind, case):
    """add, concat, mul, matmul: their expression of one batch per input is their oracle's value."""
    rng = random.Random(zlib.crc32(f"reference/{kind}/{case.id}".encode()))
    layer = build_layer(kind, case, rng)
    Xs = [as_torch(np.stack([exact_array(rng, shape) for _ in range(case.batch)])) for shape in case.x]
    names = {f"X{k}": X for k, X in enumerate(Xs)}
    expression = layer.torch(list(names), {})
    assert expression is not None, f"{kind} declares no PyTorch reference"
    declared = eval(expression, {"torch": torch, "F": F, **names})      # the op's own text, not input
    np.testing.assert_allclose(declared.numpy(), MULTI_ORACLES[kind][0](*Xs).numpy(), rtol=RTOL, atol=ATOL,
                               err_msg=expression)


RECURRENT = [pytest.param(kind, case, id=f"{kind}-{case.id}") for kind in ("rnn", "lstm", "gru")
             for case in LAYER_ORACLES[kind][1]]


@pytest.mark.parametrize("kind, case", RECURRENT)
def test_a_cells_equations_in_torch_give_its_oracles_states(kind, case):
    """The cell's step equations as the exported scripts write them (gate order, bias blocks, reset
    gate inside for GRU), unrolled in torch, give the hidden states of its oracle (nn.LSTM/nn.GRU)."""
    rng = random.Random(zlib.crc32(f"step/{kind}/{case.id}".encode()))
    layer = build_layer(kind, case, rng)
    w = torch_weights(layer)
    names = {key: f"w[{key!r}]" for key in w}
    for x in random_batch(rng, case):
        X = _sequence(as_torch(x).unsqueeze(0), layer.input_size)[0]
        scope = {"torch": torch, "F": F, "w": w, "X": X, "h0": as_torch(layer.h0)}
        state = {"h": "h0"}
        if "c" in layer.initial():
            scope["c0"], state["c"] = as_torch(layer.c0), "c0"
        hs = []
        for t in range(1, X.shape[0] + 1):
            for name, expression in layer.torch_step(f"X[{t - 1}]", state, names, t):
                scope[name] = eval(expression, scope)                # the op's own text, not input
            state = {k: f"{k}{t}" for k in state}
            hs.append(scope[f"h{t}"])
        expected = LAYER_ORACLES[kind][0](layer, X.unsqueeze(0), w)[0]
        np.testing.assert_allclose(torch.stack(hs).detach().numpy(), expected.detach().numpy(), rtol=RTOL, atol=ATOL)


def test_some_ops_declare_a_reference():
    """The parametrization above is not empty (a refactoring that dropped every reference would pass it)."""
    assert {"linear", "relu", "batchnorm", "flatten", "rnn", "lstm", "gru"} <= {p.values[0] for p in _declared_references()}
