"""Retrieval problems: similarity of a query to a database, ranking, P/R table, PR curve, AP.

The shape of the 2022 final exam, task 2: embeddings X with identities y, a query
embedding x_i with identity y_i, a similarity (reciprocal L1 distance there), the
ranking written with labels, precision and recall at a threshold on every item,
the PR curve and the average precision.  Every decision (the ranking, ties, the
best precision at a recall) is taken on exact values; floats only feed the figure.

Conventions a solution states: the similarity; distance 0 under a reciprocal
similarity is an infinite similarity that ranks first; ties in the scores are
ordered by a rule (`ties:` index, optimistic, pessimistic, or grouped into one
threshold as scikit-learn does) and flagged; the curve gets the point R = 0 with
the best precision at the smallest recall (the slides' convention); AP is shown
both non-interpolated, Σ(Rₙ − Rₙ₋₁)Pₙ (scikit-learn's average_precision_score),
and interpolated over all points, P_interp(R) = max over R' ≥ R.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cmp_to_key
from typing import Any, Literal

import numpy as np
from pydantic import Field

from examsolver.engine.scalar import Exact, sqrt
from examsolver.errors import SpecError
from examsolver.mathnodes import (Abs, Call, Const, Frac, Infinity, Neg, Norm, Op, Paren, Power, Seq, Sum, Sym,
                                  Value, mul)
from examsolver.solution import Figure, Phrase, Solution, Step, Table
from examsolver.spec.model import Localized, Number, Strict, Tensor, Text as TextField, TitlePage

MAX_ITEMS = 500
MAX_DIM = 1000
MAX_QUERIES = 50

SIMILARITIES = ("reciprocal_l1", "reciprocal_l2", "negative_l1", "negative_l2", "dot", "cosine")
TIE_RULES = ("index", "optimistic", "pessimistic", "grouped")
INFINITY = Infinity()


# ----- the spec ----------------------------------------------------------------------
class Query(Strict):
    x: Tensor = Field(description="embedding of the query (a vector as long as a row of X)")
    y: Number = Field(description="identity of the query; items with the same identity are relevant")


class RetrievalSpec(Strict):
    id: TextField
    kind: Literal["retrieval"]
    source: TextField = ""
    document: TitlePage = Field(default_factory=TitlePage)
    title: Localized = Localized()
    statement: Localized | None = None
    X: Tensor = Field(description="database embeddings, one row per item")
    y: Tensor = Field(description="identities of the database items")
    query: Query | list[Query] = Field(description="one query, or a list of them (then mAP is computed)")
    similarity: Literal[SIMILARITIES] = "reciprocal_l1"
    ties: Literal[TIE_RULES] = "index"
    answers: dict[str, Any] = Field(default_factory=dict)


def retrieval_spec_model():
    return RetrievalSpec


# ----- similarity measures ---------------------------------------------------------------
def _l1(q, x) -> tuple[Exact, Any]:
    """‖q − x‖₁ and the sum written with the numbers: |1 − 1| + |1 − 0|."""
    value = sum((abs(a - b) for a, b in zip(q, x)), Exact(0))
    terms = tuple(Abs(Op("-", (Value(a), Value(b)))) for a, b in zip(q, x))
    return value, terms[0] if len(terms) == 1 else Op("+", terms)


def _l2(q, x) -> tuple[Exact, Any]:
    """‖q − x‖₂ and √((1 − 3)² + (1 − (−1))²)."""
    value = sqrt(sum(((a - b) ** 2 for a, b in zip(q, x)), Exact(0)))
    terms = tuple(Power(Paren(Op("-", (Value(a), Value(b)))), Const(2)) for a, b in zip(q, x))
    return value, Call("sqrt", (terms[0] if len(terms) == 1 else Op("+", terms),))


def _dot(q, x) -> tuple[Exact, Any]:
    value = sum((a * b for a, b in zip(q, x)), Exact(0))
    terms = tuple(mul(Value(a), Value(b)) for a, b in zip(q, x))
    return value, terms[0] if len(terms) == 1 else Op("+", terms)


def _norm(x) -> tuple[Exact, Any]:
    value = sqrt(sum((a * a for a in x), Exact(0)))
    terms = tuple(Power(Value(a) if a.sign() >= 0 else Paren(Value(a)), Const(2)) for a in x)
    return value, Call("sqrt", (terms[0] if len(terms) == 1 else Op("+", terms),))


@dataclass
class Scored:
    """One query against the database: distances (if any), scores, and the exact ranking key."""

    distances: list | None
    scores: list            # Exact, or None where the similarity is infinite
    keys: list              # descending order of keys is the ranking (finite even when s = ∞)
    steps: list = field(default_factory=list)


def score(measure: str, q, X, qsym: Sym, syms: list) -> Scored:
    """Similarities of q to every row of X, with one step per distance and similarity."""
    if measure in ("dot", "cosine"):
        return _score_inner(measure, q, X, qsym, syms)
    metric = _l1 if measure.endswith("l1") else _l2
    kind = "reciprocal" if measure.startswith("reciprocal") else "negative"
    out = Scored([], [], [])
    for j, (x, xsym) in enumerate(zip(X, syms)):
        d, numeric = metric(q, x)
        dsym, ssym = Call("d", (qsym, xsym)), Call("s", (qsym, xsym))
        bound = {dsym: Value(d) if d.is_rational() else Paren(Value(d))}   # 1/(2 √2), not 1/2 √2
        out.steps.append(Step(lhs=dsym, forms=[numeric], result=d,
                              text=Phrase(f"retrieval.distance_{measure[-2:]}", {"query": qsym}) if j == 0 else None))
        if kind == "negative":
            s = -d
            out.steps.append(Step(lhs=ssym, forms=[Neg(dsym)], bindings=bound, result=s,
                                  text=Phrase("retrieval.similarity_negative") if j == 0 else None))
        elif d.sign() == 0:
            s = None
            out.steps.append(Step(lhs=ssym, forms=[Frac(Const(1), dsym)], bindings=bound,
                                  extra_forms=[INFINITY], text=Phrase("retrieval.similarity_infinite")))
        else:
            s = 1 / d
            out.steps.append(Step(lhs=ssym, forms=[Frac(Const(1), dsym)], bindings=bound, result=s,
                                  text=Phrase("retrieval.similarity_reciprocal") if j == 0 else None))
        out.distances.append(d)
        out.scores.append(s)
        out.keys.append(-d)
    return out


def _score_inner(measure: str, q, X, qsym: Sym, syms: list) -> Scored:
    out = Scored(None, [], [])
    qnorm, qnorm_form = _norm(q)
    if measure == "cosine" and qnorm.sign() == 0:
        raise _Undefined("query", "cosine similarity is undefined for a zero query vector")
    for j, (x, xsym) in enumerate(zip(X, syms)):
        d, numeric = _dot(q, x)
        ssym = Call("s", (qsym, xsym))
        generic = mul(qsym.T, xsym)
        if measure == "cosine":
            xnorm, xnorm_form = _norm(x)
            if xnorm.sign() == 0:
                raise _Undefined(("X", j), f"cosine similarity is undefined: item {j + 1} is a zero vector")
            s = d / (qnorm * xnorm)
            generic = Frac(generic, mul(Norm(qsym), Norm(xsym)))
            numeric = Frac(numeric, mul(qnorm_form, xnorm_form))
        else:
            s = d
        out.steps.append(Step(lhs=ssym, forms=[generic], extra_forms=[numeric], result=s,
                              text=Phrase(f"retrieval.similarity_{measure}", {"query": qsym}) if j == 0 else None))
        out.scores.append(s)
        out.keys.append(s)
    return out


class _Undefined(Exception):
    """A similarity that cannot be computed; turned into a located SpecError."""

    def __init__(self, where, message):
        super().__init__(message)
        self.where, self.message = where, message


# ----- ranking and thresholds ----------------------------------------------------------
def rank(keys: list, relevant: list, rule: str) -> tuple[list, list]:
    """(order of item indices, tie groups) for descending keys, ties ordered by the rule.

    Equal keys are found by exact comparison.  Within a group: by index ('index',
    'grouped'), relevant items first ('optimistic') or last ('pessimistic').
    """
    def by_key(i, j):
        return (keys[j] - keys[i]).sign() or (i > j) - (i < j)

    ordered = sorted(range(len(keys)), key=cmp_to_key(by_key))
    groups, current = [], [ordered[0]]
    for i in ordered[1:]:
        if keys[i] == keys[current[0]]:
            current.append(i)
        else:
            groups.append(current)
            current = [i]
    groups.append(current)
    if rule in ("optimistic", "pessimistic"):
        first = rule == "optimistic"
        groups = [sorted(g, key=lambda i: (relevant[i] != first, i)) for g in groups]
    return [i for g in groups for i in g], groups


@dataclass
class Row:
    """One threshold: the first k items of the ranking are the positive predictions."""

    k: int
    items: list
    tp: int
    fp: int
    fn: int
    p: Exact
    r: Exact


def thresholds(order: list, groups: list, relevant: list, grouped: bool) -> list[Row]:
    """A threshold at every item, or at every distinct score when grouped."""
    total = sum(relevant)
    cuts = np.cumsum([len(g) for g in groups]).tolist() if grouped else range(1, len(order) + 1)
    rows = []
    for k in cuts:
        tp = sum(relevant[i] for i in order[:k])
        rows.append(Row(k, order[:k], tp, k - tp, total - tp, Exact(tp) / k, Exact(tp) / total))
    return rows


def average_precision(rows: list) -> tuple[Exact, list]:
    """Σ(Rₙ − Rₙ₋₁)Pₙ over the thresholds, R₀ = 0; also the terms."""
    terms, previous = [], Exact(0)
    for row in rows:
        terms.append((row.r, previous, row.p))
        previous = row.r
    return sum(((r - r0) * p for r, r0, p in terms), Exact(0)), terms


def interpolated(rows: list) -> list[tuple]:
    """[(recall level, precisions with R' ≥ it, their maximum)] for every distinct recall > 0."""
    levels = []
    for row in rows:
        if row.r.sign() > 0 and (not levels or levels[-1] != row.r):
            levels.append(row.r)
    out = []
    for level in levels:
        candidates = [row.p for row in rows if row.r >= level]
        out.append((level, candidates, max(candidates)))
    return out


def interpolated_ap(levels: list) -> Exact:
    total, previous = Exact(0), Exact(0)
    for level, _, best in levels:
        total = total + (level - previous) * best
        previous = level
    return total


def curve_start(rows: list) -> tuple[Exact, Exact] | None:
    """The added point (R = 0, P = best precision at the smallest recall), unless some threshold has R = 0."""
    smallest = min(row.r for row in rows)
    if smallest.sign() == 0:
        return None
    return Exact(0), max(row.p for row in rows if row.r == smallest)


# ----- the solution ---------------------------------------------------------------------
@dataclass
class Outcome:
    """Everything computed for one query."""

    n: int | None
    qsym: Sym
    scored: Scored
    relevant: list
    order: list
    groups: list
    rows: list
    ap: Exact
    ap_terms: list
    levels: list
    ap_interp: Exact


class Retrieval:
    def __init__(self, spec, doc):
        self.spec, self.doc = spec, doc
        self.X, self.y = spec.X, spec.y
        self.queries = spec.query if isinstance(spec.query, list) else [spec.query]
        self.batched = isinstance(spec.query, list)
        self._check()
        self.syms = [Sym("X", sub=str(j + 1), bold=True) for j in range(self.X.shape[0])]

    def fail(self, loc: tuple, message: str):
        raise SpecError([self.doc.problem(loc, message)])

    def _check(self) -> None:
        if self.X.ndim != 2 or not 1 <= self.X.shape[0] <= MAX_ITEMS or not 1 <= self.X.shape[1] <= MAX_DIM:
            self.fail(("X",), f"X must be a matrix with 1 to {MAX_ITEMS} rows (items) and 1 to {MAX_DIM} columns,"
                              f" got shape {self.X.shape}")
        if self.y.ndim != 1 or self.y.shape[0] != self.X.shape[0]:
            self.fail(("y",), f"y must list one identity per row of X ({self.X.shape[0]}), got shape {self.y.shape}")
        if len(self.queries) > MAX_QUERIES:
            self.fail(("query",), f"at most {MAX_QUERIES} queries")
        for m, query in enumerate(self.queries):
            loc = ("query",) + ((m,) if self.batched else ())
            if query.x.ndim != 1 or query.x.shape[0] != self.X.shape[1]:
                self.fail(loc + ("x",), f"the query embedding must be a vector of length {self.X.shape[1]} "
                                        f"(a row of X), got shape {query.x.shape}")
            if not any(label == query.y for label in self.y):
                self.fail(loc + ("y",), f"no database item has identity {query.y}: recall and AP are undefined")

    def solve_query(self, m: int) -> Outcome:
        query = self.queries[m]
        n = m + 1 if self.batched else None
        qsym = Sym("x", sub="i", bold=True).of_example(n)
        loc = ("query",) + ((m,) if self.batched else ())
        try:
            scored = score(self.spec.similarity, list(query.x), [list(r) for r in self.X], qsym, self.syms)
        except _Undefined as err:
            self.fail(loc + ("x",) if err.where == "query" else err.where, err.message)
        relevant = [label == query.y for label in self.y]
        order, groups = rank(scored.keys, relevant, self.spec.ties)
        rows = thresholds(order, groups, relevant, self.spec.ties == "grouped")
        ap, terms = average_precision(rows)
        levels = interpolated(rows)
        return Outcome(n, qsym, scored, relevant, order, groups, rows, ap, terms, levels, interpolated_ap(levels))


def _items_text(indices: list) -> Seq:
    """X₁, X₃, X₄: item names for table cells and warnings."""
    return Seq(tuple(Sym("X", str(i + 1)) for i in indices))


def _title(key: str, n: int | None, solution: Solution):
    return solution.section(key + ("_query" if n else ""), n=n)


def similarity_section(solution: Solution, out: Outcome) -> None:
    section = _title("section.retrieval_similarity", out.n, solution)
    for step in out.scored.steps:
        section.add(step)
    scores = out.scored.scores
    lhs = Sym("s", bold=True).of_example(out.n)
    if all(s is not None for s in scores):
        vector = np.empty(len(scores), dtype=object)
        vector[:] = scores
        section.add(Step(lhs=lhs, result=vector, text=Phrase("retrieval.similarity_vector")))
    else:
        entries = tuple(INFINITY if s is None else Value(s) for s in scores)
        section.add(Step(lhs=lhs, forms=[Call("vector", entries)], text=Phrase("retrieval.similarity_vector")))


def ranking_section(solution: Solution, out: Outcome, syms: list, y) -> None:
    section = _title("section.retrieval_ranking", out.n, solution)
    section.say("retrieval.ranking", query=out.qsym)
    rows = []
    for place, j in enumerate(out.order, 1):
        s = out.scored.scores[j]
        rows.append([Value(Exact(place)), syms[j].with_sup("1" if out.relevant[j] else "0"),
                     INFINITY if s is None else Value(s), Value(y[j])])
    section.add(Table([Phrase("retrieval.col_rank"), Phrase("retrieval.col_item"),
                       Phrase("retrieval.col_similarity"), Phrase("retrieval.col_identity")], rows))


def pr_section(solution: Solution, out: Outcome) -> None:
    section = _title("section.retrieval_pr", out.n, solution)
    TP, FP, FN = Sym("TP"), Sym("FP"), Sym("FN")
    grouped = len(out.rows) < len(out.order)
    section.say("retrieval.pr_definition" + ("_grouped" if grouped else ""), precision=Frac(TP, Op("+", (TP, FP))),
                recall=Frac(TP, Op("+", (TP, FN))))
    header = [Phrase("retrieval.col_threshold"), Phrase("retrieval.col_predictions"), "TP", "FP", "FN",
              Phrase("retrieval.col_precision"), Phrase("retrieval.col_recall")]
    rows = []
    for row in reversed(out.rows):          # as on the slides: all items first
        s = out.scored.scores[row.items[-1]]
        rows.append([INFINITY if s is None else Value(s), _items_text(row.items), Value(Exact(row.tp)),
                     Value(Exact(row.fp)), Value(Exact(row.fn)), Value(row.p), Value(row.r)])
    section.add(Table(header, rows))


def curve_section(solution: Solution, out: Outcome) -> None:
    section = _title("section.retrieval_curve", out.n, solution)
    start = curve_start(out.rows)
    points = [(row.r, row.p) for row in out.rows]
    if start is not None:
        smallest = min(row.r for row in out.rows)
        section.say("retrieval.curve_start", precision=Value(start[1]), recall=Value(smallest))
        points.insert(0, start)
    else:
        section.say("retrieval.curve_has_zero")
    steps_x = [0.0] + [float(level) for level, _, _ in out.levels]
    steps_y = [float(best) for _, _, best in out.levels]
    steps_y.append(steps_y[-1])
    data = {
        "series": [
            {"x": [float(r) for r, _ in points], "y": [float(p) for _, p in points], "marker": "o",
             "label": {"hr": "krivulja preciznosti i odziva", "en": "precision–recall curve"}},
            {"x": steps_x, "y": steps_y, "step": True,
             "label": {"hr": "interpolirana preciznost", "en": "interpolated precision"}},
        ],
        "xlabel": {"hr": "odziv R", "en": "recall R"},
        "ylabel": {"hr": "preciznost P", "en": "precision P"},
        "xlim": (-0.02, 1.05), "ylim": (-0.02, 1.05),
    }
    caption = Phrase("retrieval.curve_caption" + ("_query" if out.n else ""), {"n": out.n})
    section.add(Figure("curves", data, caption))


def ap_section(solution: Solution, out: Outcome) -> None:
    section = _title("section.retrieval_ap", out.n, solution)
    R, P, N = Sym("R", sub="n"), Sym("P", sub="n"), Sym("N")
    generic = Sum("n", Const(1), N, mul(Paren(Op("-", (R, Sym("R", sub="n-1")))), P))
    numeric = Op("+", tuple(mul(Paren(Op("-", (Value(r), Value(r0)))), Value(p)) for r, r0, p in out.ap_terms))
    ap_sym = Sym("AP").of_example(out.n)
    section.add(Step(lhs=ap_sym, forms=[generic], extra_forms=[numeric], result=out.ap,
                     text=Phrase("retrieval.ap_plain", {"count": len(out.rows)})))
    interp = Sym("P", sub="interp")
    for j, (level, candidates, best) in enumerate(out.levels):
        section.add(Step(lhs=mul(interp, Paren(Value(level))), forms=[Call("max", tuple(Value(c) for c in candidates))],
                         result=best, text=Phrase("retrieval.interp_precision") if j == 0 else None))
    previous, terms = Exact(0), []
    for level, _, best in out.levels:
        terms.append(mul(Paren(Op("-", (Value(level), Value(previous)))), Value(best)))
        previous = level
    generic = Sum("m", Const(1), Sym("M"), mul(Paren(Op("-", (Sym("R", sub="m"), Sym("R", sub="m-1")))),
                                               mul(interp, Paren(Sym("R", sub="m")))))
    section.add(Step(lhs=Sym("AP", sub="interp").of_example(out.n), forms=[generic],
                     extra_forms=[terms[0] if len(terms) == 1 else Op("+", tuple(terms))], result=out.ap_interp,
                     text=Phrase("retrieval.ap_interpolated")))


def map_section(solution: Solution, outcomes: list) -> tuple[Exact, Exact]:
    section = solution.section("section.retrieval_map")
    q = len(outcomes)
    means = []
    for sub, attr, key in (("", "ap", "retrieval.map_plain"), ("interp", "ap_interp", "retrieval.map_interpolated")):
        parts = tuple(Sym("AP", sub=sub).of_example(o.n) for o in outcomes)
        values = [getattr(o, attr) for o in outcomes]
        mean = sum(values, Exact(0)) / q
        section.add(Step(lhs=Sym("mAP", sub=sub), forms=[mul(Frac(Const(1), Const(q)), Paren(Op("+", parts)))],
                         bindings={p: Value(v) for p, v in zip(parts, values)}, result=mean, text=Phrase(key)))
        means.append(mean)
    return means[0], means[1]


def _tie_warnings(out: Outcome, rule: str) -> list:
    warnings = []
    for group in out.groups:
        if len(group) > 1:
            s = out.scored.scores[group[0]]
            warnings.append(Phrase("warning.retrieval_ties", {
                "query": out.qsym, "items": _items_text(sorted(group)),
                "value": INFINITY if s is None else Value(s), "rule": Phrase(f"retrieval.tie_rule_{rule}")}))
    return warnings


def _record(results: dict, out: Outcome) -> None:
    suffix = f"({out.n})" if out.n else ""

    def vector(values):
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array

    if out.scored.distances is not None:
        results["distance" + suffix] = vector(out.scored.distances)
    if all(s is not None for s in out.scored.scores):     # an infinite similarity has no exact value
        results["similarity" + suffix] = vector(out.scored.scores)
    results["ranking" + suffix] = vector([Exact(j + 1) for j in out.order])
    results["precision" + suffix] = vector([row.p for row in out.rows])
    results["recall" + suffix] = vector([row.r for row in out.rows])
    results["ap" + suffix] = out.ap
    results["ap_interpolated" + suffix] = out.ap_interp


def _conventions(spec) -> list:
    phrases = [Phrase(f"convention.retrieval_{spec.similarity}")]
    if spec.similarity.startswith("reciprocal"):
        phrases.append(Phrase("convention.retrieval_zero_distance"))
    phrases += [Phrase("convention.retrieval_ties", {"rule": Phrase(f"retrieval.tie_rule_{spec.ties}")}),
                Phrase("convention.retrieval_thresholds_grouped" if spec.ties == "grouped"
                       else "convention.retrieval_thresholds"),
                Phrase("convention.retrieval_curve_start"),
                Phrase("convention.retrieval_ap")]
    return phrases


def solve(spec, doc) -> Solution:
    problem = Retrieval(spec, doc)
    solution = Solution(problem_id=spec.id, title=spec.title.model_dump(), source=spec.source,
                        statement=spec.statement.model_dump() if spec.statement else None)
    outcomes = []
    for m in range(len(problem.queries)):
        out = problem.solve_query(m)
        similarity_section(solution, out)
        ranking_section(solution, out, problem.syms, problem.y)
        pr_section(solution, out)
        curve_section(solution, out)
        ap_section(solution, out)
        _record(solution.results, out)
        solution.warnings.extend(_tie_warnings(out, spec.ties))
        if any(s is None for s in out.scored.scores):
            solution.warnings.append(Phrase("warning.retrieval_infinite", {"query": out.qsym}))
        outcomes.append(out)
    if problem.batched:
        solution.results["map"], solution.results["map_interpolated"] = map_section(solution, outcomes)
    solution.conventions = _conventions(spec)
    solution.number_equations()
    return solution
