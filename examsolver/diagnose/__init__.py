"""Which convention or common mistake reproduces a wrong answer; alternatives at degenerate inputs.

The problem is solved again under each catalogued alternative (catalogue.py):
the spec's YAML data is patched and re-solved, or the correct result is
transformed.  A wrong key entry is explained by the first alternative whose
result matches it (with the key's own precision and tolerance); when none does,
by the nearest one — closer to the key than the correct value is — marked as
not exact.  Re-solves are cached per entry, so a file costs at most one solve
per catalogue entry that applies to it.  Where only conventions change and the
engine can (Solution.under: the network kind), the results are recomputed from
the first node a changed convention touches instead of solving everything again.
"""

from __future__ import annotations

import copy
from decimal import Decimal

import numpy as np

from examsolver.diagnose.catalogue import CATALOGUE, Entry
from examsolver.errors import ExamsolverError
from examsolver.solution import Phrase
from examsolver.verify import Alternative, Explanation, as_decimal, compare, expected_value

MAX_SHOWN = 8              # alternative results listed when none of them is in the key


class _NotApplicable(Exception):
    pass


# ----- patching the YAML data ------------------------------------------------------------
def apply_patch(data, patch: tuple):
    """A copy of data with every (path, value) set; _NotApplicable when a path matches nothing.  Only
    the branches a path enters are copied: the rest (a 28×28 image, its weights) is shared, unchanged."""
    heads = {path.split(".")[0] for path, _ in patch}
    if isinstance(data, dict) and "*" not in heads:
        data = {key: copy.deepcopy(value) if key in heads else value for key, value in data.items()}
    else:
        data = copy.deepcopy(data)
    for path, value in patch:
        if not _set(data, path.split("."), value, 0):
            raise _NotApplicable(path)
    return data


def _set(node, parts: list, value, depth: int) -> int:
    """Set value at parts below node; the number of places set."""
    head, rest = parts[0], parts[1:]
    if head == "*":
        if not isinstance(node, list):
            return 0
        count = 0
        for i, item in enumerate(node):
            count += _set(_expand(node, i) if _bare(item, rest) else item, rest, value, depth + 1)
        return count
    if not isinstance(node, dict):
        return 0
    if not rest:
        new = value(node.get(head)) if callable(value) else value
        if new is None:
            return 0
        node[head] = new
        return 1
    child = node.get(head)
    if isinstance(child, str) and child == rest[0]:          # `loss: mse` → {mse: {}}
        node[head] = child = {child: {}}
    elif child is None and head == "conventions":
        node[head] = child = {}
    elif isinstance(child, dict) and len(child) == 1 and rest and child.get(rest[0], 0) is None:
        child[rest[0]] = {}                                  # `{relu: null}` → {relu: {}}
    if child is None:
        return 0
    return _set(child, rest, value, depth + 1)


def _bare(item, rest) -> bool:
    return isinstance(item, str) and bool(rest) and item == rest[0]


def _expand(items: list, i: int):
    """A bare layer name in a list (`- relu`) becomes `{relu: {}}` so params can be set."""
    items[i] = {items[i]: {}}
    return items[i]


def _already_in_force(data, patch: tuple) -> bool:
    """Whether every patched path is a convention the document already uses (set or by default)."""
    from examsolver.spec.model import Conventions

    stated = data.get("conventions") if isinstance(data, dict) else None
    stated = stated if isinstance(stated, dict) else {}
    for path, value in patch:
        group, _, name = path.partition(".")
        if group != "conventions" or name not in Conventions.model_fields:
            return False
        current = stated.get(name, Conventions.model_fields[name].default)
        if str(current) != str(value):
            return False
    return True


# ----- solving under an alternative -----------------------------------------------------
class Resolver:
    """Results of one problem under each catalogue entry (None where the entry does not apply).

    reuse=False always solves the document again (the reference the recomputation is tested against)."""

    def __init__(self, doc, solution, reuse: bool = True):
        self.doc, self.solution, self.reuse = doc, solution, reuse
        self.cache: dict = {}

    def results(self, entry: Entry) -> dict | None:
        if entry.name not in self.cache:
            self.cache[entry.name] = self._compute(entry)
        return self.cache[entry.name]

    def _compute(self, entry: Entry) -> dict | None:
        base = self.solution.results
        if entry.transform is not None:
            out = {}
            for name, value in base.items():
                try:
                    changed = entry.transform(name, value, base)
                except (ArithmeticError, ExamsolverError, TypeError, ValueError):
                    changed = None
                if changed is not None:
                    out[name] = changed
            return out or None
        if _already_in_force(self.doc.data, entry.patch):
            return None             # the same solve again (e.g. ReLU′(0) = 0, the default): nothing to compare
        try:
            data = apply_patch(self.doc.data, entry.patch)
        except _NotApplicable:
            return None
        if data == self.doc.data:
            return None
        if self.reuse and self.solution.under is not None and _conventions_only(entry.patch):
            try:
                results = self.solution.under(data.get("conventions"))
            except ExamsolverError:
                return None
            if results is not None:
                return results
        from examsolver.pipeline import solve_document
        from examsolver.spec.load import Document

        try:
            return solve_document(Document(self.doc.path, data, self.doc.positions), answers={},
                                  with_alternatives=False).results
        except ExamsolverError:      # e.g. unbiased variance of a single value: not this mistake
            return None


def _conventions_only(patch: tuple) -> bool:
    return all(path.startswith("conventions.") and not callable(value) for path, value in patch)


def explain(doc, solution, wrong: dict, tolerance=None, resolver: Resolver | None = None) -> dict:
    """{result name: Explanation} for the wrong key entries {name: literal} that an entry explains
    (resolver: one shared with alternatives(), so that no entry is computed twice)."""
    resolver = resolver or Resolver(doc, solution)
    found: dict = {}
    candidates: dict = {name: [] for name in wrong}
    for entry in CATALOGUE:
        if all(name in found for name in wrong):
            break
        results = resolver.results(entry)
        if not results:
            continue
        for name, literal in wrong.items():
            if name in found or name not in results:
                continue
            status, _ = compare(literal, results[name], tolerance)
            if status == "match":
                found[name] = Explanation(entry.name, entry.kind, Phrase(f"mistake.{entry.name}", {}),
                                          results[name], True)
            else:
                candidates[name].append((entry, results[name]))
    for name, literal in wrong.items():
        if name not in found:
            nearest = _nearest(literal, solution.results.get(name), candidates[name])
            if nearest is not None:
                entry, value = nearest
                found[name] = Explanation(entry.name, entry.kind, Phrase(f"mistake.{entry.name}", {}), value, False)
    return found


def _nearest(literal, correct, candidates):
    """The alternative closest to the key, if it is closer than the correct value."""
    key = expected_value(literal)
    if key is None or correct is None:
        return None
    best, best_distance = None, _distance(key, correct)
    for entry, value in candidates:
        d = _distance(key, value)
        if d is not None and (best_distance is None or d < best_distance):
            best, best_distance = (entry, value), d
    return best


def _distance(a, b) -> Decimal | None:
    """Relative distance of two values of one shape (None when incomparable)."""
    x, y = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    if x.size != y.size:
        return None
    total, scale = Decimal(0), Decimal(0)
    for u, v in zip(x.flat, np.reshape(y, x.shape).flat):
        du, dv = as_decimal(u), as_decimal(v)
        if du is None or dv is None:
            return None
        total += abs(du - dv)
        scale += abs(du)
    return total / (scale or Decimal(1))


def alternatives(doc, solution, names: list | None = None, resolver: Resolver | None = None) -> list[Alternative]:
    """Results that change under the other convention for each degeneracy warning of the solution."""
    resolver = resolver or Resolver(doc, solution)
    warned = {w.key for w in solution.warnings}
    out = []
    for entry in CATALOGUE:
        if not warned.intersection(entry.degeneracies):
            continue
        results = resolver.results(entry)
        if not results:
            continue
        changed = [(name, value) for name, value in results.items()
                   if name in solution.results and not _same(value, solution.results[name])]
        in_key = [item for item in changed if names and item[0] in names]
        changed = in_key or changed[:MAX_SHOWN]
        if changed:
            out.append(Alternative(entry.name, Phrase(f"mistake.{entry.name}", {}), changed))
    return out


def _same(a, b) -> bool:
    x, y = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    if x.shape != y.shape:
        return False
    try:
        return all(u == v for u, v in zip(x.flat, y.flat))
    except (TypeError, ExamsolverError):
        return False
