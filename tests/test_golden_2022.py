"""Golden values from the 2022 solution slides (seed 001), checked against the engine."""

from fractions import Fraction

import numpy as np
import pytest

from examsolver.engine.scalar import ln_prime
from examsolver.pipeline import solve_file
from examsolver.engine.tensor import tensor

from conftest import PROBLEMS

LN2 = ln_prime(2)


@pytest.fixture(scope="module")
def z3():
    return solve_file(PROBLEMS / "2022_z3.yaml")


@pytest.fixture(scope="module")
def z1():
    return solve_file(PROBLEMS / "2022_z1.yaml")


def test_z3_probabilities(z3):
    assert list(z3.results["p"]) == [Fraction(1, 3), Fraction(2, 3)]


def test_z3_kernel_gradients_match_slides(z3):
    grad = z3.results["conv1.W.grad"]
    assert list(grad[0]) == [LN2 * 6 / 9, -LN2 / 9, LN2 * 3 / 9]       # slides (63)
    assert list(grad[1]) == [-LN2 * 5 / 9, -LN2 / 9, -LN2 * 3 / 9]     # slides (65)


def test_z3_loss_is_ln_three_halves(z3):
    assert z3.results["loss"] == ln_prime(3) - LN2


def test_z1_w1_after_step_matches_slides(z1):
    expected = tensor([[Fraction(5, 4), Fraction(1, 4)], [Fraction(-1, 4), Fraction(7, 4)]])
    assert (z1.results["fc1.W.updated"] == expected).all()


def test_z1_every_parameter_updated(z1):
    for name in ("fc1.W", "fc1.b", "fc2.W", "fc2.b"):
        assert f"{name}.updated" in z1.results


def test_answer_keys_of_both_files_match(z1, z3):
    for solution in (z1, z3):
        assert solution.checks and all(c.status == "match" for c in solution.checks), [
            (c.name, c.status) for c in solution.checks]


def test_equations_are_numbered_consecutively(z3):
    numbers = [b.number for s in z3.sections for b in s.blocks if getattr(b, "number", None)]
    assert numbers == list(range(1, len(numbers) + 1))


def test_batch_method_gives_the_same_update_as_per_example(z1, tmp_path):
    text = (PROBLEMS / "2022_z1.yaml").read_text(encoding="utf-8")
    assert "reduction: mean}" in text
    spec = tmp_path / "z1_batch.yaml"
    spec.write_text(text.replace("reduction: mean}", "reduction: mean, method: batch}"), encoding="utf-8")
    batch = solve_file(spec)
    for name in ("fc1.W", "fc1.b", "fc2.W", "fc2.b"):
        assert (np.asarray(batch.results[f"{name}.updated"]) == np.asarray(z1.results[f"{name}.updated"])).all()
    titles = [s.title.key for s in batch.sections]
    assert "section.backward_batch" in titles and "section.backward_example" not in titles
