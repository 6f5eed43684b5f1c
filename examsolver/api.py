"""The library's front door for notebooks and scripts: `examsolver.solve(...)`.

    >>> import examsolver
    >>> solution = examsolver.solve("problems/2022_z3.yaml", lang="en")
    >>> solution["conv1.W.grad"]          # any result by the name the JSON and answer keys use
    >>> solution                          # in Jupyter: the worked solution, typeset

A spec may also be given as a mapping (the YAML's content as Python data).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from examsolver.solution import Solution


def solve(spec: str | Path | Mapping, lang: str = "hr") -> Solution:
    """Solve a problem spec (a file's path, or its content as a mapping); the Solution displays
    itself in Jupyter in lang ("hr" or "en") and exposes its results by name (solution["loss"]).
    Invalid input raises SpecError with every problem located."""
    from examsolver.pipeline import solve_document
    from examsolver.locales import catalog
    from examsolver.spec.load import load_file, load_text

    catalog(lang)                       # an unknown language fails here, not at display time
    if isinstance(spec, Mapping):
        import yaml

        document = load_text(yaml.safe_dump(dict(spec), allow_unicode=True, sort_keys=False), "<mapping>")
    else:
        document = load_file(spec)
    solution = solve_document(document)
    solution.lang = lang
    return solution
