"""A solution at a degenerate input shows the answers under the other convention."""

import numpy as np

from examsolver.pipeline import solve_file
from examsolver.render.output import render_solution

from conftest import PROBLEMS


def test_max_pool_ties_bring_the_split_alternative():
    solution = solve_file(PROBLEMS / "000_t2.yaml")
    assert solution.warnings
    (alt,) = [a for a in solution.alternatives if a.mistake == "maxpool_ties_split"]
    values = dict(alt.values)
    split = np.asarray(values["conv1.W.grad"], dtype=object)
    first = np.asarray(solution.results["conv1.W.grad"], dtype=object)
    assert split.shape == first.shape and not (split == first).all()
    # the split rule spreads the gradient: the hand-derived value for kernel 1, row 3 (seed 000 task 2)
    assert [float(v) for v in split[0, 2]] == [0, -0.125, 0.125]
    for fmt in ("term", "md", "json"):
        text = render_solution(solution, fmt, "en", to_terminal=False)
        assert "maxpool_ties_split" in text if fmt == "json" else "Other answers under the alternative" in text


def test_no_alternatives_without_degeneracy():
    assert solve_file(PROBLEMS / "2022_z3.yaml").alternatives == []


L1_AT_KINK = """
id: l1_kink
kind: network
model:
  - linear: {{name: fc, W: [[1, -1], [1/2, 2]], b: [0, 1/2]}}
loss: {loss}
data:
  - {{x: [1, 2], y: [-1, 3]}}
  - {{x: [-1, 1/2], y: [-1, 1]}}
tasks:
  - gradient: {{wrt: [fc.W, fc.b], method: batch}}
"""
# outputs: [−1, 9/2] and [−3/2, 1]: entry 1 of example 1 and entry 2 of example 2 sit on o = y


def _l1_case(loss: str):
    from examsolver.pipeline import solve_document
    from examsolver.spec.load import load_text

    return solve_document(load_text(L1_AT_KINK.format(loss=loss), "l1.yaml"))


def test_l1_at_its_kink_says_which_subgradient_was_used():
    import torch

    solution = _l1_case("l1")
    (warning,) = [w for w in solution.warnings if w.key == "warning.l1_at_kink"]
    assert warning.args["count"] == 2 and warning.args["value"] == 0
    W = torch.tensor([[1, -1], [0.5, 2]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0, 0.5], dtype=torch.float64, requires_grad=True)
    x = torch.tensor([[1, 2], [-1, 0.5]], dtype=torch.float64)
    y = torch.tensor([[-1, 3], [-1, 1]], dtype=torch.float64)
    (torch.nn.functional.l1_loss(x @ W.T + b, y, reduction="sum") / 2).backward()    # sign(0) = 0 as ours
    assert np.allclose([float(v) for v in np.asarray(solution.results["fc.W.grad"]).flat], W.grad.numpy().flat)
    half = _l1_case("{l1: {grad_at_zero: 1/2}}")
    (warning,) = [w for w in half.warnings if w.key == "warning.l1_at_kink"]
    assert float(warning.args["value"]) == 0.5
    # the chosen subgradient ½ at the two kinks: ½·∂o/∂b summed over those entries, ÷ 2 examples
    delta = np.asarray(half.results["fc.b.grad"], dtype=object) - np.asarray(solution.results["fc.b.grad"], dtype=object)
    assert [float(v) for v in delta] == [0.25, 0.25]
    for fmt in ("term", "md"):
        text = render_solution(solution, fmt, "hr", to_terminal=False)
        assert "lom" in text


def test_smooth_l1_warns_only_where_it_has_a_kink():
    assert any(w.key == "warning.l1_at_kink" for w in _l1_case("{smooth_l1: {beta: 0}}").warnings)
    assert not any(w.key == "warning.l1_at_kink" for w in _l1_case("smooth_l1").warnings)
    assert not any(w.key == "warning.l1_at_kink" for w in _l1_case("huber").warnings)
