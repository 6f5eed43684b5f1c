"""JSON: the whole solution for machines, every value in full (never elided)."""

from __future__ import annotations

import json

import numpy as np

from examsolver.engine.tensor import to_list
from examsolver.notation import values as V
from examsolver.render.common import approximation, equation_parts, title_of, translate
from examsolver.render.math import LatexPrinter
from examsolver.solution import Phrase, Solution, Step
from examsolver.solution import literal_text


def exact_text(value) -> str:
    """ASCII that examsolver's own parser reads back: '[[6, -1, 3]]*ln(2)/9' style."""
    array = np.asarray(value, dtype=object)
    if array.ndim == 0:
        return V.code(array[()])
    factored = V.common_factor(list(array.flat)) if array.size > 1 else None
    if factored is not None:
        factor, ints = factored
        return f"{np.array(ints).reshape(array.shape).tolist()}*({V.code(factor)})"
    return _nested(array)


def _nested(array) -> str:
    array = np.asarray(array, dtype=object)
    if array.ndim == 0:
        return V.code(array[()])
    return "[" + ", ".join(_nested(a) for a in array) + "]"


def result_entry(value) -> dict:
    """{"exact": text our parser reads back (only where every entry has an exact form),
    "value": floats (None for free symbols), "digits": certified decimals where an entry is irrational}."""
    if type(value).__module__.startswith("sympy"):
        return {"exact": V.sympy_code(value), "value": _real_float(value)}
    if isinstance(value, (str, int, bool)) and not hasattr(value, "_t"):
        return {"exact": str(value), "value": value}
    entries = np.asarray(value, dtype=object).flat
    entry = {"exact": exact_text(value)} if all(v.has_exact_form() for v in entries) else {}
    entry["value"] = to_list(value)
    if not all(v.is_rational() for v in np.asarray(value, dtype=object).flat):
        entry["digits"] = _nested_map(lambda v: V.decimal_text(v, places=V.DIGITS, significant=True)
                                      .replace("−", "-"), value)
    return entry


def _real_float(value) -> float | None:
    """A sympy number as a float; None for free symbols and for what is not a real number (√−1, zoo)."""
    if not getattr(value, "is_number", False):
        return None
    number = value.evalf()
    return float(number) if number.is_real and number.is_finite else None


def _computed(value):
    entry = result_entry(value)
    return entry.get("exact", entry.get("digits"))


def _nested_map(fn, value):
    array = np.asarray(value, dtype=object)
    if array.ndim == 0:
        return fn(array[()])
    return [_nested_map(fn, a) for a in array]


def to_dict(solution: Solution, lang: str) -> dict:
    math = LatexPrinter(decimal_separator=".", lang=lang)

    def text(phrase: Phrase) -> str:
        return translate(phrase, lang, math.print)

    sections = []
    for section in solution.sections:
        blocks = []
        for block in section.blocks:
            if isinstance(block, Step):
                blocks.append({"type": "equation", "number": block.number,
                               "text": text(block.text) if block.text else None,
                               "latex": " = ".join(equation_parts(block, math)),
                               "approx": approximation(block, math)})
            elif isinstance(block, Phrase):
                blocks.append({"type": "text", "text": text(block)})
            else:
                blocks.append({"type": type(block).__name__.lower()})
        sections.append({"title": text(section.title), "blocks": blocks})
    return {
        "id": solution.problem_id,
        "title": title_of(solution, lang),
        "source": solution.source,
        "language": lang,
        "conventions": [text(p) for p in solution.conventions],
        "warnings": [text(p) for p in solution.warnings],
        "alternatives": [{"convention": a.mistake, "text": text(a.phrase),
                          "results": {name: result_entry(v) for name, v in a.values}} for a in solution.alternatives],
        "sections": sections,
        "results": {name: result_entry(value) for name, value in solution.results.items()},
        "checks": [{"name": c.name, "expected": literal_text(c.expected), "status": c.status,
                    "computed": None if c.computed is None else _computed(c.computed),
                    "detail": text(c.detail) if c.detail else None} for c in solution.checks],
    }


def render(solution: Solution, lang: str) -> str:
    return json.dumps(to_dict(solution, lang), ensure_ascii=False, indent=2) + "\n"
