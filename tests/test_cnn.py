"""2D convolution, 2D pooling, flatten and the inferred image size, checked against PyTorch autograd."""

from fractions import Fraction
import random

import numpy as np
import pytest
import torch

from examsolver.engine.ops.conv2d import Conv2d
from examsolver.engine.ops.pool2d import MaxPool2d
from examsolver.engine.scalar import ln_prime
from examsolver.pipeline import solve_document, solve_file
from examsolver.engine.tensor import to_float
from examsolver.errors import SpecError
from examsolver.spec.load import load_text

from conftest import PROBLEMS

F = torch.nn.functional


@pytest.fixture(scope="module")
def t2():
    return solve_file(PROBLEMS / "000_t2.yaml")


def _t2_torch():
    x = torch.zeros(1, 1, 6, 6, dtype=torch.float64)
    x[0, 0, 3, 4] = x[0, 0, 4, 4] = 1
    k = torch.zeros(2, 1, 3, 3, dtype=torch.float64)
    k[:, 0, 1, 1] = 1
    k.requires_grad_(True)
    W = torch.tensor([[0, 0, 0, 1, 0, 0, 0, 0], [1, 1, 1, 0, 1, 1, 1, 1]], dtype=torch.float64)
    s = F.linear(torch.flatten(F.max_pool2d(F.conv2d(x, k), 2, 2), 1), W)
    loss = F.cross_entropy(s, torch.tensor([0]))
    loss.backward()
    return s, loss, k.grad


def test_t2_forward_loss_and_kernel_gradients_match_torch(t2):
    s, loss, k_grad = _t2_torch()
    assert np.allclose(to_float(t2.results["s"]), s.detach().numpy()[0])
    assert np.allclose(to_float(t2.results["p"]), torch.softmax(s, 1).detach().numpy()[0])
    assert t2.results["loss"] == ln_prime(2)
    assert np.allclose(float(t2.results["loss"]), loss.item())
    assert np.allclose(to_float(t2.results["conv1.W.grad"]), k_grad.numpy()[:, 0])


def test_t2_answer_key_matches(t2):
    assert t2.checks and all(c.status == "match" for c in t2.checks), [(c.name, c.status) for c in t2.checks]


def test_t2_image_size_is_inferred_and_padding_one_rejected(t2):
    assert list(t2.results["input_shape"]) == [6, 6]
    keys = [b.key for s in t2.sections for b in s.blocks if hasattr(b, "key")]
    assert "input_size.alternative_outside" in keys and "input_size.floor" in keys


def test_t2_every_pooling_window_is_a_flagged_tie(t2):
    ties = [w for w in t2.warnings if w.key == "warning.maxpool_ties"]
    assert len(ties) == 1 and ties[0].args["count"] == 8 and ties[0].args["total"] == 8


def _t2_variant(**conventions):
    text = (PROBLEMS / "000_t2.yaml").read_text(encoding="utf-8")
    conv = ", ".join(f"{k}: {v}" for k, v in conventions.items())
    text = text.replace("conventions: {maxpool_ties: first, flatten: channel_first}", f"conventions: {{{conv}}}")
    return solve_document(load_text(text, "000_t2_variant.yaml"), answers={})


def test_split_ties_share_the_window_gradient():
    # By hand: with split, every all-zero window spreads g/4 = ±1/8 over its four positions and the
    # window (1, 1) gives g/2 to each of its two ones at (2, 3) and (3, 3).  With the ones of x at
    # (3, 4) and (4, 4), ∂L/∂K[u, v] = G[3 − u, 4 − v] + G[4 − u, 4 − v] (indices inside 0…3).
    # PyTorch has no split rule, so this is the independent check.
    grad = _t2_variant(maxpool_ties="split").results["conv1.W.grad"]
    e = Fraction(1, 8)
    assert grad[0].tolist() == [[0, -2 * e, 0], [0, -4 * e, 0], [0, -e, e]]
    assert grad[1].tolist() == [[0, 2 * e, 0], [0, 4 * e, 0], [0, 3 * e, e]]


def test_channel_last_flatten_reorders_the_fc_inputs():
    # channel-last interleaves the two (equal) maps: [0, 0, 0, 0, 0, 0, 1, 1] → s = [0, 2]
    sol = _t2_variant(flatten="channel_last")
    assert list(sol.results["h3"]) == [0, 0, 0, 0, 0, 0, 1, 1]
    assert list(sol.results["s"]) == [0, 2]


def _random_spec(seed: int, flatten: str, convolution: str, ties: str = "first") -> tuple[str, dict]:
    rng = random.Random(seed)

    def q():
        return Fraction(rng.randint(-30, 30), rng.randint(1, 9))

    x = [[[q() for _ in range(7)] for _ in range(7)] for _ in range(2)]
    k = [[[[q() for _ in range(3)] for _ in range(3)] for _ in range(2)] for _ in range(3)]
    b = [q() for _ in range(3)]
    # conv (7 → 4 with stride 2, padding 1) → max pool 2/1 (4 → 3, overlapping) → avg pool 2/1 (3 → 2)
    W = [[q() for _ in range(3 * 2 * 2)] for _ in range(3)]
    y = [q() for _ in range(3)]     # squared loss: exact without exp/ln of large logits
    text = f"""
id: random_cnn
model:
  - conv2d: {{name: conv1, kernels: {_lit(k)}, b: {_lit(b)}, stride: 2, padding: 1}}
  - relu
  - max_pool2d: {{name: pool1, kernel_size: 2, stride: 1}}
  - avg_pool2d: {{name: pool2, kernel_size: 2, stride: 1}}
  - flatten
  - linear: {{name: fc, W: {_lit(W)}}}
loss: mse
data: {{x: {_lit(x)}, y: {_lit(y)}}}
conventions: {{flatten: {flatten}, convolution: {convolution}, maxpool_ties: {ties}}}
tasks: [forward, {{gradient: {{wrt: [conv1.W, conv1.b, fc.W, x]}}}}]
"""
    return text, {"x": x, "k": k, "b": b, "W": W, "y": y}


def _lit(nested) -> str:
    if isinstance(nested, list):
        return "[" + ", ".join(_lit(v) for v in nested) + "]"
    return f'"{nested}"' if isinstance(nested, Fraction) and nested.denominator != 1 else str(nested)


def _t(nested):
    return torch.tensor(np.array(nested, dtype=float), dtype=torch.float64)


@pytest.mark.parametrize("seed,flatten,convolution", [(1, "channel_first", "cross_correlation"),
                                                       (2, "channel_last", "cross_correlation"),
                                                       (3, "channel_first", "convolution")])
def test_random_cnn_matches_torch(seed, flatten, convolution):
    text, v = _random_spec(seed, flatten, convolution)
    sol = solve_document(load_text(text, "random.yaml"), answers={})
    x, k, b, W = (_t(v[n]).requires_grad_(True) for n in ("x", "k", "b", "W"))
    kernels = torch.flip(k, dims=(2, 3)) if convolution == "convolution" else k
    h = F.avg_pool2d(F.max_pool2d(torch.relu(F.conv2d(x[None], kernels, b, stride=2, padding=1)), 2, 1), 2, 1)
    h = h.permute(0, 2, 3, 1) if flatten == "channel_last" else h
    s = F.linear(torch.flatten(h, 1), W)
    loss = ((s[0] - _t(v["y"])) ** 2).sum()
    loss.backward()
    assert np.allclose(float(sol.results["loss"]), loss.item())
    for name, ref in (("conv1.W.grad", k.grad), ("conv1.b.grad", b.grad), ("fc.W.grad", W.grad), ("x.grad", x.grad)):
        assert np.allclose(to_float(sol.results[name]), ref.numpy()), name


def test_param_shapes_follow_pytorch():
    assert Conv2d.param_shapes({"in_channels": 3, "out_channels": 8, "kernel_size": 3, "bias": True}) == {
        "W": (8, 3, 3, 3), "b": (8,)}
    assert Conv2d.param_shapes({"in_channels": 1, "out_channels": 2, "kernel_size": [3, 5], "bias": False}) == {
        "W": (2, 1, 3, 5)}
    assert MaxPool2d.param_shapes({"kernel_size": 2}) == {}


def test_inference_through_padding_and_stride():
    # conv 5×5, padding 2, stride 2 then max pool 2: FC width 3·4·4 = 48 → 4 → 8 → (8 − 1)·2 + 5 − 4 = 15
    text = """
id: infer
model:
  - conv2d: {name: c, kernels: "[[[0,0,0,0,0]]*5]*3", stride: 2, padding: 2}
  - max_pool2d: {kernel_size: 2}
  - flatten
  - linear: {W: "[[0]*48]"}
data: {x: {shape: infer, entries: [{at: [14, 14], value: 1}]}}
tasks: [infer_input_size, forward]
"""
    text = text.replace('"[[[0,0,0,0,0]]*5]*3"', _lit([[[0] * 5 for _ in range(5)] for _ in range(3)]))
    text = text.replace('"[[0]*48]"', _lit([[0] * 48]))
    sol = solve_document(load_text(text, "infer.yaml"), answers={})
    assert list(sol.results["input_shape"]) == [15, 15]
    assert sol.results["h1"].shape == (3, 8, 8)


def test_inference_through_dilation():
    # conv 3×3 with dilation 2 spans 5: FC width 2·4·4 = 32 → 4 → (4 − 1)·1 + 5 = 8, as PyTorch's shape rule
    text = f"""
id: infer_dilated
model:
  - conv2d: {{name: c, kernels: {_lit([[[0] * 3 for _ in range(3)] for _ in range(2)])}, dilation: 2}}
  - flatten
  - linear: {{W: {_lit([[0] * 32])}}}
data: {{x: {{shape: infer, entries: [{{at: [7, 7], value: 1}}]}}}}
tasks: [infer_input_size, forward]
"""
    sol = solve_document(load_text(text, "infer.yaml"), answers={})
    assert list(sol.results["input_shape"]) == [8, 8]
    assert sol.results["h1"].shape == tuple(F.conv2d(torch.zeros(1, 1, 8, 8), torch.zeros(2, 1, 3, 3), dilation=2).shape[1:])


def test_inference_refuses_a_model_that_forgets_the_size():
    text = """
id: gap
model:
  - conv2d: {kernels: [[[1]]]}
  - flatten
  - linear: {W: [[1, 2, 3]]}
data: {x: {shape: infer, entries: [{at: [0, 0]}]}}
tasks: [infer_input_size]
"""
    with pytest.raises(SpecError, match="not a square"):
        solve_document(load_text(text, "bad.yaml"), answers={})


def test_sparse_entry_outside_given_shape_is_a_spec_error():
    text = """
id: sparse
model: [{conv2d: {kernels: [[[1]]]}}]
data: {x: {shape: [2, 2], entries: [{at: [2, 0]}]}}
"""
    with pytest.raises(SpecError, match="outside"):
        solve_document(load_text(text, "bad.yaml"), answers={})


@pytest.mark.parametrize("lang", ["hr", "en"])
def test_cli_renders_t2_in_every_format(lang):
    from typer.testing import CliRunner

    from examsolver.cli import app

    for fmt in ("term", "md", "json"):
        result = CliRunner().invoke(app, ["solve", str(PROBLEMS / "000_t2.yaml"), "--lang", lang, "--format", fmt])
        assert result.exit_code == 0, result.output
    assert ("sažimanje maksimumom" if lang == "hr" else "max pooling") in result.output.lower() or fmt == "json"


DILATED_GROUPED = """
id: dilated_grouped
model:
  - conv2d: {name: c, kernels: [[[[1, 0], [0, -1]]], [[[1, 1], [0, 1]]], [[[0, 1], [1, 0]]], [[[2, 0], [1, 1]]]],
             b: [0, 1, 0, -1], dilation: [2, 1], groups: 2, stride: [1, 2], padding: 1}
  - batchnorm: {name: bn, training: false, running_mean: [0, 1, 0, 1], running_var: [1, 4, 1, 4]}
  - max_pool2d: {kernel_size: 2}
  - flatten
  - linear: {name: fc, W: [[1, -1, 1, 1]], b: [0]}
loss: mse
data:
  - {x: [[[1, 2, 0, 1], [0, 1, 3, 2], [2, 0, 1, 1]], [[1, 0, 0, 2], [1, 2, 1, 0], [0, 1, 2, 1]]], y: [1]}
tasks: [forward, {gradient: {wrt: [c.W, c.b, x]}}]
"""


@pytest.mark.parametrize("lang", ["hr", "en"])
def test_dilated_grouped_convolution_steps(lang, tmp_path):
    """The worked steps of a dilated, grouped, strided, padded conv2d (and batchnorm in evaluation mode)
    render, and each ∂L/∂dil(w) step holds ∂L/∂w at its taps (every d-th entry)."""
    from typer.testing import CliRunner

    from examsolver.cli import app
    from examsolver.mathnodes import Call, Deriv
    from examsolver.solution import Step

    sol = solve_document(load_text(DILATED_GROUPED, "dilated_grouped.yaml"), answers={})
    steps = [b for sec in sol.sections for b in sec.blocks if isinstance(b, Step)]
    dilated = [i for i, st in enumerate(steps) if isinstance(st.lhs, Deriv) and isinstance(st.lhs.den, Call)
               and st.lhs.den.fn == "dil"]
    assert len(dilated) == 4                       # one per kernel (one input channel each: groups)
    for i in dilated:
        taps = np.asarray(steps[i].result, dtype=object)[::2, ::1]
        assert taps.tolist() == np.asarray(steps[i + 1].result, dtype=object).tolist()
    grads = np.stack([np.asarray(steps[i + 1].result, dtype=object) for i in dilated])
    assert grads.tolist() == sol.results["c.W.grad"][:, 0].tolist()
    path = tmp_path / "dilated_grouped.yaml"
    path.write_text(DILATED_GROUPED, encoding="utf-8")
    result = CliRunner().invoke(app, ["solve", str(path), "--lang", lang])
    assert result.exit_code == 0, result.output
    assert ("dilatacija" if lang == "hr" else "dilation") in result.output


POOLED_SEQUENCE = """
id: pooled_sequence
model:
  - conv1d: {name: c, kernels: [[1, -1]], b: [0], dilation: 2}
  - max_pool1d: {name: mp, kernel_size: 2, stride: 1, padding: 1}
  - avg_pool1d: {name: ap, kernel_size: 2}
  - flatten
  - linear: {name: fc, W: [[1, 2]]}
loss: mse
data:
  - {x: [1, 3, 0, 2, 5, 1], y: [1]}
tasks: [forward, {gradient: {wrt: [c.W, x]}}]
"""


@pytest.mark.parametrize("lang", ["hr", "en"])
def test_pooled_sequence_steps_render_and_match_torch(lang, tmp_path):
    """1D pooling's worked steps (padded, overlapping max pooling; average pooling) in both languages, and
    the gradients they end in against torch."""
    from typer.testing import CliRunner

    from examsolver.cli import app

    path = tmp_path / "pooled.yaml"
    path.write_text(POOLED_SEQUENCE, encoding="utf-8")
    result = CliRunner().invoke(app, ["solve", str(path), "--lang", lang])
    assert result.exit_code == 0, result.output
    assert ("sažimanje maksimumom" if lang == "hr" else "max pooling") in result.output.lower()
    x = torch.tensor([[[1.0, 3, 0, 2, 5, 1]]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([[[1.0, -1]]], dtype=torch.float64, requires_grad=True)
    h = F.avg_pool1d(F.max_pool1d(F.conv1d(x, w, torch.zeros(1, dtype=torch.float64), dilation=2), 2, 1, 1), 2)
    o = h.flatten(1) @ torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    ((o - 1) ** 2).sum().backward()
    results = solve_document(load_text(POOLED_SEQUENCE, "pooled.yaml"), answers={}).results
    assert np.allclose(to_float(results["c.W.grad"]), w.grad.numpy()[0])
    assert np.allclose(to_float(results["x.grad(1)"] if "x.grad(1)" in results else results["x.grad"]), x.grad.numpy()[0, 0])
