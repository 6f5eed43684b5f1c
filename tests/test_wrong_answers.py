"""Answers that were confidently wrong, and inputs that ended in an internal error (issue 21, item 7),
each checked against PyTorch or against sympy worked by hand, never against the engine itself."""

import numpy as np
import pytest

from examsolver.engine.tensor import to_float
from examsolver.errors import SpecError
from examsolver.pipeline import solve_document
from examsolver.render.output import render_solution
from examsolver.spec.load import load_text

torch = pytest.importorskip("torch")
sympy = pytest.importorskip("sympy")


def _solve(text: str):
    return solve_document(load_text(text, "spec.yaml"))


def _floats(value) -> np.ndarray:
    return np.asarray(to_float(value), dtype=float)


def _text(solution, lang: str) -> str:
    return render_solution(solution, "md", lang, to_terminal=False)


# ----- dropout in evaluation mode ------------------------------------------------------------------
DROPOUT_EVAL = """
id: dropout_eval
model:
  - linear: {{name: fc1, W: [[1, 0], [0, 2], [1, -1]], b: [0, 1, -1/2]}}
  - dropout: {{name: drop, p: 1/4, train: false}}
  - linear: {{name: fc2, W: [[1, -1, 2]], b: [1/2]}}
loss: mse
data: [{{x: [1, 2], y: [1]}}, {{x: [-1, 1/2], y: [0]}}]
conventions: {{dropout: {convention}}}
tasks:
  - forward
  - gradient: {{wrt: [fc1.W, fc2.W, x], method: batch}}
"""


def _dropout_torch(scale: float):
    """The same network in PyTorch: nn.Dropout in eval mode (the identity), times `scale` after it."""
    fc1, fc2 = torch.nn.Linear(2, 3).double(), torch.nn.Linear(3, 1).double()
    with torch.no_grad():
        fc1.weight.copy_(torch.tensor([[1, 0], [0, 2], [1, -1]]))
        fc1.bias.copy_(torch.tensor([0, 1, -0.5]))
        fc2.weight.copy_(torch.tensor([[1, -1, 2]]))
        fc2.bias.copy_(torch.tensor([0.5]))
    drop = torch.nn.Dropout(0.25).eval()
    x = torch.tensor([[1, 2], [-1, 0.5]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1], [0]], dtype=torch.float64)
    o = fc2(drop(fc1(x)) * scale)
    loss = ((o - y) ** 2).sum(1).mean()
    loss.backward()
    return o, loss, fc1, fc2, x


@pytest.mark.parametrize("convention, scale", [("inverted", 1.0), ("plain", 0.75)])
def test_dropout_in_evaluation_mode_is_the_identity_or_the_textbook_scale(convention, scale):
    """train: false used to end in KeyError 'forward_eval.dropout'.  PyTorch's (inverted) dropout in
    eval mode is the identity; the textbook form scales by 1 − p at inference."""
    s = _solve(DROPOUT_EVAL.format(convention=convention))
    o, loss, fc1, fc2, x = _dropout_torch(scale)
    assert np.isclose(float(s.results["loss"]), loss.item())
    np.testing.assert_allclose(_floats(s.results["o(1)"]), o[0].detach().numpy())
    np.testing.assert_allclose(_floats(s.results["fc1.W.grad"]), fc1.weight.grad.numpy())
    np.testing.assert_allclose(_floats(s.results["fc2.W.grad"]), fc2.weight.grad.numpy())
    np.testing.assert_allclose(_floats(s.results["x.grad"]), x.grad.numpy())
    en, hr = _text(s, "en"), _text(s, "hr")
    if convention == "inverted":
        assert "evaluation mode is the identity" in en and "evaluacije je identiteta" in hr
    else:
        assert "scaled by 1 − p" in en and "skalira s 1 − p" in hr
