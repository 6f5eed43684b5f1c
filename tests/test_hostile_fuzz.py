"""Fuzzing with a bounded number of examples: expressions, mutated problems and answer files are
solved or refused, never an internal error.  The long run is benchmarks/fuzz_hostile.py."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzzing

PROBLEMS = fuzzing.load_problems()
QUICK = settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@settings(QUICK, max_examples=300)
@given(rng=st.randoms(use_true_random=False))
def test_expressions_are_parsed_or_refused(rng):
    outcome, err = fuzzing.run_expression(fuzzing.random_expression(rng))
    assert outcome != "internal", repr(err)


@settings(QUICK, max_examples=300)
@given(text=st.text(max_size=60))
def test_any_text_is_parsed_or_refused(text):
    outcome, err = fuzzing.run_expression(text)
    assert outcome != "internal", repr(err)


@pytest.mark.parametrize("name, data", PROBLEMS, ids=[n for n, _ in PROBLEMS])
@settings(QUICK, max_examples=3)
@given(rng=st.randoms(use_true_random=False))
def test_mutated_problems_are_solved_or_refused(name, data, rng):
    outcome, err = fuzzing.run_spec(fuzzing.mutate(data, rng))
    assert outcome != "internal", repr(err)


@settings(QUICK, max_examples=15)
@given(rng=st.randoms(use_true_random=False))
def test_answer_files_are_checked_or_refused(tmp_path_factory, rng):
    name, data = PROBLEMS[rng.randrange(len(PROBLEMS))]
    answers = fuzzing.random_answers(list(data.get("answers", {})), rng)
    outcome, err = fuzzing.run_answers(data, answers, tmp_path_factory.mktemp("answers"))
    assert outcome != "internal", repr(err)
