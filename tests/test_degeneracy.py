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
