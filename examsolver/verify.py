"""Answer keys: each entry compared with the computed result.

Exact answers are compared exactly (ln(2)/9*6 equals 2*ln(2)/3; for sympy
results, a − b proved 0 in polynomials by engine/identity.py, refuted at a
sample point, else simplify(a − b) == 0).  A decimal matches within the
precision it was written with, wherever it is written — a YAML number, a list entry, inside an
expression string (`"[0.33, 0.67]"`, `"ln(2)*0.22"`): 0.6667 matches 2/3, 0.66
does not and is reported as a truncation (2/3 rounds to 0.67).  `matches` is
that one rule; the Moodle export takes its blanks' tolerances from it.  A key entry may carry
its own tolerance, `{value: 0.67, tol: 0.01}` or `{value: …, rtol: …, atol: …}`,
and a tolerance may be set for every entry at once (`verify --rtol/--atol`).

This module knows nothing about files or the command line; `verify_file` ties a
spec, its key and the diagnosis (diagnose/) together into a `FileReport`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_EVEN, Decimal, localcontext
from pathlib import Path

import numpy as np

from examsolver.errors import ExamsolverError, ExprError, Problem, SpecError
from examsolver.solution import AnswerCheck, Phrase, literal_text
from examsolver.spec import limits
from examsolver.spec.expr import Written, has_decimals, parse_nested, parse_number, parse_written

_DIGITS = 60                     # working precision of decimal comparisons
_ENTRY_FIELDS = {"value", "tol", "atol", "rtol"}
MAX_KEY_ENTRIES = 10_000


# ----- tolerances ------------------------------------------------------------------
@dataclass(frozen=True)
class Tolerance:
    """|computed − key| ≤ max(atol, rtol·|key|) counts as a match."""

    rtol: Decimal | None = None
    atol: Decimal | None = None

    def __bool__(self) -> bool:
        return self.rtol is not None or self.atol is not None

    def allows(self, expected: Decimal, computed: Decimal) -> bool:
        return abs(computed - expected) <= self.bound(expected)

    def bound(self, expected: Decimal) -> Decimal:
        return max(self.atol or Decimal(0), (self.rtol or Decimal(0)) * abs(expected))

    @classmethod
    def parse(cls, rtol=None, atol=None) -> Tolerance:
        """From key-file or command-line text ('1e-3', '0.01', 1/100); ExprError when unreadable."""
        return cls(_tolerance_number(rtol), _tolerance_number(atol))


def _tolerance_number(text) -> Decimal | None:
    if text is None:
        return None
    if isinstance(text, str) and re.fullmatch(r"\s*\d+(\.\d*)?[eE][-+]?\d+\s*", text):
        value = Decimal(text.strip())
    else:
        value = parse_number(text).decimal(30)
    if value < 0:
        raise ExprError(f"a tolerance cannot be negative ({text})")
    return value


# ----- key entries -------------------------------------------------------------------
def split_entry(entry) -> tuple[object, Tolerance | None]:
    """A key entry → (the value as written, its own tolerance or None)."""
    if not isinstance(entry, dict):
        return entry, None
    unknown = set(entry) - _ENTRY_FIELDS
    if unknown or "value" not in entry:
        raise ExprError("a key entry given as a mapping needs `value:` and may have only tol, atol, rtol"
                        + (f" (unknown: {', '.join(sorted(map(str, unknown)))})" if unknown else ""))
    atol = entry.get("atol", entry.get("tol"))
    return entry["value"], Tolerance.parse(entry.get("rtol"), atol)


# ----- numbers as decimals ----------------------------------------------------------
def _is_sympy(value) -> bool:
    return type(value).__module__.startswith("sympy")


def as_decimal(value) -> Decimal | None:
    """A scalar (Exact, sympy number, int) to high precision; None for free symbols and for what has no
    real decimal (√−1 from a symbolic evaluation, ∞)."""
    if hasattr(value, "decimal"):
        return value.decimal(_DIGITS)
    if _is_sympy(value):
        if not getattr(value, "is_number", False):
            return None
        number = value.evalf(_DIGITS)
        if not (number.is_real and number.is_finite):
            return None
        return Decimal(str(number))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Decimal(str(value))
    return None


def _round(d: Decimal, places: int, mode) -> Decimal:
    with localcontext() as ctx:     # enough digits for a large number (quantize fails beyond the precision)
        ctx.prec = max(ctx.prec, d.adjusted() + places + 2)
        return d.quantize(Decimal(10) ** -places, rounding=mode)


# ----- comparison ------------------------------------------------------------------
def compare(literal, computed, tolerance: Tolerance | None = None) -> tuple[str, Phrase | None]:
    """('match' | 'mismatch' | 'invalid', detail) for one key entry.

    A decimal written with too few correct digits because it was cut off rather
    than rounded is a mismatch whose detail is `check.truncated`.
    """
    try:
        literal, own = split_entry(literal)
    except ExprError as err:
        return "invalid", Phrase("check.invalid", {"error": str(err)})
    tolerance = own if own else tolerance
    if isinstance(computed, str):     # a worded result: compared as text
        return ("match" if str(literal).strip() == computed.strip() else "mismatch"), None
    if _is_sympy(computed) and not (_sympy_number(computed) and has_decimals(literal_text(literal))):
        return _compare_symbolic(literal, computed, tolerance)
    try:
        written = np.array(parse_written(literal), dtype=object)
    except ExprError as err:
        return "invalid", Phrase("check.invalid", {"error": str(err)})
    got = np.asarray(computed, dtype=object)
    if written.size != got.size or np.squeeze(written).shape != np.squeeze(got).shape:
        return "mismatch", Phrase("check.shape", {"expected": _shape_text(written.shape),
                                                  "computed": _shape_text(got.shape)})
    truncated = None
    for w, c in zip(written.flat, np.squeeze(got).reshape(written.shape).flat):
        verdict = matches(w, c, tolerance)
        if verdict == "mismatch":
            return "mismatch", None
        if verdict != "match":
            truncated = truncated or verdict
    if truncated is not None:
        return "mismatch", truncated
    return "match", None


def matches(written: Written, computed, tolerance: Tolerance | None = None):
    """The one rule for every way of writing an answer (a YAML number, a decimal inside an
    expression, an exact form; verify, check and the Moodle blanks' tolerances): the computed
    value matches when it lies within the written value's radius — half a unit of the last digit
    of each decimal, carried through the expression (spec/expr.py parse_written) — or within the
    tolerance asked for.  'match', 'mismatch', or a `check.truncated` Phrase.
    """
    if not written.radius and written.value == computed:
        return "match"
    e, c = as_decimal(written.value), as_decimal(computed)
    if e is None or c is None or not (e.is_finite() and c.is_finite()):
        return "mismatch"
    if tolerance and tolerance.allows(e, c):
        return "match"
    if written.radius and abs(c - e) <= _upper_decimal(written.radius):
        return "match"
    places = written.places
    if places is not None and _round(c, places, ROUND_DOWN) == _round(e, places, ROUND_DOWN) == e:
        return Phrase("check.truncated", {"expected": f"{e:.{places}f}",
                                           "rounded": str(_round(c, places, ROUND_HALF_EVEN))})
    return "mismatch"


def blank_tolerance(text: str) -> Decimal:
    """The tolerance of a numeric blank whose answer is printed as text ('0.154' → 0.0005): the
    radius `matches` gives that text, so a blank accepts what `check` accepts written that way."""
    (written,) = np.asarray(parse_written(text), dtype=object).flat
    return _upper_decimal(written.radius)


def _upper_decimal(q) -> Decimal:
    """A Fraction as a Decimal rounded up (a radius never shrinks)."""
    with localcontext() as ctx:
        ctx.prec, ctx.rounding = _DIGITS, ROUND_CEILING
        return Decimal(q.numerator) / Decimal(q.denominator)


def _sympy_number(value) -> bool:
    """A sympy result that is a plain number (a key with decimals is read by their precision)."""
    return getattr(value, "is_number", False) and not hasattr(value, "shape")


def _compare_symbolic(literal, computed, tolerance):
    """A sympy result: the key is read by the symbolic parser, equal when a − b is proved 0 (engine/identity.py)
    or simplifies to 0."""
    parse = _symbolic_parser()
    if parse is None:
        return "invalid", Phrase("check.invalid", {"error": "symbolic keys need spec/expr.py's symbolic parser"})
    symbols = {str(s): s for s in getattr(computed, "free_symbols", ())}
    try:
        expected = parse(literal if isinstance(literal, (str, int)) else literal_text(literal), symbols)
    except (ExprError, ExamsolverError) as err:
        return "invalid", Phrase("check.invalid", {"error": str(err)})
    import sympy

    from examsolver.engine.identity import differs_somewhere, proves_zero

    got = computed
    try:
        difference = expected - got
        if proves_zero(difference):                  # an exact proof, in milliseconds
            return "match", None
        if differs_somewhere(difference):            # certainly unequal: no simplification needed
            return "mismatch", None
        difference = sympy.simplify(difference)
    except (TypeError, AttributeError, ValueError):    # e.g. a matrix against a scalar
        return "mismatch", None
    if difference == 0 or (isinstance(difference, sympy.MatrixBase) and difference.is_zero_matrix):
        return "match", None
    if tolerance:
        e, c = as_decimal(expected), as_decimal(got)
        if e is not None and c is not None and tolerance.allows(e, c):
            return "match", None
    return "mismatch", None


def _symbolic_parser():
    """spec/expr.py's text → sympy parser (added by the symbolic problem kind), if present."""
    from examsolver.spec import expr

    for name in ("parse_symbolic", "parse_sympy", "parse_expression"):
        if callable(getattr(expr, name, None)):
            return getattr(expr, name)
    return None


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def check_answers(answers: dict, results: dict, tolerance: Tolerance | None = None) -> list[AnswerCheck]:
    checks = []
    for name, literal in (answers or {}).items():
        if name not in results:
            checks.append(AnswerCheck(name, literal, None, "missing",
                                      Phrase("check.unknown_name", {"names": ", ".join(results)})))
            continue
        status, detail = compare(literal, results[name], tolerance)
        checks.append(AnswerCheck(name, literal, results[name], status, detail))
    return checks


def expected_value(literal):
    """The parsed key value (Exact or ndarray) for reports, or None when unreadable."""
    try:
        value, _ = split_entry(literal)
        parsed = parse_nested(value)
    except ExprError:
        return None
    return np.array(parsed, dtype=object) if isinstance(parsed, list) else parsed


# ----- file reports ----------------------------------------------------------------
@dataclass
class Explanation:
    """Which catalogued convention or mistake reproduces a wrong key entry."""

    mistake: str            # catalogue name
    kind: str               # "convention" | "mistake"
    phrase: Phrase          # what it is, in words
    value: object           # the result under that convention or mistake
    exact: bool             # True: reproduces the key; False: only the nearest


@dataclass
class Alternative:
    """A result that changes under another convention at a degenerate input."""

    mistake: str
    phrase: Phrase
    values: list            # [(result name, value)]


@dataclass
class EntryReport:
    check: AnswerCheck
    explanation: Explanation | None = None

    @property
    def ok(self) -> bool:
        return self.check.status == "match"

    @property
    def truncated(self) -> bool:
        return self.check.detail is not None and self.check.detail.key == "check.truncated"


@dataclass
class FileReport:
    path: str
    problem_id: str | None = None
    title: dict = field(default_factory=dict)
    entries: list[EntryReport] = field(default_factory=list)
    warnings: list[Phrase] = field(default_factory=list)
    alternatives: list[Alternative] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)   # a bad file: one line per problem
    key_source: str | None = None
    seconds: float = 0.0
    internal: bool = False         # the error is a bug of ours, not the file's

    @property
    def status(self) -> str:
        """'error' (unreadable/invalid), 'fail' (a wrong entry), 'nokey', or 'pass'."""
        if self.errors:
            return "error"
        if any(not e.ok for e in self.entries):
            return "fail"
        return "pass" if self.entries else "nokey"


def exit_code(reports: list[FileReport]) -> int:
    """INTERNAL_ERROR for a bug of ours, 2 when a file could not be checked, 1 when an entry is wrong, else 0."""
    from examsolver.errors import INTERNAL_ERROR

    if any(r.internal for r in reports):
        return INTERNAL_ERROR
    statuses = {r.status for r in reports}
    if "error" in statuses:
        return 2
    return 1 if "fail" in statuses else 0


SPEC_SUFFIXES = (".yaml", ".yml")


def expand_paths(names: list[str]) -> tuple[list[Path], list[str]]:
    """Files, directories (every spec inside, sorted) and globs → (spec files, names matching nothing)."""
    import glob

    files, missing, seen = [], [], set()

    def add(path: Path) -> None:
        if path not in seen:
            seen.add(path)
            files.append(path)

    for name in names:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file())
        elif path.is_file():
            found = [path]
        elif glob.has_magic(name):
            found = sorted(Path(p) for p in glob.glob(name, recursive=True) if Path(p).is_file())
        else:
            found = []
        if not found:
            missing.append(name)
        for p in found:
            add(p)
    return files, missing


def load_key(path: Path, problem_id: str) -> dict:
    """The answers of a key file `<id>.yaml`: `answers:` (or the whole mapping)."""
    return _load_key(path, problem_id)[0]


def _load_key(path: Path, problem_id: str) -> tuple[dict, object, tuple]:
    """(answers, the key's Document, the YAML path of its answers mapping)."""
    from examsolver.spec.load import load_file

    doc = load_file(path)
    data = doc.data
    if not isinstance(data, dict):
        raise SpecError([doc.problem((), "an answer file must be a YAML mapping of result names to answers")])
    if "id" in data and str(data["id"]) != str(problem_id):
        raise SpecError([doc.problem(("id",), f"key is for problem {data['id']!r}, the spec is {problem_id!r}")])
    answers = data.get("answers", data if "id" not in data else None)
    if not isinstance(answers, dict):
        raise SpecError([doc.problem(("answers",), "expected `answers:` mapping result names to answers")])
    if len(answers) > MAX_KEY_ENTRIES:
        raise SpecError([doc.problem(("answers",), f"more than {MAX_KEY_ENTRIES} answers")])
    return {str(k): v for k, v in answers.items()}, doc, ("answers",) if "answers" in data else ()


def verify_file(path, keys_dir=None, answers_file=None, tolerance: Tolerance | None = None,
                diagnose: bool = True) -> FileReport:
    """Solve one spec and compare its key (own, `keys_dir/<id>.yaml`, or an answer file)."""
    from examsolver.spec.load import load_file

    start = time.perf_counter()
    report = FileReport(str(path))
    try:
        doc = load_file(path)
        with limits.cpu_budget(), limits.located(doc, ()):     # the diagnosis too: one budget per file
            _verify(report, doc, keys_dir, answers_file, tolerance, diagnose)
    except SpecError as err:
        report.errors = [str(p) for p in err.problems]
    except ExamsolverError as err:
        report.errors = [f"{path}: {err}"]
    except RecursionError:
        report.errors = [f"{path}: nested too deeply"]
    report.seconds = time.perf_counter() - start
    return report


def _verify(report: FileReport, doc, keys_dir, answers_file, tolerance, diagnose: bool) -> None:
    """Solve, compare the key, and explain the wrong entries, into report."""
    from examsolver.pipeline import solve_document

    solution = solve_document(doc, answers={}, with_alternatives=False)
    report.problem_id, report.title = solution.problem_id, solution.title or {}
    answers, report.key_source, key_doc, key_loc = _key_for(doc, solution.problem_id, keys_dir, answers_file)
    checks = check_answers(answers, solution.results, tolerance)
    report.entries = [EntryReport(c) for c in checks]
    # an unreadable answer is an invalid input (exit 2), located in the file that holds it
    report.errors = [str(key_doc.problem(key_loc + (c.name,), f"{c.name}: {c.detail.args['error']}"))
                     for c in checks if c.status == "invalid"]
    report.warnings = list(solution.warnings)
    if diagnose:
        from examsolver.diagnose import Resolver, alternatives, explain

        resolver = Resolver(doc, solution)       # each convention's results once, for both uses
        wrong = {e.check.name: e.check.expected for e in report.entries if e.check.status == "mismatch"}
        found = explain(doc, solution, wrong, tolerance, resolver) if wrong else {}
        for entry in report.entries:
            entry.explanation = found.get(entry.check.name)
        if solution.warnings:
            report.alternatives = alternatives(doc, solution, list(answers) or None, resolver)


def _key_for(doc, problem_id, keys_dir, answers_file) -> tuple[dict, str, object, tuple]:
    """(answers, where they come from, the Document holding them, YAML path of the answers mapping)."""
    key_path = Path(answers_file) if answers_file is not None else None
    if keys_dir is not None and key_path is None:
        key_path = Path(keys_dir) / f"{problem_id}.yaml"
        if not key_path.is_file():
            raise SpecError([Problem(str(key_path), None, None, f"no key file for problem {problem_id!r}")])
    if key_path is not None:
        answers, key_doc, loc = _load_key(key_path, problem_id)
        return answers, str(key_path), key_doc, loc
    answers = doc.data.get("answers") if isinstance(doc.data, dict) else None
    return dict(answers or {}), doc.path, doc, ("answers",)
