"""From a spec file to a checked Solution: the engine solves, the answer key is compared.

Kept outside the engine so that imports run one way: the engine never imports
the answer-key code (verify, diagnose), and those may import the engine.
"""

from __future__ import annotations

from pathlib import Path

from examsolver.engine.solve import parse_spec, solve_spec
from examsolver.solution import Solution
from examsolver.spec import limits
from examsolver.spec.load import Document, load_file


def solve_document(doc: Document, answers: dict | None = None, with_alternatives: bool = True) -> Solution:
    """Solve within the limits of spec/limits.py: bounded before the work, budgeted while it runs."""
    with limits.cpu_budget(), limits.located(doc, ()):
        return _solve(doc, answers, with_alternatives)


def _solve(doc: Document, answers: dict | None, with_alternatives: bool) -> Solution:
    solution, spec = solve_spec(doc)
    if solution.statement and any("{{" in (text or "") for text in solution.statement.values()):
        from examsolver.spec.vary import fill_statements

        solution.statement = fill_statements(solution.statement, doc)
    from examsolver.verify import check_answers

    key = answers if answers is not None else getattr(spec, "answers", {}) or {}
    solution.checks = check_answers(key, solution.results)
    if solution.warnings and with_alternatives:   # answers under the other convention at this degenerate input
        from examsolver.diagnose import alternatives

        solution.alternatives = alternatives(doc, solution, list(key))
    return solution


def solve_file(path: str | Path) -> Solution:
    return solve_document(load_file(path))


__all__ = ["parse_spec", "solve_document", "solve_file"]
