"""From a spec file to a Solution: pick the problem kind, validate, solve, check the key."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

from examsolver.errors import SpecError
from examsolver.solution import Solution
from examsolver.spec.load import Document, load_file


@dataclass(frozen=True)
class Kind:
    """A problem kind: where its schema and its solver live (imported on use)."""

    schema: str     # "module:function" returning the pydantic model
    solver: str     # "module:function" (spec, doc) → Solution
    parse: str = ""  # optional "module:function" doc → spec, when validation needs more than the model

    def load(self, which: str):
        module, _, name = getattr(self, which).partition(":")
        return getattr(import_module(module), name)


KINDS = {
    "recurrent": Kind("examsolver.engine.recurrent:recurrent_spec_model", "examsolver.engine.recurrent:solve",
                      "examsolver.engine.recurrent:parse"),
    "counting": Kind("examsolver.engine.counting:counting_spec_model", "examsolver.engine.counting:solve"),
    "network": Kind("examsolver.spec.model:network_spec_model", "examsolver.engine.network:solve",
                    "examsolver.spec.model:validate_network"),
    "retrieval": Kind("examsolver.engine.retrieval:retrieval_spec_model", "examsolver.engine.retrieval:solve"),
    "siamese": Kind("examsolver.engine.siamese:siamese_spec_model", "examsolver.engine.siamese:solve",
                    "examsolver.engine.siamese:validate_siamese"),
    "symbolic": Kind("examsolver.engine.symbolic:symbolic_spec_model", "examsolver.engine.symbolic:solve"),
}


def kind_of(doc: Document) -> Kind:
    if not isinstance(doc.data, dict):
        raise SpecError([doc.problem((), "a problem spec must be a YAML mapping (id:, model:, …)")])
    name = doc.data.get("kind", "network")
    if name not in KINDS:
        raise SpecError([doc.problem(("kind",), f"unknown problem kind {name!r} (expected one of: {', '.join(KINDS)})")])
    return KINDS[name]


def parse_spec(doc: Document):
    """The validated spec of the document's kind (SpecError with every problem otherwise)."""
    kind = kind_of(doc)
    if kind.parse:
        return kind.load("parse")(doc)
    from examsolver.spec.model import validate

    return validate(doc, kind.load("schema")())


def solve_document(doc: Document, answers: dict | None = None, with_alternatives: bool = True) -> Solution:
    kind = kind_of(doc)
    spec = parse_spec(doc)
    solution = kind.load("solver")(spec, doc)
    solution.document = doc        # for exporters that rebuild the model (the PyTorch check script)
    from examsolver.verify import check_answers

    key = answers if answers is not None else getattr(spec, "answers", {}) or {}
    solution.checks = check_answers(key, solution.results)
    if solution.warnings and with_alternatives:   # answers under the other convention at this degenerate input
        from examsolver.diagnose import alternatives

        solution.alternatives = alternatives(doc, solution, list(key))
    return solution


def solve_file(path: str | Path) -> Solution:
    return solve_document(load_file(path))
