"""Golden values from the 2022 solution slides (seed 001), checked against the engine."""

from fractions import Fraction

import numpy as np
import pytest

from examsolver.engine.scalar import ln_prime
from examsolver.pipeline import solve_file

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


def test_z1_every_gradient_and_update(z1):
    """The slides' per-example gradients (17, 18, 24, 25, 27, 28, 34, 35) and, with η = 1 on their mean,
    every parameter after the step (39 gives W₁; b₁, W₂, b₂ by hand from the same gradients)."""
    q = Fraction
    slides = {
        "fc2.W.grad(1)": [q(-1, 2), 0], "fc2.b.grad(1)": q(-1, 2),                             # (17), (18)
        "fc1.W.grad(1)": [[q(-1, 2), q(-1, 2)], [0, 0]], "fc1.b.grad(1)": [q(-1, 2), 0],       # (24), (25)
        "fc2.W.grad(2)": [0, q(-1, 2)], "fc2.b.grad(2)": q(-1, 2),                             # (27), (28)
        "fc1.W.grad(2)": [[0, 0], [q(1, 2), q(-3, 2)]], "fc1.b.grad(2)": [0, q(-1, 2)],        # (34), (35)
        "fc1.W.updated": [[q(5, 4), q(1, 4)], [q(-1, 4), q(7, 4)]],                            # (39)
        "fc1.b.updated": [q(1, 4), q(1, 4)],             # 0 − ½([−½, 0] + [0, −½])
        "fc2.W.updated": [q(5, 4), q(5, 4)],             # 1 − ½([−½, 0] + [0, −½])
        "fc2.b.updated": q(-1, 2),                       # −1 − ½(−½ − ½)
    }
    for name, value in slides.items():
        assert np.asarray(z1.results[name]).tolist() == value, name


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
