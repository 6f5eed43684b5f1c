"""Every registered layer and loss checked against PyTorch autograd (float64), the references reading the spec.

The engine computes exactly on random small-denominator fractions; PyTorch computes the same function in
float64 and differentiates it by autograd.  Each case is a spec mapping as a user writes it (`{kernels: …,
stride: 2}`, `conventions: {maxpool_ties: split}`): the engine parses it, and the reference in
pytorch_reference.py reads it on its own, taking what it leaves out from that module's tables of PyTorch's
defaults and the conventions' meanings.  A default changed in the engine (ReLU′(0), batchnorm's variance,
the flatten order, the smoothing of cross-entropy, …) fails here.

Every kind the engine registers is listed below by name and must have cases; random values are distinct
and non-zero, so no ReLU sits at 0 and no max-pool window has a tie unless a case asks for it.
"""

from __future__ import annotations

import inspect
import random
import runpy
import zlib
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

import pytorch_reference as R
import torch_problems
from examsolver.engine.ops import LAYERS, LOSSES
from examsolver.engine.tensor import tensor, to_float
from examsolver.errors import EngineError
from examsolver.pipeline import solve_file
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


# ----- every kind the engine registers, by name (a kind added, dropped or renamed fails until listed) ------
LAYER_KINDS = ["add", "attention", "avg_pool1d", "avg_pool2d", "batchnorm", "concat", "conv1d", "conv2d", "dropout",
               "elu", "embedding", "flatten", "gelu", "global_avg_pool", "global_max_pool", "gru", "layernorm",
               "leaky_relu", "linear", "log_softmax", "lstm", "matmul", "max_pool1d", "max_pool2d", "mul", "relu",
               "rnn", "sigmoid", "softmax", "softplus", "tanh"]
LOSS_KINDS = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "contrastive", "cross_entropy",
              "distillation", "huber", "kl_div", "l1", "mse", "nll", "smooth_l1", "sum", "triplet"]


# ----- layers: each case a spec mapping (Rand: random entries) and the example's shape -----------------
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


ELEMENTWISE_SHAPES = [Case("scalar", ()), Case("vector", (5,)), Case("channels", (2, 4)),
                      Case("maps", (2, 2, 3), batch=1)]

LAYER_CASES: dict = {
    "linear": [
        Case("matrix", (4,), {"W": Rand((3, 4)), "b": Rand((3,))}),
        Case("matrix_no_b", (3,), {"W": Rand((2, 3))}, batch=3),
        Case("row", (4,), {"W": Rand((4,)), "b": Rand(())}),
        Case("row_no_b", (2,), {"W": Rand((2,))}, batch=1),
    ],
    "conv1d": [
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
    ],
    "conv2d": [
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
    ],
    "max_pool2d": [
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
    ],
    "avg_pool2d": [
        Case("basic", (2, 4, 4), {"kernel_size": 2}),
        Case("one_map_overlap", (5, 5), {"kernel_size": 3, "stride": 1}),
        Case("rect", (1, 4, 6), {"kernel_size": [2, 3], "stride": [2, 3]}, batch=1),
        Case("padding", (2, 5, 5), {"kernel_size": 3, "stride": 2, "padding": 1}),
        Case("padding_excluded", (4, 5), {"kernel_size": [2, 4], "stride": [1, 2], "padding": [1, 2],
                                          "count_include_pad": False}),
    ],
    "max_pool1d": [
        Case("basic", (6,), {"kernel_size": 2}),
        Case("channels_stride", (2, 7), {"kernel_size": 3, "stride": 2}),
        Case("padding", (2, 7), {"kernel_size": 3, "stride": 2, "padding": 1}),
        Case("overlap", (8,), {"kernel_size": 3, "stride": 1}),
        Case("ties_first", (2, 6), {"kernel_size": 2}, ints=1),
        Case("ties_first_pad_overlap", (7,), {"kernel_size": 3, "stride": 2, "padding": 1}, ints=1, batch=3),
        Case("ties_split", (2, 6), {"kernel_size": 2}, ints=1, conventions={"maxpool_ties": "split"}),
        Case("ties_split_pad_overlap", (7,), {"kernel_size": 4, "stride": 1, "padding": 2}, ints=1,
             conventions={"maxpool_ties": "split"}),
    ],
    "avg_pool1d": [
        Case("basic", (6,), {"kernel_size": 2}),
        Case("channels_stride", (2, 7), {"kernel_size": 3, "stride": 2}),
        Case("padding", (7,), {"kernel_size": 3, "stride": 2, "padding": 1}),
        Case("padding_excluded", (2, 6), {"kernel_size": 4, "stride": 2, "padding": 2, "count_include_pad": False}),
        Case("overlap", (5,), {"kernel_size": 2, "stride": 1}, batch=1),
    ],
    "attention": [
        Case("self_d4", (3, 4), seeds=(1, 2)),
        Case("projections", (3, 2), {"W_q": Rand((2, 2)), "W_k": Rand((2, 2)), "W_v": Rand((3, 2))}, seeds=(1,)),
        Case("biases_mask_scale", (3, 2), {"W_q": Rand((1, 2)), "b_q": Rand((1,)), "W_k": Rand((1, 2)),
                                           "b_k": Rand((1,)), "W_v": Rand((2, 2)), "b_v": Rand((2,)),
                                           "mask": [[1, 0, 1], [1, 1, 0], [0, 0, 1]]}, seeds=(1,)),
        Case("causal_scale", (3, 2), {"is_causal": True, "scale": "1/3", "W_v": Rand((2, 2))}, batch=1),
    ],
    "flatten": [
        Case("maps", (2, 2, 3)),
        Case("maps_channel_last", (3, 2, 2), conventions={"flatten": "channel_last"}),
        Case("matrix", (3, 4), batch=1),
        Case("vector", (5,), batch=1),
    ],
    "rnn": [
        Case("tanh", (2, 2), {"W_hh": Rand((2, 2)), "W_xh": Rand((2, 2)), "b_h": Rand((2,))}, batch=1,
             seeds=(1,)),
        Case("relu_h0", (4, 1), {"W_hh": Rand((3, 3)), "W_xh": Rand((3, 1)), "b_h": Rand((3,)),
                                 "h0": Rand((3,)), "activation": "relu"}),
        Case("identity_scalar_steps", (3,), {"W_hh": Rand((2, 2)), "W_xh": Rand((2, 1)), "activation": "identity"}),
    ],
    "lstm": [
        # two steps of hidden size 1: exact values nest σ(…tanh(…)…) and grow until the value tower lands
        Case("basic", (2, 1), {"W_ih": Rand((4, 1)), "W_hh": Rand((4, 1)), "b_ih": Rand((4,)),
                               "b_hh": Rand((4,)), "h0": Rand((1,)), "c0": Rand((1,))}, batch=1,
             seeds=(1,)),
    ],
    "gru": [
        Case("basic", (2, 1), {"W_ih": Rand((3, 1)), "W_hh": Rand((3, 1)), "b_ih": Rand((3,)),
                               "b_hh": Rand((3,)), "h0": Rand((1,))}, batch=1,
             seeds=(1,)),
    ],
    "relu": ELEMENTWISE_SHAPES + [
        Case("zeros_default", (6,), zeros=True),
        Case("zeros_grad_one", (6,), zeros=True, conventions={"relu_grad_at_zero": 1}),
        Case("zeros_grad_half", (2, 3), zeros=True, conventions={"relu_grad_at_zero": "1/2"}),
    ],
    "sigmoid": ELEMENTWISE_SHAPES[:3],
    "tanh": ELEMENTWISE_SHAPES[:3],
    "softmax": [Case("k3", (3,)), Case("k4", (4,), batch=1)],
    "global_avg_pool": [Case("vector", (5,)), Case("channels", (3, 4)),
                                            Case("maps", (2, 3, 3), batch=1)],
    "leaky_relu": ELEMENTWISE_SHAPES + [
        Case("zeros_default", (6,), zeros=True),
        Case("slope", (2, 3), {"negative_slope": "1/5"}, zeros=True),
    ],
    "elu": ELEMENTWISE_SHAPES[:3] + [
        Case("alpha_zeros", (5,), {"alpha": "3/2"}, zeros=True),
    ],
    "softplus": [
        Case("default", (4,)),
        Case("beta_threshold", (2, 3), {"beta": 2, "threshold": 5}),
    ],
    "gelu": [
        Case("exact", (4,), zeros=True),
        Case("exact_channels", (2, 2), batch=1),
        Case("tanh", (4,), {"approximate": "tanh"}, zeros=True),
    ],
    "log_softmax": [Case("k3", (3,)), Case("k4", (4,), batch=1)],
    "layernorm": [
        Case("default", (4,)),
        Case("eps0_affine", (3,), {"eps": 0, "gamma": Rand((3,)), "beta": Rand((3,))}, batch=3),
        Case("no_affine", (5,), {"elementwise_affine": False, "eps": "1/8"}),
        Case("no_bias", (3,), {"bias": False, "gamma": Rand((3,)), "eps": 0}),
        Case("rows", (2, 3), {"gamma": Rand((3,)), "beta": Rand((3,))}, batch=1),
        Case("two_axes", (2, 3), {"normalized_shape": [2, 3], "gamma": Rand((2, 3)), "eps": 0}),
    ],
    "dropout": [
        Case("one_mask", (4,), {"mask": [1, 0, 1, 1], "p": "1/4"}),
        Case("per_example", (3,), {"mask": [[0, 1, 1], [1, 1, 0]]}),
        Case("maps_p0", (2, 2), {"mask": [[1, 1], [0, 1]], "p": 0}, batch=1),
        Case("eval", (3,), {"train": False, "p": "1/3"}),
        Case("plain", (3,), {"mask": [1, 0, 1], "p": "1/5"}, conventions={"dropout": "plain"}),
        Case("plain_eval", (3,), {"train": False, "p": "1/5"}, conventions={"dropout": "plain"}),
    ],
    "global_max_pool": [
        Case("vector", (5,)), Case("channels", (3, 4)), Case("maps", (2, 3, 3), batch=1),
        Case("ties_first", (3, 4), ints=1), Case("ties_first_maps", (2, 2, 3), ints=1),
        Case("ties_split", (3, 4), ints=1, conventions={"maxpool_ties": "split"}),
        Case("ties_split_vector", (6,), ints=1, conventions={"maxpool_ties": "split"}),
    ],
    "embedding": [
        Case("sequence", (5,), {"W": Rand((4, 3))}, indices=4),
        Case("one_index", (), {"W": Rand((3, 2))}, indices=3, batch=3),
        Case("grid_padding", (2, 3), {"W": Rand((3, 2)), "padding_idx": 1}, indices=3),
        Case("padding_negative", (4,), {"W": Rand((3, 2)), "padding_idx": -1}, indices=3, batch=1),
    ],
    "batchnorm": [
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
    ],
}



# ops that read several nodes: one example shape per input
MULTI_CASES = {
    "add": [Case("two", ((3,), (3,))), Case("three_maps", ((2, 2), (2, 2), (2, 2)))],
    "concat": [Case("vectors", ((2,), (3,))), Case("maps", ((1, 2), (2, 2), (1, 2)))],
    "mul": [Case("vectors", ((3,), (3,))), Case("maps", ((2, 3), (2, 3)))],
    "matmul": [Case("matrix_vector", ((2, 3), (3,))), Case("vector_matrix", ((3,), (3, 2))),
               Case("matrices", ((2, 3), (3, 2))), Case("dot", ((3,), (3,)))],
}


def test_every_registered_kind_has_a_reference_and_cases():
    """The registries, the references and the cases name the same kinds: none silently without a check."""
    assert sorted(LAYERS) == LAYER_KINDS and sorted(LOSSES) == LOSS_KINDS
    assert sorted({*R.LAYERS, *R.MULTI}) == LAYER_KINDS and sorted(R.LOSSES) == LOSS_KINDS
    assert sorted({*LAYER_CASES, *MULTI_CASES}) == LAYER_KINDS and sorted(LOSS_CASES) == LOSS_KINDS
    assert sorted(MULTI_CASES) == sorted(kind for kind in LAYERS if LAYERS[kind].arity != 1)


def engine_layer(kind: str, params: dict, conventions: dict):
    """The engine's layer of a spec mapping (what the engine under test reads)."""
    cls = LAYERS[kind]
    return cls(cls.Params.model_validate(params), 0, Conventions.model_validate(conventions))


def reference_weights(kind: str, params: dict, conventions: dict, example_shape: tuple) -> dict:
    """The trainable tensors the reference reads off the same mapping, as autograd leaves."""
    return {key: torch.tensor(value, dtype=torch.float64, requires_grad=True)
            for key, value in R.layer_weights(kind, params, conventions, example_shape).items()}


def random_batch(rng, case: Case) -> list:
    """The case's examples: indices where the op reads indices (embedding), exact values otherwise."""
    return [random_indices(rng, case.x, case.indices) if case.indices else
            exact_array(rng, case.x, ints=case.ints, zeros=case.zeros, positive=case.positive)
            for _ in range(case.batch)]


def drawn(kind: str, case: Case, rng):
    """The case's spec mapping with its random entries, the engine's layer of it, a batch it accepts."""
    params = fill_params(case.params, rng)
    layer = engine_layer(kind, params, case.conventions)
    xs = random_batch(rng, case)
    for x in xs:
        layer.check_input(x)
    return params, layer, xs


def check_layer(kind: str, case: Case, seed: int, drop_first: bool) -> None:
    """One random draw: forward values, ∂L/∂x and ∂L/∂θ against autograd."""
    rng = random.Random(zlib.crc32(f"{kind}/{case.id}/{seed}".encode()))
    params, layer, xs = drawn(kind, case, rng)
    ys = layer.forward(xs)
    gys = [exact_array(rng, np.shape(y)) for y in ys]
    if drop_first:
        gys[0] = None                   # the engine's "zero upstream gradient" marker
    X = as_torch(np.stack(xs), grad=not case.indices)
    w = reference_weights(kind, params, case.conventions, case.x)
    Y = R.LAYERS[kind](params, case.conventions, X, w)
    close(np.stack(ys), Y, f"{kind} forward")
    if case.forward_only:
        try:
            layer.vjp(xs, ys, gys)
        except EngineError:
            return                      # a stated limitation; once the VJP exists it is checked below
    gxs, grads = layer.vjp(xs, ys, gys)
    Y.backward(torch.stack([torch.zeros(Y.shape[1:]) if g is None else as_torch(g) for g in gys]))
    for m, gx in enumerate(gxs):
        engine_gx = np.zeros(case.x) if gx is None else gx
        torch_gx = X.grad[m] if X.grad is not None else torch.zeros(case.x)   # indices: not differentiated
        close(engine_gx, torch_gx, f"{kind} dL/dx of example {m + 1}")
    assert set(grads) == set(w), f"{kind}: gradients for {sorted(grads)}, the spec's weights {sorted(w)}"
    for key, value in grads.items():
        close(value, w[key].grad, f"{kind} dL/d{key}")


def check_multi(kind: str, case: Case, seed: int) -> None:
    """Forward values and every input's gradient of an op that reads several nodes, against autograd."""
    rng = random.Random(zlib.crc32(f"{kind}/{case.id}/{seed}".encode()))
    layer = engine_layer(kind, fill_params(case.params, rng), case.conventions)
    batches = [[exact_array(rng, shape) for _ in range(case.batch)] for shape in case.x]
    ys = layer.forward_many(batches)
    gys = [exact_array(rng, np.shape(y)) for y in ys]
    gys[0] = None if seed == 0 else gys[0]
    Xs = [as_torch(np.stack(b), grad=True) for b in batches]
    Y = R.MULTI[kind](*Xs)
    close(np.stack(ys), Y, f"{kind} forward")
    gins = layer.vjp_many(batches, ys, gys)
    Y.backward(torch.stack([torch.zeros(Y.shape[1:]) if g is None else as_torch(g) for g in gys]))
    for k, (column, X) in enumerate(zip(gins, Xs)):
        for m, g in enumerate(column):
            close(np.zeros(X.shape[1:]) if g is None else g, X.grad[m], f"{kind} dL/d(input {k + 1}) of example {m + 1}")


LAYER_PARAMS = [pytest.param(kind, case, id=f"{kind}-{case.id}") for kind in LAYER_KINDS
                for case in {**LAYER_CASES, **MULTI_CASES}.get(kind, [])]


@pytest.mark.parametrize("kind, case", LAYER_PARAMS)
def test_layer_matches_torch(kind, case):
    if kind in MULTI_CASES:
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
    x = exact_array(rng, (6,))
    outs = [to_float(engine_layer("conv1d", {"kernels": [["1", "2", "-1"]]}, {"convolution": form}).forward_one(x))
            for form in ("cross_correlation", "convolution")]
    assert not np.allclose(outs[0], outs[1])


def test_dropout_with_the_mask_torch_drew():
    """torch's own F.dropout draws a mask; given that mask, the engine's values and ∂L/∂x are torch's."""
    rng = random.Random(11)
    xs = [exact_array(rng, (6,)) for _ in range(3)]
    X = as_torch(np.stack(xs), grad=True)
    torch.manual_seed(5)
    Y = F.dropout(X, 0.4, training=True)
    mask = (Y != 0).to(torch.int64)
    layer = engine_layer("dropout", {"mask": mask.tolist(), "p": "2/5"}, {})
    ys = layer.forward(xs)
    close(np.stack(ys), Y, "dropout forward")
    gys = [exact_array(rng, (6,)) for _ in range(3)]
    Y.backward(as_torch(np.stack(gys)))
    close(np.stack(layer.vjp(xs, ys, gys)[0]), X.grad, "dropout dL/dx")
    assert 0 < int(mask.sum()) < mask.numel()        # some kept, some dropped: not vacuous


@pytest.mark.parametrize("shape, momentum, eps, unbiased", [((4, 3), "1/10", "1/100", False),
                                                           ((3, 2, 2, 3), "3/10", "1/8", False),
                                                           ((2, 2, 5), "1/2", "1/4", True),
                                                           ((3, 2), None, "1/10", False)])
def test_batchnorm_running_statistics_match_torch(shape, momentum, eps, unbiased):
    """torch.nn.BatchNorm1d/2d in training mode: output, gradients and the running statistics after the step
    (PyTorch's unbiased running variance); then the same module in evaluation mode with those statistics.
    The module is built from the mapping (momentum left out: the table's)."""
    rng = random.Random(zlib.crc32(f"bn-running/{shape}".encode()))
    C = shape[1]
    params = fill_params({"eps": eps, "gamma": Rand((C,)), "beta": Rand((C,)), "running_mean": Rand((C,)),
                          "running_var": Rand((C,), positive=True)}, rng)
    if momentum is not None:
        params["momentum"] = momentum
    if unbiased:
        params["variance"] = "unbiased"            # the normalisation changes; PyTorch's running update does not
    layer = engine_layer("batchnorm", params, {})
    xs = random_batch(rng, Case("x", shape[1:], batch=shape[0]))
    module = (torch.nn.BatchNorm1d if len(shape) < 4 else torch.nn.BatchNorm2d)(
        C, eps=R.number(eps), momentum=R.number(R.option("batchnorm", params, "momentum")), dtype=torch.float64)
    with torch.no_grad():
        for name, key in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "running_mean"),
                          ("running_var", "running_var")):
            getattr(module, name).copy_(R.tensor(params[key]))
    X = as_torch(np.stack(xs), grad=True)
    Y = module(X)
    for x in xs:
        layer.check_input(x)
    ys = layer.forward(xs)
    if not unbiased:
        close(np.stack(ys), Y, "batchnorm forward")
    close(layer.stats["running_mean"], module.running_mean, "running mean after the step")
    close(layer.stats["running_var"], module.running_var, "running variance after the step")
    # evaluation mode with the updated statistics: values and every gradient
    evaluated = engine_layer("batchnorm", {
        "training": False, "eps": eps, "gamma": params["gamma"], "beta": params["beta"],
        "running_mean": [str(v) for v in layer.stats["running_mean"]],
        "running_var": [str(v) for v in layer.stats["running_var"]]}, {})
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
    spec = yaml.safe_load((PROBLEMS / "extra_attention.yaml").read_text(encoding="utf-8"))
    attn, example, key = spec["model"][0]["attention"], spec["data"][0], spec["answers"]
    W = {k: torch.tensor(attn[k], dtype=torch.float64, requires_grad=True) for k in ("W_q", "W_k", "W_v")}
    X = torch.tensor(example["x"], dtype=torch.float64, requires_grad=True)
    Y = F.scaled_dot_product_attention(X @ W["W_q"].T, X @ W["W_k"].T, X @ W["W_v"].T, is_causal=attn["is_causal"])
    L = ((Y - torch.tensor(example["y"], dtype=torch.float64)) ** 2).sum()
    L.backward()
    checks = dict([("loss", L), ("attn(1)", Y), ("x.grad(1)", X.grad)] + [(f"attn.{k}.grad", W[k].grad) for k in W])
    assert set(key) <= set(checks), f"key entries without a PyTorch value: {set(key) - set(checks)}"
    assert "loss" in key and any(k.endswith(".grad") for k in key)
    for name in key:
        np.testing.assert_allclose(np.array(key[name], dtype=float), checks[name].detach().numpy(), atol=5e-5,
                                   err_msg=name)


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


# ----- the PyTorch expressions the ops declare (Layer.torch: the exported check scripts use them) -------
# the cases whose op has no PyTorch expression, and why; every other case must have one
NO_TORCH_EXPRESSION = {
    ("max_pool1d", "ties_split"): "PyTorch's pooling routes a tie to one maximum only",
    ("max_pool1d", "ties_split_pad_overlap"): "PyTorch's pooling routes a tie to one maximum only",
    ("max_pool2d", "ties_split"): "PyTorch's pooling routes a tie to one maximum only",
    ("max_pool2d", "ties_split_overlap"): "PyTorch's pooling routes a tie to one maximum only",
    ("rnn", "identity_scalar_steps"): "nn.RNN has tanh and relu only",
}


def _weight_names(layer) -> dict:
    return {key: f"w[{key!r}]" for key in layer.weights}


@pytest.mark.parametrize("kind, case", [p for p in LAYER_PARAMS if p.values[0] not in MULTI_CASES])
def test_declared_torch_reference_matches_the_reference(kind, case):
    """The expression an op declares for the exported script computes what the reference computes from the
    spec: values and every gradient (the conventions' derivatives too, ReLU′(0))."""
    params, layer, xs = drawn(kind, case, random.Random(zlib.crc32(f"reference/{kind}/{case.id}".encode())))
    expression = layer.torch("X", _weight_names(layer))
    if (kind, case.id) in NO_TORCH_EXPRESSION:
        assert expression is None, f"{kind}/{case.id} has an expression now: drop it from NO_TORCH_EXPRESSION"
        return
    assert expression is not None, f"{kind}/{case.id} declares no PyTorch expression"
    outputs, grads = [], []
    for build in (lambda X, w: eval(expression, {"torch": torch, "F": F, "X": X, "w": w}),   # the op's own text
                  lambda X, w: R.LAYERS[kind](params, case.conventions, X, w)):
        X, w = as_torch(np.stack(xs), grad=not case.indices), reference_weights(kind, params, case.conventions, case.x)
        Y = build(X, w)
        outputs.append(Y.detach().numpy())
        Y.backward(as_torch(np.stack([exact_array(random.Random(5), Y.shape[1:])] * Y.shape[0])))
        grads.append([t.grad for t in [X, *w.values()] if t.grad is not None])
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=RTOL, atol=ATOL, err_msg=expression)
    assert len(grads[0]) == len(grads[1]), expression
    for declared, expected in zip(*grads):
        np.testing.assert_allclose(declared.numpy(), expected.numpy(), rtol=RTOL, atol=ATOL, err_msg=expression)


@pytest.mark.parametrize("kind, case", [pytest.param(kind, case, id=f"{kind}-{case.id}")
                                        for kind in sorted(MULTI_CASES) for case in MULTI_CASES[kind]])
def test_declared_reference_of_an_op_reading_several_nodes(kind, case):
    """add, concat, mul, matmul: their expression of one batch per input is the reference's value."""
    rng = random.Random(zlib.crc32(f"reference/{kind}/{case.id}".encode()))
    layer = engine_layer(kind, fill_params(case.params, rng), case.conventions)
    Xs = [as_torch(np.stack([exact_array(rng, shape) for _ in range(case.batch)])) for shape in case.x]
    names = {f"X{k}": X for k, X in enumerate(Xs)}
    expression = layer.torch(list(names), {})
    assert expression is not None, f"{kind} declares no PyTorch reference"
    declared = eval(expression, {"torch": torch, "F": F, **names})      # the op's own text, not input
    np.testing.assert_allclose(declared.numpy(), R.MULTI[kind](*Xs).numpy(), rtol=RTOL, atol=ATOL,
                               err_msg=expression)


RECURRENT = [pytest.param(kind, case, id=f"{kind}-{case.id}") for kind in ("rnn", "lstm", "gru")
             for case in LAYER_CASES[kind]]


@pytest.mark.parametrize("kind, case", RECURRENT)
def test_a_cells_equations_in_torch_give_the_references_states(kind, case):
    """The cell's step equations as the exported scripts write them (gate order, bias blocks, reset gate
    inside for GRU), unrolled in torch, give the hidden states of the reference (nn.LSTM / nn.GRU)."""
    rng = random.Random(zlib.crc32(f"step/{kind}/{case.id}".encode()))
    params = fill_params(case.params, rng)
    layer = engine_layer(kind, params, case.conventions)
    w = reference_weights(kind, params, case.conventions, case.x)
    names = {key: f"w[{key!r}]" for key in w}
    H = w["W_hh"].shape[1]
    initial = {key: R.tensor(params[key]) if key in params else torch.zeros(H) for key in ("h0", "c0")}
    for x in random_batch(rng, case):
        X = as_torch(x).reshape(x.shape[0], -1)
        scope = {"torch": torch, "F": F, "w": w, "X": X, "h0": initial["h0"]}
        state = {"h": "h0"}
        if kind == "lstm":
            scope["c0"], state["c"] = initial["c0"], "c0"
        hs = []
        for t in range(1, X.shape[0] + 1):
            for name, expression in layer.torch_step(f"X[{t - 1}]", state, names, t):
                scope[name] = eval(expression, scope)                # the op's own text, not input
            state = {k: f"{k}{t}" for k in state}
            hs.append(scope[f"h{t}"])
        expected = R.LAYERS[kind](params, case.conventions, as_torch(x).unsqueeze(0), w)[0]
        np.testing.assert_allclose(torch.stack(hs).detach().numpy(), expected.detach().numpy(), rtol=RTOL, atol=ATOL)


# ----- losses ------------------------------------------------------------------------------------
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



LOSS_CASES: dict = {
    "cross_entropy": [
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
    ],
    "nll": [
        LossCase("log_probabilities", lambda rng: (_log_probabilities(rng, 4), tensor(rng.randrange(4)))),
        LossCase("scores", lambda rng: (exact_array(rng, (3,)), tensor(rng.randrange(3)))),
        LossCase("weight", lambda rng: (exact_array(rng, (3,)), tensor(rng.randrange(3))), {"weight": ["1/2", "3", "2"]}),
    ],
    "binary_cross_entropy_with_logits": [
        LossCase("labels", _logits_and_labels()),
        LossCase("soft_labels", _logits_and_labels(soft=True)),
        LossCase("score_zero", lambda rng: (tensor([0, Fraction(rng.randint(1, 6), 2)]), tensor([1, 0]))),
        LossCase("pos_weight", _logits_and_labels((3,)), {"pos_weight": ["2", "1/2", "3"]}),
        LossCase("weight_pos_weight_matrix", _logits_and_labels((2, 3), soft=True),
                 {"weight": ["1", "2", "1/3"], "pos_weight": "3/2"}),
    ],
    "l1": [
        LossCase("random", _entrywise),
        LossCase("at_zero", _pair_at_kinks(1)),
        LossCase("at_zero_half", _pair_at_kinks(1), {"grad_at_zero": "1/2"}),
    ],
    "smooth_l1": [
        LossCase("random", _entrywise),
        LossCase("beta", _entrywise, {"beta": "5/2"}),
        LossCase("at_kinks", _pair_at_kinks(Fraction(1, 2)), {"beta": "1/2"}),
        LossCase("beta_zero", _pair_at_kinks(1), {"beta": 0}),
    ],
    "huber": [
        LossCase("random", _entrywise),
        LossCase("delta", _entrywise, {"delta": "3/2"}),
        LossCase("at_kinks", _pair_at_kinks(2), {"delta": 2}),
    ],
    "kl_div": [
        LossCase("probabilities", lambda rng: (_log_probabilities(rng, 3), probabilities(rng, 3))),
        LossCase("target_with_zero", lambda rng: (exact_array(rng, (4,)), tensor([Fraction(1, 2), 0, Fraction(1, 4), Fraction(1, 4)]))),
        LossCase("log_target", lambda rng: (exact_array(rng, (3,)), exact_array(rng, (3,), lo=-4, hi=0)),
                 {"log_target": True}),
    ],
    "distillation": [
        LossCase("temperature_1", lambda rng: (exact_array(rng, (3,), lo=-4, hi=4), exact_array(rng, (3,), lo=-4, hi=4))),
        LossCase("temperature_2", lambda rng: (exact_array(rng, (4,), lo=-4, hi=4), exact_array(rng, (4,), lo=-4, hi=4)),
                 {"temperature": 2}),
        LossCase("temperature_half", lambda rng: (exact_array(rng, (2,), lo=-2, hi=2), exact_array(rng, (2,), lo=-2, hi=2)),
                 {"temperature": "1/2"}),
    ],
    "binary_cross_entropy": [
        LossCase("label_1", lambda rng: (unit_interval(rng, ()), tensor(1))),
        LossCase("label_0_vector", lambda rng: (unit_interval(rng, (1,)), tensor(0))),
        LossCase("soft_label", lambda rng: (unit_interval(rng, ()), tensor(Fraction(2, 5)))),
    ],
    "triplet": [
        LossCase("pytorch", _rows(3, 0)),
        LossCase("margin_p1", _rows(3, 0), {"margin": "5/2", "p": 1}),
        LossCase("p3_eps", _rows(3, 0), {"margin": "1/2", "p": 3, "eps": "1/1000000"}),
        LossCase("squared", _rows(3, 0), {"margin": 4, "squared": True}),
        LossCase("squared_p1", _rows(3, 0), {"margin": 2, "squared": True, "p": 1}),
    ],
    "contrastive": [
        LossCase("positive", _rows(2, 1)),
        LossCase("negative", _rows(2, 0), {"margin": 6}),
        LossCase("negative_default_margin", lambda rng: (exact_array(rng, (2, 2), lo=-1, hi=1, dens=(5, 6, 8)),
                                                         tensor(0))),     # closer than the margin 1: active
        LossCase("half_random_label", _rows(2), {"margin": 5, "half": True}),
        LossCase("unsquared", _rows(2), {"margin": 4, "squared": False}),
        LossCase("p1_eps", _rows(2), {"margin": 5, "p": 1, "eps": "1/1000"}),
    ],
    "mse": [
        LossCase("vector", lambda rng: (exact_array(rng, (3,)), exact_array(rng, (3,)))),
        LossCase("vector_half", lambda rng: (exact_array(rng, (3,)), exact_array(rng, (3,))), {"half": True}),
        LossCase("scalar", lambda rng: (exact_array(rng, ()), exact_array(rng, ()))),
        LossCase("matrix_half", lambda rng: (exact_array(rng, (2, 2)), exact_array(rng, (2, 2))), {"half": True}),
    ],
    "sum": [            # no target: T is a placeholder
        LossCase("vector", lambda rng: (exact_array(rng, (3,)), tensor(0))),
        LossCase("scalar", lambda rng: (exact_array(rng, ()), tensor(0))),
        LossCase("matrix", lambda rng: (exact_array(rng, (2, 3)), tensor(0))),
    ],
}




LOSS_PARAMS = [pytest.param(kind, case, id=f"{kind}-{case.id}") for kind in LOSS_KINDS for case in LOSS_CASES[kind]]


def engine_loss(kind: str, params: dict):
    cls = LOSSES[kind]
    return cls(cls.Params.model_validate(params))


@pytest.mark.parametrize("kind, case", LOSS_PARAMS)
def test_loss_matches_torch(kind, case):
    loss = engine_loss(kind, case.params)
    for seed in SEEDS:
        rng = random.Random(zlib.crc32(f"{kind}/{case.id}/{seed}".encode()))
        p, y = case.make(rng)
        loss.check_target(p, y)
        P, T = as_torch(p, grad=True), as_torch(y)
        L = R.LOSSES[kind](case.params, {}, P, T)
        close(loss.value(p, y), L, f"{kind} value")
        L.backward()
        close(loss.grad(p, y), P.grad, f"{kind} dL/dp")


@pytest.mark.parametrize("kind, case", [p for p in LOSS_PARAMS if LOSSES[p.values[0]].fuses_with])
def test_fused_loss_gradient_matches_torch(kind, case):
    """∂L/∂s = p − y through the final activation, against autograd through that activation."""
    loss = engine_loss(kind, case.params)
    act_kind = loss.fuses_with
    activation = engine_layer(act_kind, {}, {})
    for seed in SEEDS:
        rng = random.Random(zlib.crc32(f"fused/{kind}/{case.id}/{seed}".encode()))
        p_shape, y = case.make(rng)
        s = exact_array(rng, np.shape(p_shape), lo=-4, hi=4, dens=(1, 2, 3))
        p = activation.forward_one(s)
        S = as_torch(s, grad=True)
        P = R.LAYERS[act_kind]({}, {}, S.unsqueeze(0), {})[0]
        L = R.LOSSES[kind](case.params, {}, P, as_torch(y))
        close(loss.value(p, y), L, f"{kind} after {act_kind}: value")
        L.backward()
        close(loss.fused_grad(p, y), S.grad, f"{kind} after {act_kind}: dL/ds")


@pytest.mark.parametrize("smoothing", ["0", "1/5"])
def test_weighted_cross_entropy_against_torch_mean(smoothing):
    """PyTorch's reduction='mean' with class weights divides by Σ_n w_{y_n}, not by N: the engine's
    per-example losses L⁽ⁿ⁾ (PyTorch's reduction='none') summed and divided so give torch's value and
    gradient; the network's minibatch mean (÷ N) differs from it by N/Σ_n w_{y_n}, as its convention says."""
    params = {"weight": ["1/2", "2", "3/2"], "label_smoothing": smoothing}
    loss = engine_loss("cross_entropy", params)
    softmax = engine_layer("softmax", {}, {})
    for seed in SEEDS:
        rng = random.Random(seed)
        s = [exact_array(rng, (3,), lo=-4, hi=4, dens=(1, 2)) for _ in range(4)]
        y = [tensor(rng.randrange(3)) for _ in s]
        p = [softmax.forward_one(v) for v in s]
        S = as_torch(np.stack(s), grad=True)
        Y = torch.tensor([int(v[()]) for v in y])
        W = R.tensor(params["weight"])
        L = F.cross_entropy(S, Y, weight=W, label_smoothing=R.number(smoothing), reduction="mean")
        L.backward()
        norm = sum(Fraction(params["weight"][int(v[()])]) for v in y)
        close(sum(loss.value(pm, ym) for pm, ym in zip(p, y)) / norm, L, "weighted mean")
        close(np.stack([to_float(loss.fused_grad(pm, ym)) / norm for pm, ym in zip(p, y)]), S.grad,
              "weighted mean dL/ds")


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


# what the whole-problem oracles must recompute: every loss, distance, embedding, gradient and update
RECOMPUTED = r"loss(\(\d+\))?|d(_ap|_an)?(\(\d+\))?|e\d+|.*\.(grad|updated)(\(\d+\))?"
# problems of these kinds that the oracles of torch_problems.py do not read, and where they are checked
ELSEWHERE = {"extra_bidirectional_gru": "a stack: test_recurrent_stacked.py (torch.nn.GRU)"}
ORACLE_PROBLEMS = [pytest.param(path, id=path.stem) for path in sorted(PROBLEMS.glob("*.yaml"))
                   if yaml.safe_load(path.read_text(encoding="utf-8")).get("kind", "network")
                   in torch_problems.INTERPRETERS and path.stem not in ELSEWHERE]


def compare_with_oracle(results: dict, expected: dict, what: str) -> None:
    """Every value both have agrees (1e-9), and every loss, gradient and update of `results` is in `expected`."""
    import re

    missing = [name for name in results if re.fullmatch(RECOMPUTED, name) and name not in expected]
    assert not missing, f"{what}: the oracle does not recompute {missing}"
    compared = 0
    for name, value in expected.items():
        if name in results:
            actual = np.asarray(to_float(results[name]), dtype=float)
            np.testing.assert_allclose(actual.reshape(np.shape(value)), value, rtol=RTOL, atol=ATOL,
                                       err_msg=f"{what}: {name}")
            compared += 1
    assert compared, f"{what}: nothing compared"


@pytest.mark.parametrize("path", ORACLE_PROBLEMS)
def test_problem_matches_its_torch_oracle(path):
    """Every network, siamese and recurrent problem recomputed from its YAML by torch_problems.py."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    compare_with_oracle(solve_file(path).results, torch_problems.solve(spec), path.name)


# ----- the tables against PyTorch itself ----------------------------------------------------------
# the tables' entries that are PyTorch's own defaults: (kind, option) → (torch callable, its parameter)
PYTORCH_DEFAULTS = {
    ("leaky_relu", "negative_slope"): (torch.nn.LeakyReLU, "negative_slope"),
    ("elu", "alpha"): (torch.nn.ELU, "alpha"),
    ("softplus", "beta"): (torch.nn.Softplus, "beta"),
    ("softplus", "threshold"): (torch.nn.Softplus, "threshold"),
    ("gelu", "approximate"): (torch.nn.GELU, "approximate"),
    ("layernorm", "eps"): (torch.nn.LayerNorm, "eps"),
    ("layernorm", "elementwise_affine"): (torch.nn.LayerNorm, "elementwise_affine"),
    ("layernorm", "bias"): (torch.nn.LayerNorm, "bias"),
    ("batchnorm", "momentum"): (torch.nn.BatchNorm1d, "momentum"),
    ("dropout", "p"): (torch.nn.Dropout, "p"),
    ("max_pool2d", "stride"): (torch.nn.MaxPool2d, "stride"),
    ("max_pool2d", "padding"): (torch.nn.MaxPool2d, "padding"),
    ("avg_pool2d", "count_include_pad"): (torch.nn.AvgPool2d, "count_include_pad"),
    ("conv2d", "stride"): (torch.nn.Conv2d, "stride"),
    ("conv2d", "dilation"): (torch.nn.Conv2d, "dilation"),
    ("conv2d", "groups"): (torch.nn.Conv2d, "groups"),
    ("embedding", "padding_idx"): (torch.nn.Embedding, "padding_idx"),
    ("rnn", "activation"): (torch.nn.RNN, "nonlinearity"),
    ("cross_entropy", "label_smoothing"): (torch.nn.CrossEntropyLoss, "label_smoothing"),
    ("smooth_l1", "beta"): (torch.nn.SmoothL1Loss, "beta"),
    ("huber", "delta"): (torch.nn.HuberLoss, "delta"),
    ("kl_div", "log_target"): (torch.nn.KLDivLoss, "log_target"),
    ("triplet", "margin"): (torch.nn.TripletMarginLoss, "margin"),
    ("triplet", "p"): (torch.nn.TripletMarginLoss, "p"),
    # the entries that differ from PyTorch on purpose: the spec's meaning, checked against the engine
    ("batchnorm", "eps"): (torch.nn.BatchNorm1d, "eps"),
    ("batchnorm", "affine"): (torch.nn.BatchNorm1d, "affine"),
    ("triplet", "eps"): (torch.nn.TripletMarginLoss, "eps"),
}
NOT_PYTORCHS = {("batchnorm", "eps"), ("batchnorm", "affine"), ("triplet", "eps")}


def _default(fn, name):
    if fn is torch.nn.RNN:             # nn.RNN takes **kwargs: its default is documented, 'tanh'
        return "tanh"
    default = inspect.signature(fn).parameters[name].default
    return None if default is inspect.Parameter.empty else default


def _same(ours, theirs) -> bool:
    if isinstance(theirs, (bool, str)) or theirs is None or isinstance(ours, bool):
        return ours == theirs
    return R.number(ours) == pytest.approx(float(theirs), rel=1e-12)


@pytest.mark.parametrize("kind, name", list(PYTORCH_DEFAULTS))
def test_the_tables_defaults_are_pytorchs_where_they_say_so(kind, name):
    fn, theirs = PYTORCH_DEFAULTS[(kind, name)]
    ours = R.OPTIONS[kind][name]
    assert _same(ours, _default(fn, theirs)) != ((kind, name) in NOT_PYTORCHS), (kind, name, ours)


@pytest.mark.parametrize("kind", sorted(R.OPTIMIZERS))
def test_the_optimizer_table_is_torch_optims(kind):
    _, opt = R.optimizer(kind, [torch.zeros(1, requires_grad=True)])
    for name, ours in R.OPTIMIZERS[kind].items():
        theirs = inspect.signature(type(opt).__init__).parameters[name].default
        assert (tuple(R.number(b) for b in ours) == pytest.approx(theirs) if isinstance(ours, list)
                else _same(ours, theirs)), (kind, name)


def test_pytorch_does_what_the_table_says():
    """What the tables say PyTorch does, asked of PyTorch: max pooling's tie rule, batchnorm's variances,
    label smoothing ε/K, SGD's momentum form, dropout's scaling, flatten's order, conv's unflipped kernel."""
    X = torch.tensor([[[[1.0, 1.0], [1.0, 0.0]]]], requires_grad=True)           # a window of tied maxima
    F.max_pool2d(X, 2).sum().backward()
    assert X.grad.flatten().tolist() == [1, 0, 0, 0]                              # first in row-major order
    X = torch.tensor([[1.0], [2.0], [4.0]])
    bn = torch.nn.BatchNorm1d(1, affine=False, momentum=1.0)
    Y = bn(X)
    assert torch.allclose(Y, (X - X.mean()) / torch.sqrt(X.var(correction=0) + bn.eps))   # biased in training
    assert torch.allclose(bn.running_var, X.var(correction=1))                            # unbiased running
    logits, eps = torch.tensor([[1.0, -2.0, 0.5]]), 0.3
    q = (1 - eps) * F.one_hot(torch.tensor(0), 3) + eps / 3
    assert torch.allclose(F.cross_entropy(logits, torch.tensor([0]), label_smoothing=eps),
                          -(q * torch.log_softmax(logits, -1)).sum())                    # ε/K on every class
    theta = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([theta], lr=0.5, momentum=0.9)
    for g in (1.0, 2.0):
        theta.grad = torch.tensor([g])
        opt.step()
    assert opt.state[theta]["momentum_buffer"].item() == pytest.approx(0.9 * 1 + 2)        # v ← μv + g
    assert theta.item() == pytest.approx(-0.5 * 1 - 0.5 * 2.9)
    torch.manual_seed(0)
    Y = F.dropout(torch.ones(100), 0.25, training=True)
    assert set(Y.tolist()) == {0.0, 1 / 0.75}                                            # inverted
    assert torch.equal(torch.nn.Flatten()(torch.arange(8.0).reshape(1, 2, 2, 2)), torch.arange(8.0).reshape(1, 8))
    assert F.conv1d(torch.tensor([[[1.0, 2.0]]]), torch.tensor([[[1.0, 0.0]]])).item() == 1.0   # not flipped
    assert torch.nn.functional.leaky_relu(torch.tensor(-1.0)).item() == pytest.approx(-0.01)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_the_gate_equations_of_the_table_are_pytorchs(kind):
    """torch_problems.cell_steps writes LSTM's and GRU's equations as GATES says: torch.nn's
    modules with the same weights give the same states."""
    torch.manual_seed(3)
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](2, 3, dtype=torch.float64)
    w = {"W_ih": module.weight_ih_l0, "W_hh": module.weight_hh_l0, "b_ih": module.bias_ih_l0, "b_hh": module.bias_hh_l0}
    X, h0, c0 = torch.randn(4, 2), torch.randn(3), torch.randn(3)
    states = (h0[None], c0[None]) if kind == "lstm" else h0[None]
    expected = module(X, states)[0]
    steps = torch_problems.cell_steps(kind, {}, {}, w, X, h0, c0 if kind == "lstm" else None)
    assert torch.allclose(torch.stack([s["h"] for s in steps]), expected)
