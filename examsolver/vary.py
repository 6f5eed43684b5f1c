"""Exam variants with nice numbers: `examsolver vary SPEC -n N --seed S -o DIR`.

The spec's `vary:` block (spec/vary.py) says which values may change and how.  Candidates are drawn
reproducibly (candidate i from Random(f"{seed}:{i}")), solved like any problem, and kept only when

- the `where:` constraints hold and the candidate differs from the original and every kept variant;
- every value of the worked solution — each step's numbers, not only the answers — is nice: rationals
  with denominators ≤ D and at most K digits, over the atoms (ln 2, √3, …) the original uses, and
  certified values only where the original has them;
- it keeps what `keep:` asks: the original's decisions (the same signs decided in the same order:
  ReLU masks, max-pool winners, rankings, hinge activity), or at least no degeneracy (tie, kink) the
  original does not have.

Each variant is written as a spec whose answer key is the engine's results under the original's names.
"""

from __future__ import annotations

import copy
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import numpy as np

from examsolver.engine import scalar
from examsolver.engine.scalar import Exact
from examsolver.errors import ExamsolverError, ExprError, SpecError
from examsolver.spec import vary as V
from examsolver.spec.load import Document

MAX_VARIANTS = 1000
TRIES_PER_VARIANT = 200
MAX_TRIES = 5000
CPU_SECONDS = 120          # the whole draw stops after this much CPU time, with the variants it has


@dataclass
class Variant:
    number: int
    data: dict                 # the variant's spec (plain YAML values)
    drawn: dict                # path → drawn value (plain YAML values)
    solution: object


@dataclass
class Stress:
    """What `--report` tells: acceptance, the answers' spread, repeats, time."""

    tried: int = 0
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)     # reason → count
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    original_problems: list = field(default_factory=list)  # where the original itself breaks the budget
    original: object = None                                # the original's solution (marked in the figure)

    @property
    def rate(self) -> float:
        return self.accepted / self.tried if self.tried else 0.0


# ----- drawing ---------------------------------------------------------------------------------
def read_block(doc: Document):
    """(validated Vary block, rules, constraints) of a spec; SpecError located otherwise."""
    if not isinstance(doc.data, dict) or "vary" not in doc.data:
        raise SpecError([doc.problem((), "no `vary:` block: say which values a variant may change "
                                         "(e.g. vary: {values: {data.x: {each: {from: -2, to: 2}}}})")])
    return V.check_block(doc)


def draw(doc: Document, n: int, seed: int, max_tries: int | None = None,
         seconds: float = CPU_SECONDS) -> tuple[list[Variant], Stress]:
    """Up to n variants of the spec (fewer when the budget leaves fewer, or after `seconds` of CPU) and
    the stress figures."""
    from examsolver.pipeline import solve_document

    if not 1 <= n <= MAX_VARIANTS:
        raise ExamsolverError(f"-n must be between 1 and {MAX_VARIANTS}")
    block, rules, constraints = read_block(doc)
    began, cpu = time.perf_counter(), time.process_time()
    original, decisions = _solve_recording(solve_document, doc)
    ring = _ring(original)
    stress = Stress(original_problems=_not_nice(original, block.nice, ring)[:5], original=original)
    seen = {_signature(doc.data, rules)}
    variants = []
    for i in range(min(max_tries or TRIES_PER_VARIANT * n, MAX_TRIES)):
        if len(variants) == n:
            break
        if time.process_time() - cpu > seconds:
            stress.rejected[f"not drawn: the draw stopped after {seconds:g} s of CPU"] += 1
            break
        stress.tried += 1
        data, drawn = _candidate(doc.data, rules, random.Random(f"{seed}:{i}"))
        reason = _reject_before_solving(data, constraints, seen, rules)
        solution = None
        if reason is None:
            reason, solution = _judge(solve_document, doc, data, block, ring, original, decisions)
        if reason is not None:
            stress.rejected[reason] += 1
            continue
        seen.add(_signature(data, rules))
        _name_variant(data, solution, len(variants) + 1, doc.data.get("id", "problem"))
        variants.append(Variant(len(variants) + 1, data, drawn, solution))
    stress.accepted, stress.seconds = len(variants), time.perf_counter() - began
    stress.cpu_seconds = time.process_time() - cpu
    return variants, stress


def _name_variant(data: dict, solution, number: int, original_id: str) -> None:
    """Its own id (2022_z3_v01) and title ("… (variant 1)"), in the spec and in the solution."""
    from examsolver.locales import catalog

    data["id"] = solution.problem_id = f"{original_id}_v{number:02d}"
    solution.title = {lang: catalog(lang)["doc.variant_title"].format(title=text, n=number)
                      for lang, text in solution.title.items() if text}
    data["title"] = dict(solution.title)


def _solve_recording(solve_document, doc: Document):
    """(solution, the signs it decided, in order): the original's or a candidate's."""
    scalar.DECISIONS = []
    try:
        solution = solve_document(doc, answers={}, with_alternatives=False)
        return solution, scalar.DECISIONS
    finally:
        scalar.DECISIONS = None


def _candidate(data: dict, rules: list, rng: random.Random) -> tuple[dict, dict]:
    from examsolver.spec.expr import parse_nested

    data, drawn = copy.deepcopy(data), {}
    for rule in rules:
        if rule.each:
            shape = np.asarray(parse_nested(V.get(data, rule.loc)), dtype=object).shape
            value = np.array([rng.choice(rule.choices) for _ in range(int(np.prod(shape)))],
                             dtype=object).reshape(shape).tolist()
        else:
            value = rng.choice(rule.choices)
        value = _yaml_value(value)
        if rule.index:
            tensor = _yaml_value(parse_nested(V.get(data, rule.loc)))
            _set_entry(tensor, rule.index, value)
            V.put(data, rule.loc, tensor)
        else:
            V.put(data, rule.loc, value)
        drawn[V._text(rule.path)] = value
    return data, drawn


def _set_entry(tensor, index: tuple, value) -> None:
    for i in index[:-1]:
        tensor = tensor[i]
    tensor[index[-1]] = value


def _reject_before_solving(data: dict, constraints: list, seen: set, rules: list) -> str | None:
    if _signature(data, rules) in seen:
        return "repeats the original or a kept variant"
    for text, tree in constraints:
        try:
            if not V.holds(tree, lambda path: _value_at(data, path)):
                return f"where: {text}"
        except (ExprError, ArithmeticError, TypeError, IndexError) as err:
            return f"where: {text} ({err})"
    return None


def _value_at(data: dict, path: tuple):
    from examsolver.spec.expr import parse_nested

    loc, index = V.locate(data, path)
    value = parse_nested(V.get(data, loc))
    for i in index:
        value = value[i]
    if isinstance(value, list):
        raise ExprError(f"{V._text(path)} is a tensor; compare its entries ({V._text(path)}[0], …)")
    return value


def _judge(solve_document, doc: Document, data: dict, block, ring, original, decisions):
    """(reason to reject or None, the solution)."""
    candidate = Document(doc.path, data, doc.positions)
    try:
        solution, signs = _solve_recording(solve_document, candidate)
    except ExamsolverError as err:
        return f"does not solve: {_first_message(err)}", None
    if block.keep == "decisions" and signs != decisions:
        return "other decisions (ReLU mask, winner, ranking) than the original", None
    if block.keep != "nothing" and _new_degeneracies(solution, original):
        return "a tie or kink the original does not have", None
    problems = _not_nice(solution, block.nice, ring)
    if problems:
        return f"not nice: {problems[0]}", None
    return None, solution


def unshown(doc: Document) -> list[str]:
    """The varied paths a statement does not show through a {{placeholder}}: its variants' statements would
    repeat the original's numbers there."""
    statement = doc.data.get("statement") if isinstance(doc.data, dict) else None
    if not isinstance(statement, dict):
        return []
    shown = {V.parse_path(p) for text in statement.values() if isinstance(text, str) for p in V.placeholders(text)}
    _, rules, _ = read_block(doc)
    return [V._text(rule.path) for rule in rules
            if not any(s[:len(rule.path)] == rule.path or rule.path[:len(s)] == s for s in shown)]


def _first_message(err: ExamsolverError) -> str:
    """The reason without the file's name and position (they are the original's)."""
    text = str(err.problems[0].message) if isinstance(err, SpecError) and err.problems else str(err)
    return text.splitlines()[0][:80] if text else type(err).__name__


def _new_degeneracies(solution, original) -> bool:
    have = Counter(w.key for w in original.warnings)
    return bool(Counter(w.key for w in solution.warnings) - have)


# ----- niceness ------------------------------------------------------------------------------
def _values(solution):
    """Every number of a worked solution: results, every step's bound values and result, table cells."""
    from examsolver.solution import Step, Table

    yield from solution.results.values()
    for section in solution.sections:
        for block in section.blocks:
            if isinstance(block, Step):
                yield from block.bindings.values()
                yield block.result
            elif isinstance(block, Table):
                for row in block.rows:
                    yield from row


def _numbers(solution):
    for value in _values(solution):
        if isinstance(value, Exact):
            yield value
        elif isinstance(value, (np.ndarray, list, tuple)):
            for v in np.asarray(value, dtype=object).flat:
                if isinstance(v, Exact):
                    yield v


def _ring(solution) -> tuple[set, bool]:
    """The atoms (ln 2, √3, π, e) the original's numbers use, and whether it has certified values."""
    atoms, certified = set(), False
    for v in _numbers(solution):
        if v.is_symbolic:
            certified = True
        else:
            atoms.update(atom for mono in v.terms for atom, _ in mono)
    return atoms, certified


def _not_nice(solution, nice, ring) -> list[str]:
    atoms, certified = ring
    limit = 10 ** nice.digits
    out = []
    for v in _numbers(solution):
        if v.is_symbolic:
            if not certified:
                out.append(f"{v} leaves the ring of the original")
            continue
        for mono, c in v.terms.items():
            if any(atom not in atoms for atom, _ in mono):
                out.append(f"{v} uses a number the original does not")
            elif c.denominator > nice.denominator or abs(c.numerator) >= limit or c.denominator >= limit:
                out.append(f"{v} (denominator or digits over the budget)")
        if len(out) >= 5:
            break
    return out


# ----- writing ---------------------------------------------------------------------------------
def _yaml_value(value):
    """An exact value (or nested list) as YAML: integers as numbers, the rest as our expression text."""
    if isinstance(value, list):
        return [_yaml_value(v) for v in value]
    if isinstance(value, Exact):
        if value.is_integer():
            return int(value.as_fraction())
        if value.is_rational() and _finite_decimal(value.as_fraction()):
            from examsolver.spec.load import DecimalText

            q = value.as_fraction()
            return DecimalText(format(Decimal(q.numerator) / Decimal(q.denominator), "f"))
        from examsolver.notation.values import code

        return code(value)
    return value


def _finite_decimal(q) -> bool:
    d = q.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1 and q.denominator < 10**12


def _signature(data: dict, rules: list) -> str:
    return repr([V.get(data, rule.loc) for rule in rules])


def answer_key(solution, names: list) -> dict:
    """The engine's results under the original key's names, as text our parser reads back."""
    from examsolver.render.jsonout import result_entry

    key = {}
    for name in names:
        if name in solution.results:
            entry = result_entry(solution.results[name])
            key[name] = entry.get("exact", entry.get("digits"))
    return key


def variant_spec(doc: Document, variant: Variant, seed: int) -> str:
    """The YAML text of a variant: the original with the drawn values, its own id and key, no vary block."""
    import yaml

    data = {k: v for k, v in variant.data.items() if k != "vary"}
    if "answers" in doc.data:
        data["answers"] = answer_key(variant.solution, list(doc.data["answers"] or {}))
    head = (f"# Variant {variant.number} of {doc.path} (examsolver vary --seed {seed}); drawn: "
            + "; ".join(f"{k} = {v}" for k, v in variant.drawn.items()) + "\n")
    return head + yaml.dump(data, Dumper=_dumper(), sort_keys=False, allow_unicode=True, width=110)


@lru_cache(maxsize=1)
def _dumper():
    """Safe YAML out; a decimal kept as text in the spec (1.3) is written back as the decimal it was."""
    import yaml

    from examsolver.spec.load import DecimalText

    class Dumper(yaml.SafeDumper):
        pass

    def flow_tensors(dumper, items):      # a tensor on one line, as a TA writes it
        flow = all(not isinstance(v, (dict, list)) or isinstance(v, list) and
                   all(not isinstance(w, (dict, list)) for w in v) for v in items)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=flow or None)

    def prose(dumper, text):              # a statement as a folded block, wrapped like the original
        style = ">" if len(text) > 80 and not text.startswith((" ", "\n")) else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)

    Dumper.add_representer(DecimalText, lambda d, v: d.represent_scalar("tag:yaml.org,2002:float", str(v)))
    Dumper.add_representer(list, flow_tensors)
    Dumper.add_representer(str, prose)
    return Dumper


def write_variants(doc: Document, variants: list, seed: int, directory: Path) -> list[Path]:
    from examsolver.render.output import write_atomic

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for variant in variants:
        path = directory / f"{variant.data['id']}.yaml"
        write_atomic(path, variant_spec(doc, variant, seed))
        paths.append(path)
    return paths


# ----- the stress report ---------------------------------------------------------------------
def answer_spread(doc: Document, variants: list) -> dict:
    """answer name → [(entry label, [float per variant])] for the key's numeric answers."""
    names = list((doc.data.get("answers") or {}) if isinstance(doc.data, dict) else {}) \
        or list(variants[0].solution.results) if variants else []
    spread = {}
    for name in names:
        columns = {}
        for variant in variants:
            value = variant.solution.results.get(name)
            if value is None:
                continue
            array = np.asarray(value, dtype=object)
            for idx, v in np.ndenumerate(array):
                if isinstance(v, Exact):
                    label = name + ("" if array.ndim == 0 else "[" + ", ".join(map(str, idx)) + "]")
                    columns.setdefault(label, []).append(float(v))
        if columns:
            spread[name] = list(columns.items())
    return spread


def repeats(doc: Document, variants: list) -> list[tuple[str, int]]:
    """(answer name, how many variants share their most common value) where an answer repeats."""
    from examsolver.render.jsonout import result_entry

    names = list(doc.data.get("answers") or {}) if isinstance(doc.data, dict) else []
    out = []
    for name in names:
        texts = Counter(str(result_entry(v.solution.results[name]).get("exact", ""))
                        for v in variants if name in v.solution.results)
        texts.pop("", None)
        if texts and texts.most_common(1)[0][1] > 1:
            out.append((name, texts.most_common(1)[0][1]))
    return out


def report_text(doc: Document, variants: list, stress: Stress, wanted: int) -> str:
    lines = [f"{doc.path}: {stress.accepted} of {wanted} variants from {stress.tried} candidates "
             f"(acceptance {stress.rate:.0%}) in {stress.seconds:.1f} s ({stress.cpu_seconds:.1f} s of CPU)"]
    for reason, count in stress.rejected.most_common(6):
        lines.append(f"  rejected {count:>4}×: {reason}")
    for name, columns in answer_spread(doc, variants).items():
        for label, xs in columns[:6]:
            lines.append(f"  {label}: {min(xs):.6g} … {max(xs):.6g} ({len(set(xs))} distinct of {len(xs)})")
    warnings = []
    if stress.accepted < wanted:
        warnings.append(f"only {stress.accepted} of {wanted} variants: loosen `nice:`, `keep:` or widen the "
                        "choices")
    for name, count in repeats(doc, variants):
        warnings.append(f"answer {name} repeats: {count} variants share one value (students notice patterns)")
    for problem in stress.original_problems:
        warnings.append(f"the original itself breaks the budget: {problem}")
    return "\n".join(lines + [f"warning: {w}" for w in warnings]) + "\n"


def report_figure(doc: Document, variants: list, path: Path, original=None) -> Path | None:
    """A strip plot of every answer entry over the variants (the original marked ×), as PNG."""
    spread = answer_spread(doc, variants)
    columns = [(label, xs) for entries in spread.values() for label, xs in entries][:24]
    marks = dict(label_x for entries in answer_spread(doc, [Variant(0, {}, {}, original)]).values()
                 for label_x in entries) if original is not None else {}
    if not columns:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.35 * len(columns) + 1.2))
    for row, (label, xs) in enumerate(columns):
        jitter = [row + 0.15 * ((k % 5) - 2) / 2 for k in range(len(xs))]
        ax.scatter(xs, jitter, s=14, alpha=0.7)
        if label in marks:
            ax.scatter(marks[label], [row], marker="x", color="black", s=30, label="original" if row == 0 else None)
    ax.set_yticks(range(len(columns)), [label for label, _ in columns])
    ax.invert_yaxis()
    ax.set_xlabel("value over the variants")
    ax.set_title(f"{doc.data.get('id', '')}: {len(variants)} variants")
    if marks:
        ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    from io import BytesIO

    from examsolver.render.output import write_atomic

    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_atomic(path, buffer.getvalue())
    return path

