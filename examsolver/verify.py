"""Answer keys: each entry compared with the computed result.

Exact answers are compared exactly (ln(2)/9*6 equals 2*ln(2)/3); an answer
written as a decimal matches when it agrees within the precision it was
written with (0.6667 matches 2/3; 0.66 does not).
"""

from __future__ import annotations

import re
from decimal import Decimal

import numpy as np

from examsolver.errors import ExprError
from examsolver.solution import AnswerCheck, Phrase
from examsolver.spec.expr import parse_nested

_DECIMAL = re.compile(r"^\s*[-+−]?\d*\.(\d+)\s*$")


def written_places(literal) -> int | None:
    """Decimal places of an answer written as a decimal ('0.6667' → 4), else None."""
    if isinstance(literal, str):
        match = _DECIMAL.match(literal)
        if match:
            return len(match.group(1))
    return None


def _flatten(value) -> list:
    if isinstance(value, list):
        return [x for v in value for x in _flatten(v)]
    return [value]


def compare(literal, computed) -> tuple[str, Phrase | None]:
    """('match' | 'mismatch' | 'invalid', detail) for one key entry."""
    try:
        expected = np.array(parse_nested(literal), dtype=object)
    except ExprError as err:
        return "invalid", Phrase("check.invalid", {"error": str(err)})
    got = np.asarray(computed, dtype=object)
    if expected.size != got.size or np.squeeze(expected).shape != np.squeeze(got).shape:
        return "mismatch", Phrase("check.shape", {"expected": str(expected.shape), "computed": str(got.shape)})
    literals = _flatten(literal) if isinstance(literal, list) else [literal] * expected.size
    for lit, e, c in zip(literals, expected.flat, got.flat):
        places = written_places(lit)
        if places is None:
            if e != c:
                return "mismatch", None
        elif abs(c.decimal(places + 10) - e.decimal(places + 10)) > Decimal(5) * Decimal(10) ** -(places + 1) * Decimal("1.000001"):
            return "mismatch", None
    return "match", None


def check_answers(answers: dict, results: dict) -> list[AnswerCheck]:
    checks = []
    for name, literal in answers.items():
        if name not in results:
            checks.append(AnswerCheck(name, literal, None, "missing",
                                      Phrase("check.unknown_name", {"names": ", ".join(results)})))
            continue
        status, detail = compare(literal, results[name])
        checks.append(AnswerCheck(name, literal, results[name], status, detail))
    return checks


def literal_text(literal) -> str:
    """An answer-key entry as written, without Python's quotes: [[1.25, 0.25], …]."""
    if isinstance(literal, list):
        return "[" + ", ".join(literal_text(v) for v in literal) + "]"
    return str(literal)
