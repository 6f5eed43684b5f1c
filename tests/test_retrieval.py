"""Retrieval problems: the 2022 task 2 seed, hand values, and an independent float reference.

scikit-learn is not installed, so the reference AP is written here from its documented
definition (a threshold at every distinct score, AP = Σ(Rₙ − Rₙ₋₁)Pₙ) in plain floats,
walking the data differently from the engine (sorted float scores, grouped with
itertools, no Exact arithmetic).  Interpolated AP is checked against the PASCAL VOC
style computation (precision envelope taken from the right, summed where recall changes).
"""

from __future__ import annotations

import itertools
import math
import random
from fractions import Fraction

import pytest
from typer.testing import CliRunner

from examsolver.cli import app
from examsolver.pipeline import solve_document, solve_file
from examsolver.errors import SpecError
from examsolver.locales import catalog
from examsolver.solution import Figure, Table
from examsolver.spec.load import load_text

from conftest import PROBLEMS

SEED = PROBLEMS / "2022_z2.yaml"


# ----- independent float reference ----------------------------------------------------
def reference_pr(relevant: list[bool], scores: list[float], grouped: bool):
    """(precisions, recalls) per threshold; ties by index unless grouped (then one threshold per score)."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    total = sum(relevant)
    if grouped:
        blocks = [list(g) for _, g in itertools.groupby(order, key=lambda i: scores[i])]
    else:
        blocks = [[i] for i in order]
    precisions, recalls, tp, seen = [], [], 0, 0
    for block in blocks:
        tp += sum(relevant[i] for i in block)
        seen += len(block)
        precisions.append(tp / seen)
        recalls.append(tp / total)
    return precisions, recalls


def reference_ap(relevant, scores, grouped=True) -> float:
    precisions, recalls = reference_pr(relevant, scores, grouped)
    return sum((r - r0) * p for r, r0, p in zip(recalls, [0.0] + recalls[:-1], precisions))


def reference_ap_interpolated(relevant, scores, grouped=False) -> float:
    """VOC all-point AP: mrec = [0, R…, 1], mpre = [0, P…, 0], envelope from the right."""
    precisions, recalls = reference_pr(relevant, scores, grouped)
    mrec = [0.0] + recalls + [1.0]
    mpre = [0.0] + precisions + [0.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    return sum((mrec[i + 1] - mrec[i]) * mpre[i + 1] for i in range(len(mrec) - 1) if mrec[i + 1] != mrec[i])


def mean_precision_at_hits(relevant, scores) -> float:
    """For distinct scores AP is also the mean of P@k over the ranks k of relevant items."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    hits, total = 0, []
    for k, i in enumerate(order, 1):
        if relevant[i]:
            hits += 1
            total.append(hits / k)
    return sum(total) / sum(relevant)


def test_reference_matches_hand_value_of_seed():
    """The reference itself, on the seed: ranking [X1¹, X3⁰, X4¹, X2¹] → 29/36 by hand."""
    relevant, scores = [True, True, False, True], [1, 1 / 4, 1 / 2, 1 / 3]
    assert reference_ap(relevant, scores) == pytest.approx(29 / 36)
    assert mean_precision_at_hits(relevant, scores) == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    assert reference_ap_interpolated(relevant, scores) == pytest.approx(5 / 6)


# ----- the seed ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def seed():
    return solve_file(SEED)


def test_seed_similarities_match_slides(seed):
    # slides (40): S = [1, 1/4, 1/2, 1/3]
    assert list(seed.results["similarity"]) == [1, Fraction(1, 4), Fraction(1, 2), Fraction(1, 3)]
    assert list(seed.results["distance"]) == [1, 4, 2, 3]


def test_seed_ranking_matches_slides(seed):
    assert [int(j) for j in seed.results["ranking"]] == [1, 3, 4, 2]    # [X1¹, X3⁰, X4¹, X2¹]


def test_seed_precision_recall_table_matches_slides(seed):
    # slides, rows X1..X2 down to X1: P = 0.75, 0.66, 0.5, 1.0; R = 1.0, 0.66, 0.33, 0.33,
    # where 0.66 and 0.33 are truncations of 2/3 and 1/3
    slides_p = [Fraction(3, 4), Fraction(2, 3), Fraction(1, 2), Fraction(1)]
    slides_r = [Fraction(1), Fraction(2, 3), Fraction(1, 3), Fraction(1, 3)]
    assert list(seed.results["precision"])[::-1] == slides_p
    assert list(seed.results["recall"])[::-1] == slides_r
    truncated = [math.floor(float(v) * 100) / 100 for v in seed.results["precision"][::-1]]
    assert truncated == [0.75, 0.66, 0.5, 1.0]


def test_seed_table_shows_tp_fp_fn_of_slides(seed):
    table = next(b for s in seed.sections for b in s.blocks if isinstance(b, Table) and len(b.header) == 7)
    counts = [[int(cell.value) for cell in row[2:5]] for row in table.rows]
    assert counts == [[3, 1, 0], [2, 1, 1], [1, 1, 2], [1, 0, 2]]


def test_seed_ap_by_hand_and_by_reference(seed):
    assert seed.results["ap"] == Fraction(29, 36)                  # (1/3)(1) + (1/3)(2/3) + (1/3)(3/4)
    assert seed.results["ap_interpolated"] == Fraction(5, 6)        # (1/3)(1) + (2/3)(3/4)
    relevant, scores = [True, True, False, True], [float(s) for s in seed.results["similarity"]]
    assert float(seed.results["ap"]) == pytest.approx(reference_ap(relevant, scores))
    assert float(seed.results["ap_interpolated"]) == pytest.approx(reference_ap_interpolated(relevant, scores))


def test_seed_answer_key_matches_and_no_warnings(seed):
    assert seed.checks and all(c.status == "match" for c in seed.checks), [(c.name, c.status) for c in seed.checks]
    assert seed.warnings == []


def test_seed_curve_gets_the_slides_point_at_zero_recall(seed):
    figure = next(b for s in seed.sections for b in s.blocks if isinstance(b, Figure))
    curve = figure.data["series"][0]
    # no threshold has R = 0; the added point takes the better P at R = 1/3 (1 rather than 1/2)
    assert (curve["x"][0], curve["y"][0]) == (0.0, 1.0)
    assert curve["x"][1:] == pytest.approx([1 / 3, 1 / 3, 2 / 3, 1])
    assert curve["y"][1:] == pytest.approx([1, 1 / 2, 2 / 3, 3 / 4])


def test_seed_figure_draws(seed):
    from examsolver.render.plots import render_figure

    figure = next(b for s in seed.sections for b in s.blocks if isinstance(b, Figure))
    svg = render_figure(figure, "svg", "hr")
    assert svg.startswith(b"<?xml") and "preciznost".encode() in svg


def test_equations_numbered_consecutively(seed):
    numbers = [b.number for s in seed.sections for b in s.blocks if getattr(b, "number", None)]
    assert numbers == list(range(1, len(numbers) + 1))


# ----- other specs -------------------------------------------------------------------
def spec(X, y, query, **extra) -> str:
    lines = ["id: t", "kind: retrieval", f"X: {X}", f"y: {y}", f"query: {query}"]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def solve_text(text: str):
    return solve_document(load_text(text, "t.yaml"))


def test_exact_ties_are_detected_where_floats_see_none():
    # |0.1| + |0.2| = 0.3 = |0.3| + |0| exactly; in floats 0.1 + 0.2 != 0.3
    assert 0.1 + 0.2 != 0.3
    solution = solve_text(spec("[[0.1, 0.2], [0.3, 0], [1, 1]]", "[0, 1, 1]", "{x: [0, 0], y: 1}"))
    assert solution.results["similarity"][0] == solution.results["similarity"][1]
    assert [w.key for w in solution.warnings] == ["warning.retrieval_ties"]
    assert [int(j) for j in solution.results["ranking"]] == [1, 2, 3]      # by index: X1 before X2


TIES = ("[[1, 0], [0, 1], [-1, 0], [3, 3]]", "[0, 1, 1, 0]", "{x: [0, 0], y: 1}")   # first three tied


@pytest.mark.parametrize("rule, ranking, precision", [
    ("index", [1, 2, 3, 4], [0, Fraction(1, 2), Fraction(2, 3), Fraction(1, 2)]),
    ("optimistic", [2, 3, 1, 4], [1, 1, Fraction(2, 3), Fraction(1, 2)]),
    ("pessimistic", [1, 2, 3, 4], [0, Fraction(1, 2), Fraction(2, 3), Fraction(1, 2)]),
    ("grouped", [1, 2, 3, 4], [Fraction(2, 3), Fraction(1, 2)]),
])
def test_tie_rules(rule, ranking, precision):
    solution = solve_text(spec(*TIES, ties=rule))
    assert [int(j) for j in solution.results["ranking"]] == ranking
    assert list(solution.results["precision"]) == precision
    assert any(w.key == "warning.retrieval_ties" for w in solution.warnings)
    assert solution.conventions[2].args["rule"].key == f"retrieval.tie_rule_{rule}"


def test_grouped_ties_give_the_scikit_learn_ap():
    solution = solve_text(spec(*TIES, ties="grouped"))
    scores = [float(s) for s in solution.results["similarity"]]
    assert float(solution.results["ap"]) == pytest.approx(reference_ap([False, True, True, False], scores))
    assert solution.results["ap"] == Fraction(2, 3)          # one threshold: R = 1, P = 2/3


def test_optimistic_and_pessimistic_bound_the_index_rule():
    ap = {rule: solve_text(spec(*TIES, ties=rule)).results["ap"] for rule in ("optimistic", "index", "pessimistic")}
    assert ap["optimistic"] == 1 and ap["pessimistic"] == ap["index"]
    assert ap["pessimistic"] == Fraction(1, 2) * Fraction(1, 2) + Fraction(1, 2) * Fraction(2, 3)


def test_zero_distance_is_infinite_similarity_ranked_first():
    solution = solve_text(spec("[[2, 2], [1, 1], [0, 0]]", "[1, 0, 0]", "{x: [1, 1], y: 0}"))
    assert [int(j) for j in solution.results["ranking"]] == [2, 1, 3]
    assert "similarity" not in solution.results and list(solution.results["distance"]) == [2, 0, 2]
    keys = {w.key for w in solution.warnings}
    assert {"warning.retrieval_infinite", "warning.retrieval_ties"} <= keys
    # ranking X2 (∞, relevant), X1 and X3 tied by index: P = 1, 1/2, 2/3 at R = 1/2, 1/2, 1
    assert solution.results["ap"] == Fraction(1, 2) + Fraction(1, 2) * Fraction(2, 3)
    for lang in ("hr", "en"):
        for fmt in ("term", "md", "json"):
            from examsolver.render.output import render_solution

            text = render_solution(solution, fmt, lang, to_terminal=False)
            assert ("∞" if fmt == "term" else "\\infty") in text


def test_several_queries_give_map():
    text = spec("[[1, 0], [3, -1], [-0.5, 0.5], [1, 4]]", "[1, 1, 0, 1]",
                "[{x: [1, 1], y: 1}, {x: [0, 0], y: 0}]")
    solution = solve_text(text)
    assert solution.results["ap(1)"] == Fraction(29, 36)
    # query 2: d = [1, 4, 1, 5]: X1 and X3 tie (index: X1 first, irrelevant), X2, X4 → X3 at rank 2
    assert solution.results["ap(2)"] == Fraction(1, 2)
    assert solution.results["map"] == (Fraction(29, 36) + Fraction(1, 2)) / 2
    assert solution.results["map_interpolated"] == (solution.results["ap_interpolated(1)"]
                                                    + solution.results["ap_interpolated(2)"]) / 2


def test_cosine_and_l2_against_floats():
    X = [[1, 0], [3, -1], [-0.5, 0.5], [1, 4], [2, 2]]
    q = [1, 1]
    cos = solve_text(spec(str(X), "[1, 1, 0, 1, 0]", "{x: [1, 1], y: 1}", similarity="cosine"))
    expected = [(q[0] * a + q[1] * b) / math.hypot(*q) / math.hypot(a, b) for a, b in X]
    assert [float(s) for s in cos.results["similarity"]] == pytest.approx(expected)
    # X5 = [2, 2] is parallel to q: cosine 1 exactly (√2·√8 = 4), so it ranks first
    assert cos.results["similarity"][4] == 1 and int(cos.results["ranking"][0]) == 5
    l2 = solve_text(spec(str(X), "[1, 1, 0, 1, 0]", "{x: [1, 1], y: 1}", similarity="reciprocal_l2"))
    assert [float(s) for s in l2.results["similarity"]] == pytest.approx([1 / math.dist(q, x) for x in X])
    neg = solve_text(spec(str(X), "[1, 1, 0, 1, 0]", "{x: [1, 1], y: 1}", similarity="negative_l1"))
    assert list(neg.results["ranking"]) == list(solve_text(spec(str(X), "[1, 1, 0, 1, 0]", "{x: [1, 1], y: 1}"))
                                                .results["ranking"])


def test_random_problems_match_reference():
    rng = random.Random(7)
    for trial in range(40):
        n, dim = rng.randint(2, 7), rng.randint(1, 3)
        X = [[rng.randint(-3, 3) for _ in range(dim)] for _ in range(n)]
        y = [rng.randint(0, 1) for _ in range(n)]
        y[rng.randrange(n)] = 1
        q = [rng.randint(-3, 3) for _ in range(dim)]
        measure = rng.choice(["dot", "negative_l1", "negative_l2"])
        scores = [sum(a * b for a, b in zip(q, x)) if measure == "dot" else
                  -sum(abs(a - b) for a, b in zip(q, x)) if measure == "negative_l1" else
                  -math.sqrt(sum((a - b) ** 2 for a, b in zip(q, x)))
                  for x in X]
        relevant = [v == 1 for v in y]
        for rule in ("grouped", "index"):
            solution = solve_text(spec(str(X), str(y), f"{{x: {q}, y: 1}}", similarity=measure, ties=rule))
            p, r = reference_pr(relevant, scores, rule == "grouped")
            assert [float(v) for v in solution.results["precision"]] == pytest.approx(p), (X, y, q, rule)
            assert [float(v) for v in solution.results["recall"]] == pytest.approx(r)
            grouped = rule == "grouped"
            assert float(solution.results["ap"]) == pytest.approx(reference_ap(relevant, scores, grouped))
            assert float(solution.results["ap_interpolated"]) == pytest.approx(
                reference_ap_interpolated(relevant, scores, grouped))
            if len(set(scores)) == len(scores):
                assert float(solution.results["ap"]) == pytest.approx(mean_precision_at_hits(relevant, scores))


# ----- errors -------------------------------------------------------------------------
@pytest.mark.parametrize("text, fragment", [
    (spec("[[1, 0]]", "[0]", "{x: [1, 1], y: 1}"), "no database item has identity 1"),
    (spec("[[1, 0]]", "[1]", "{x: [1, 1, 1], y: 1}"), "vector of length 2"),
    (spec("[[1, 0], [0, 1]]", "[1]", "{x: [1, 1], y: 1}"), "one identity per row"),
    (spec("[[1, 0]]", "[1]", "{x: [1, 1], y: 1}", similarity="manhattan"), "similarity"),
    (spec("[[1, 0]]", "[1]", "{x: [1, 1], y: 1}", ties="random"), "ties"),
    (spec("[[0, 0]]", "[1]", "{x: [1, 1], y: 1}", similarity="cosine"), "zero vector"),
    (spec("[[1, 0]]", "[1]", "{x: [0, 0], y: 1}", similarity="cosine"), "zero query"),
])
def test_bad_specs_are_located_errors(text, fragment):
    with pytest.raises(SpecError) as err:
        solve_text(text)
    assert fragment in str(err.value) and "t.yaml:" in str(err.value)


# ----- catalogs and the command line ---------------------------------------------------
def test_catalogs_have_the_same_keys():
    from examsolver.locales import en_retrieval, hr_retrieval

    assert set(hr_retrieval.PHRASES) == set(en_retrieval.PHRASES)
    assert catalog("hr")["section.retrieval_pr"] == "Preciznost i odziv za svaki prag"


@pytest.mark.parametrize("lang", ["hr", "en"])
@pytest.mark.parametrize("fmt", ["term", "md", "json"])
def test_cli_every_format(lang, fmt):
    result = CliRunner().invoke(app, ["solve", str(SEED), "--lang", lang, "--format", fmt])
    assert result.exit_code == 0, result.output
    words = {"hr": ["sličnost", "odziv", "preciznost", "Rangiranje", "prag"],
             "en": ["similarity", "recall", "precision", "Ranking", "threshold"]}[lang]
    if fmt == "json":
        import json

        data = json.loads(result.output)
        assert data["results"]["ap"]["exact"] == "29/36"
        assert all(c["status"] == "match" for c in data["checks"])
    text = result.output
    assert all(w.lower() in text.lower() for w in words), [w for w in words if w.lower() not in text.lower()]
