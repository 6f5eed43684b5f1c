"""From a spec document to a Solution: pick the problem kind, validate, solve (the key is compared in
examsolver.pipeline, outside the engine)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from examsolver.engine import scalar
from examsolver.errors import SpecError
from examsolver.spec import limits
from examsolver.spec.load import Document


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
    if not isinstance(name, str) or name not in KINDS:
        what = repr(name)[:40] if isinstance(name, str) else f"a {type(name).__name__}"
        raise SpecError([doc.problem(("kind",), f"unknown problem kind {what} (expected one of: {', '.join(KINDS)})")])
    return KINDS[name]


def parse_spec(doc: Document):
    """The validated spec of the document's kind (SpecError with every problem otherwise).

    A `vary:` block (how exam variants may differ) and the statement's `{{path}}` placeholders are
    checked here too, and the kind's own schema sees the spec without the block."""
    kind = kind_of(doc)
    if "vary" in doc.data or "{{" in str(doc.data.get("statement", "")):
        doc = _without_vary(doc)
    if kind.parse:
        return kind.load("parse")(doc)
    from examsolver.spec.model import validate

    return validate(doc, kind.load("schema")())


def _without_vary(doc: Document) -> Document:
    from examsolver.spec import vary

    problems = vary.check_placeholders(doc)
    if "vary" in doc.data:
        try:
            vary.check_block(doc)
        except SpecError as err:
            problems += err.problems
    if problems:
        raise SpecError(problems)
    return Document(doc.path, {k: v for k, v in doc.data.items() if k != "vary"}, doc.positions)


def solve_spec(doc: Document):
    """(Solution, validated spec) of a document: the engine's whole job, no answer key compared.

    The spec's cost is bounded (spec/limits.py) before any work."""
    kind = kind_of(doc)
    spec = parse_spec(doc)
    limits.check_spec(doc, spec)
    if scalar.DECISIONS is not None:    # record the solver's decisions only, not the parser's (it caches)
        scalar.DECISIONS.clear()
    scalar.forget_nodes()
    solution = kind.load("solver")(spec, doc)
    solution.document = doc        # for exporters that rebuild the model (the PyTorch check script)
    page = getattr(spec, "document", None)
    solution.title_page = page.model_dump(exclude_none=True) if page is not None else {}
    return solution, spec
