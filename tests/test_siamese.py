"""Siamese kind: contrastive and triplet losses over a shared model, checked against PyTorch autograd."""

import numpy as np
import pytest
import torch

from examsolver.pipeline import solve_document, solve_file
from examsolver.engine.tensor import to_float
from examsolver.errors import SpecError
from examsolver.spec.load import load_text

from conftest import PROBLEMS

F = torch.nn.functional

XP1 = [1.0, 1.0, 1.3, 1.0, 1.0, 1.3]
XP2 = [3.3, 3.3, 2.7, 3.3, 3.3, 2.7]


@pytest.fixture(scope="module")
def t6():
    return solve_file(PROBLEMS / "000_t6.yaml")


def _embed(x, w, b):
    """conv1d + global average pooling, as PyTorch computes it (w: (C_out, 1, K))."""
    return F.conv1d(torch.tensor([[x]], dtype=torch.float64), w, b).mean(dim=2)[0]


def _params(kernels, bias):
    w = torch.tensor(kernels, dtype=torch.float64)[:, None, :].requires_grad_(True)
    b = torch.tensor(bias, dtype=torch.float64).requires_grad_(True)
    return w, b


def test_t6_positive_pair_matches_torch(t6):
    w, b = _params([[1 / 3, 1 / 3, 1 / 3]], [-0.1])
    e1, e2 = _embed(XP1, w, b), _embed(XP2, w, b)
    loss = ((e1 - e2) ** 2).sum()
    loss.backward()
    assert np.allclose(to_float(t6.results["e1"]), e1.detach().numpy())
    assert np.allclose(to_float(t6.results["e2"]), e2.detach().numpy())
    assert np.isclose(float(t6.results["loss(1)"]), loss.item())
    assert np.allclose(to_float(t6.results["conv1.W.grad(1)"]), w.grad.numpy()[:, 0])
    assert np.allclose(to_float(t6.results["conv1.b.grad(1)"]), b.grad.numpy())


def test_t6_negative_pair_is_beyond_the_default_margin(t6):
    assert t6.results["loss(2)"] == 0 and t6.results["d(2)"] == 2
    assert any(c.key == "convention.margin_default" for c in t6.conventions)


def test_t6_answer_key_matches(t6):
    assert t6.checks and all(c.status == "match" for c in t6.checks), [(c.name, c.status) for c in t6.checks]


def _pair_spec(label: str, loss: str, kernels="[[1, 0, -1], [0.5, 1, 0.25]]", bias="[0.1, -0.2]") -> str:
    return f"""
id: pair
kind: siamese
model:
  - conv1d: {{name: conv1, kernels: {kernels}, b: {bias}}}
  - relu
  - global_avg_pool
loss: {loss}
inputs: {{a: [1, 2, 0.5, -1, 3], b: [0.5, 1, 1, -0.5, 2]}}
pairs: [{{inputs: [a, b], label: {label}}}]
tasks: [forward, {{gradient: {{wrt: [conv1.W, conv1.b]}}}}]
"""


def _torch_pair(label, margin=None, half=False):
    w, b = _params([[1, 0, -1], [0.5, 1, 0.25]], [0.1, -0.2])
    emb = [F.relu(F.conv1d(torch.tensor([[x]], dtype=torch.float64), w, b)).mean(dim=2)[0]
           for x in ([1, 2, 0.5, -1, 3], [0.5, 1, 1, -0.5, 2])]
    d = torch.linalg.vector_norm(emb[0] - emb[1])
    loss = d ** 2 if label == "positive" else torch.clamp(margin - d, min=0) ** 2
    loss = loss / 2 if half else loss
    loss.backward()
    return d, loss, w.grad.numpy()[:, 0], b.grad.numpy()


@pytest.mark.parametrize("label,margin,half", [("positive", None, False), ("negative", 3, False),
                                               ("negative", 3, True), ("positive", None, True)])
def test_vector_embeddings_match_torch(label, margin, half):
    params = {"half": "true" if half else "false"}
    if margin is not None:
        params["margin"] = margin
    loss = "{contrastive: {" + ", ".join(f"{k}: {v}" for k, v in params.items()) + "}}"
    sol = solve_document(load_text(_pair_spec(label, loss), "pair.yaml"), answers={})
    d, value, gw, gb = _torch_pair(label, margin, half)
    assert value.item() > 0       # the case is active, so the gradients are not trivially 0
    assert np.isclose(float(sol.results["d"]), d.item())
    assert np.isclose(float(sol.results["loss"]), value.item())
    assert np.allclose(to_float(sol.results["conv1.W.grad"]), gw)
    assert np.allclose(to_float(sol.results["conv1.b.grad"]), gb)


def test_distance_exactly_at_margin_is_flagged():
    # scalar embeddings 1 and 3 (as in 000_t6): d = 2 = m
    text = (PROBLEMS / "000_t6.yaml").read_text(encoding="utf-8").replace("loss: contrastive",
                                                                           "loss: {contrastive: {margin: 2}}")
    sol = solve_document(load_text(text, "margin.yaml"), answers={})
    assert any(w.key == "warning.contrastive_at_margin" for w in sol.warnings)
    assert sol.results["loss(2)"] == 0


def test_triplet_matches_torch():
    text = """
id: trip
kind: siamese
model:
  - linear: {name: fc, W: [[1, -1, 0.5], [0.25, 2, -1]], b: [0, 0.5]}
  - tanh
loss: {triplet: {margin: 1}}
inputs: {a: [0.2, 0.1, -0.3], p: [0.3, -0.2, 0.1], n: [0.1, 0.15, -0.25]}
triplets: [{anchor: a, positive: p, negative: n}]
tasks: [forward, {gradient: {wrt: [fc.W, fc.b]}}]
"""
    sol = solve_document(load_text(text, "trip.yaml"), answers={})
    W = torch.tensor([[1, -1, 0.5], [0.25, 2, -1]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0, 0.5], dtype=torch.float64, requires_grad=True)
    e = {k: torch.tanh(F.linear(torch.tensor(v, dtype=torch.float64), W, b))
         for k, v in (("a", [0.2, 0.1, -0.3]), ("p", [0.3, -0.2, 0.1]), ("n", [0.1, 0.15, -0.25]))}
    loss = F.triplet_margin_loss(e["a"][None], e["p"][None], e["n"][None], margin=1.0, eps=0)
    loss.backward()
    assert loss.item() > 0
    assert np.isclose(float(sol.results["loss"]), loss.item())
    assert np.allclose(to_float(sol.results["fc.W.grad"]), W.grad.numpy())
    assert np.allclose(to_float(sol.results["fc.b.grad"]), b.grad.numpy())


def test_unknown_input_in_a_pair_is_a_spec_error():
    text = _pair_spec("positive", "contrastive").replace("inputs: [a, b]", "inputs: [a, c]")
    with pytest.raises(SpecError, match="unknown input 'c'"):
        solve_document(load_text(text, "bad.yaml"), answers={})


@pytest.mark.parametrize("lang", ["hr", "en"])
def test_cli_renders_t6_in_every_format(lang):
    from typer.testing import CliRunner

    from examsolver.cli import app

    for fmt in ("term", "md", "json"):
        result = CliRunner().invoke(app, ["solve", str(PROBLEMS / "000_t6.yaml"), "--lang", lang, "--format", fmt])
        assert result.exit_code == 0, result.output


AT_MARGIN = """
id: trip_at_margin
kind: siamese
model:
  - linear: {name: fc, W: [[1, 0.5], [0, 1]], b: [0, 0]}
loss: {triplet: {margin: 1}}
inputs: {a: [0, 0], p: [1, 0], n: [2, 0]}
triplets: [{anchor: a, positive: p, negative: n}]
tasks: [forward, {gradient: {wrt: [fc.W, fc.b]}}]
"""


def _torch_triplet_at_margin():
    """PyTorch's triplet_margin_loss at z = d_ap − d_an + m = 1 − 2 + 1 = 0 (it passes the gradient there)."""
    W = torch.tensor([[1, 0.5], [0, 1]], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    e = {k: F.linear(torch.tensor(v, dtype=torch.float64), W, b) for k, v in (("a", [0, 0]), ("p", [1, 0]), ("n", [2, 0]))}
    loss = F.triplet_margin_loss(e["a"][None], e["p"][None], e["n"][None], margin=1.0, eps=0)
    loss.backward()
    assert loss.item() == 0 and W.grad.abs().sum() > 0
    return W.grad.numpy(), b.grad.numpy()


def test_triplet_exactly_at_the_margin_shows_both_subgradients():
    sol = solve_document(load_text(AT_MARGIN, "at_margin.yaml"), answers={})
    assert any(w.key == "warning.triplet_at_margin" for w in sol.warnings)
    assert sol.results["loss"] == 0
    assert not any(v != 0 for v in np.asarray(sol.results["fc.W.grad"]).flat)   # derivative 0 at the kink
    (alt,) = [a for a in sol.alternatives if a.mistake == "relu_grad_at_zero_one"]
    W_grad, b_grad = _torch_triplet_at_margin()
    assert np.allclose(to_float(dict(alt.values)["fc.W.grad"]), W_grad)


def test_triplet_kink_taken_as_one_matches_torch():
    text = AT_MARGIN + "conventions: {relu_grad_at_zero: 1}\n"
    sol = solve_document(load_text(text, "at_margin.yaml"), answers={})
    W_grad, b_grad = _torch_triplet_at_margin()
    assert np.allclose(to_float(sol.results["fc.W.grad"]), W_grad)
    assert np.allclose(to_float(sol.results["fc.b.grad"]), b_grad)


def test_triplet_input_and_embedding_gradients_match_torch():
    """∂L/∂(anchor, positive, negative) and ∂L/∂e of every branch from the same reverse pass."""
    text = """
id: trip_inputs
kind: siamese
model:
  - linear: {name: fc, W: [[1, -1, 0.5], [0.25, 2, -1]], b: [0, 0.5]}
loss: {triplet: {margin: 1}}
inputs: {a: [0.2, 0.1, -0.3], p: [0.3, -0.2, 0.1], n: [0.1, 0.15, -0.25]}
triplets: [{anchor: a, positive: p, negative: n}]
tasks: [forward, {gradient: {wrt: [fc.W, a, p, n]}}]
"""
    sol = solve_document(load_text(text, "trip.yaml"), answers={})
    W = torch.tensor([[1, -1, 0.5], [0.25, 2, -1]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0, 0.5], dtype=torch.float64)
    x = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
         for k, v in (("a", [0.2, 0.1, -0.3]), ("p", [0.3, -0.2, 0.1]), ("n", [0.1, 0.15, -0.25]))}
    e = {k: F.linear(v, W, b) for k, v in x.items()}
    for v in e.values():
        v.retain_grad()
    loss = F.triplet_margin_loss(e["a"][None], e["p"][None], e["n"][None], margin=1.0, eps=0)
    loss.backward()
    assert loss.item() > 0
    for k in "apn":
        assert np.allclose(to_float(sol.results[f"{k}.grad"]), x[k].grad.numpy()), k
    for m, k in enumerate("apn", 1):
        assert np.allclose(to_float(sol.results[f"e{m}.grad"]), e[k].grad.numpy()), k
    assert np.allclose(to_float(sol.results["fc.W.grad"]), W.grad.numpy())


# ----- the registered metric losses' options, through the siamese kind --------------------------------
TWO_TRIPLETS = """
id: trips
kind: siamese
model:
  - linear: {{name: fc, W: [[1, -1, 0.5], [0.25, 2, -1]], b: [0, 0.5]}}
  - tanh
loss: {{triplet: {loss}}}
inputs: {{a: [0.2, 0.1, -0.3], p: [0.3, -0.2, 0.1], n: [0.1, 0.15, -0.25], q: [-0.4, 0.3, 0.2]}}
triplets: [{{anchor: a, positive: p, negative: n}}, {{anchor: p, positive: a, negative: q}}]
tasks: [forward, {{gradient: {{wrt: [fc.W, fc.b]}}}}]
"""


def _torch_two_triplets(criterion):
    W = torch.tensor([[1, -1, 0.5], [0.25, 2, -1]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0, 0.5], dtype=torch.float64, requires_grad=True)
    x = {"a": [0.2, 0.1, -0.3], "p": [0.3, -0.2, 0.1], "n": [0.1, 0.15, -0.25], "q": [-0.4, 0.3, 0.2]}
    e = {k: torch.tanh(F.linear(torch.tensor(v, dtype=torch.float64), W, b)) for k, v in x.items()}
    stack = lambda *keys: torch.stack([e[k] for k in keys])
    loss = criterion(stack("a", "p"), stack("p", "a"), stack("n", "q"))
    loss.backward()
    return loss, W.grad, b.grad


@pytest.mark.parametrize("options, criterion", [
    ("{margin: 1, p: 1, reduction: mean}", lambda: torch.nn.TripletMarginLoss(margin=1.0, p=1, eps=0)),
    ("{margin: 3/2, p: 3, reduction: sum}", lambda: torch.nn.TripletMarginLoss(margin=1.5, p=3, eps=0, reduction="sum")),
    ("{margin: 1/2, eps: 1/1000000, reduction: mean}", lambda: torch.nn.TripletMarginLoss(margin=0.5)),
    ("{margin: 2, squared: true, reduction: mean}",
     lambda: lambda a, p, n: torch.clamp(((a - p) ** 2).sum(1) - ((a - n) ** 2).sum(1) + 2, min=0).mean()),
])
def test_triplet_options_match_torch(options, criterion):
    """p, eps, squared and the loss's own reduction against torch.nn.TripletMarginLoss (PyTorch's default
    eps = 1e-6 given explicitly) and the course's squared form written out."""
    sol = solve_document(load_text(TWO_TRIPLETS.format(loss=options), "trips.yaml"), answers={})
    loss, W_grad, b_grad = _torch_two_triplets(criterion())
    assert loss.item() > 0
    assert np.isclose(float(sol.results["loss"]), loss.item(), rtol=1e-12)
    assert np.allclose(to_float(sol.results["fc.W.grad"]), W_grad.numpy(), rtol=1e-10, atol=1e-14)
    assert np.allclose(to_float(sol.results["fc.b.grad"]), b_grad.numpy(), rtol=1e-10, atol=1e-14)


def test_unsquared_contrastive_matches_a_hand_written_loss():
    sol = solve_document(load_text(_pair_spec("negative", "{contrastive: {margin: 3, squared: false, half: true}}"),
                                   "pair.yaml"), answers={})
    w, b = _params([[1, 0, -1], [0.5, 1, 0.25]], [0.1, -0.2])
    emb = [F.relu(F.conv1d(torch.tensor([[x]], dtype=torch.float64), w, b)).mean(dim=2)[0]
           for x in ([1, 2, 0.5, -1, 3], [0.5, 1, 1, -0.5, 2])]
    loss = 0.5 * torch.clamp(3 - torch.linalg.vector_norm(emb[0] - emb[1]), min=0)
    loss.backward()
    assert loss.item() > 0
    assert np.isclose(float(sol.results["loss"]), loss.item())
    assert np.allclose(to_float(sol.results["conv1.W.grad"]), w.grad.numpy()[:, 0])
    assert np.allclose(to_float(sol.results["conv1.b.grad"]), b.grad.numpy())
    assert any(p.key == "convention.contrastive_half_unsquared" for p in sol.conventions)


def test_a_triplet_on_the_margin_with_irrational_distances_is_decided_exactly():
    """d(a, p) = √2, d(a, n) = 2√2, m = √2: z = 0 exactly, though in floats it is a rounding error."""
    from examsolver.engine.ops import LOSSES
    from examsolver.engine.tensor import tensor

    loss = LOSSES["triplet"](LOSSES["triplet"].Params.model_validate({"margin": "sqrt(2)"}))
    rows = tensor([[0, 0], [1, 1], [2, 2]])
    assert loss.value(rows) == 0
    d_ap, d_an = loss.distance(rows[0], rows[1]), loss.distance(rows[0], rows[2])
    assert loss.hinge(d_ap, d_an).sign() == 0 and loss.slope(d_ap, d_an) == loss.kink_grad
    loss.kink_grad = 0
    assert not any(v != 0 for v in np.asarray(loss.grad(rows)).flat)


def test_a_triplet_written_as_a_list_is_told_the_keys_it_needs():
    """pydantic's 'a valid dictionary or instance of TripletSpec' names a class of ours, not the spec's keys."""
    text = """
id: t
kind: siamese
model:
  - linear: {W: [[1, 0], [1, -1]], b: [0, 0]}
loss: {triplet: {margin: 1}}
inputs: {a: [1, 2], p: [2, 2], n: [0, 1]}
triplets:
  - [a, p, n]
"""
    with pytest.raises(SpecError) as err:
        solve_document(load_text(text, "t.yaml"))
    message = str(err.value)
    assert "t.yaml:9:5: triplets: expected a mapping with the keys anchor, positive, negative" in message
    assert "TripletSpec" not in message
