"""Moodle XML: one Cloze question per problem, the variants of a problem in one category.

Each answer-key entry (every numeric result when the spec has no key) becomes NUMERICAL
blanks, one per entry of a vector or matrix, laid out as it.  A blank's correct answer is
the engine's value and its tolerance the one verify.matches gives a decimal written to the
blank's places, so the quiz accepts what `check` accepts.  The wrong answers are the values
under each convention or mistake of the catalogue (diagnose/), each with the feedback that
names it.  The statement and the worked solution (general feedback) are HTML with TeX as
Moodle's MathJax filter reads it: \\( … \\) inline, \\[ … \\] displayed.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from examsolver.render.common import paragraphs, title_of, with_math
from examsolver.render.document import Held, SolutionView
from examsolver.render.html import HtmlBuilder
from examsolver.render.names import math_name
from examsolver.notation.values import APPROX_DECIMALS
from examsolver.solution import Figure, Phrase

MIN_SIGNIFICANT = 3          # a small value gets at least this many significant digits in its blank
MAX_PLACES = 12
STORED_DIGITS = 15           # significant digits of a blank's stored answer (Moodle keeps a float)


# ----- the Cloze NUMERICAL blank ---------------------------------------------------------
def cloze_escape(feedback: str) -> str:
    """A blank's feedback (HTML) written so that Moodle's Cloze parser (qtype_multianswer) reads it
    back: the feedback ends at the first `~` or `}` not after a backslash, then its HTML entities
    are decoded and `\\}`, `\\#` unescaped.  So `&` is written `&amp;` (our entities survive the
    decoding), `~` as an entity, `}` and `#` with a backslash; a backslash stays as it is, so TeX's
    `\\(` reaches MathJax unchanged (Moodle leaves `\\\\` doubled).  (`=`, `%` and `:` mean something
    only at the start of an answer, which is always ours: a number.)"""
    text = feedback.replace("&", "&amp;").replace("}", "\\}").replace("#", "\\#").replace("~", "&#126;")
    return text + " " if text.endswith("\\") else text     # a last backslash would escape the closing brace


@dataclass(frozen=True)
class Answer:
    weight: int              # percent of the blank's marks
    value: str               # '.' as the decimal separator, whatever the language
    tolerance: str
    feedback: str            # HTML


def numerical_blank(answers: list[Answer]) -> str:
    """{1:NUMERICAL:=value:tolerance#feedback~%0%value:tolerance#feedback…}"""
    parts = [("=" if a.weight == 100 else f"%{a.weight}%") + f"{a.value}:{a.tolerance}#{cloze_escape(a.feedback)}"
             for a in answers]
    return "{1:NUMERICAL:" + "~".join(parts) + "}"


# ----- numbers ----------------------------------------------------------------------------
def _decimal(value) -> Decimal | None:
    from examsolver.verify import as_decimal

    try:
        d = as_decimal(value)
    except (TypeError, ValueError, ArithmeticError):
        return None
    return d if d is not None and d.is_finite() else None


def default_places(d: Decimal) -> int:
    """The solution's decimals (APPROX_DECIMALS), more for a small value (3 significant digits)."""
    if not d:
        return APPROX_DECIMALS
    return min(MAX_PLACES, max(APPROX_DECIMALS, MIN_SIGNIFICANT - 1 - d.adjusted()))


def stored(d: Decimal) -> str:
    """A blank's answer as Moodle stores it: the value to STORED_DIGITS significant digits, '.' decimal."""
    if not d:
        return "0"
    text = format(d, f".{STORED_DIGITS}g")
    return text if "e" in text else _trim(text)


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def _tolerance_text(d: Decimal, places: int, own=None) -> str:
    """The tolerance of the value written to places decimals, by the one comparison rule (widened
    to the key entry's own tolerance, which that rule accepts too)."""
    from examsolver.verify import blank_tolerance

    tol = blank_tolerance(f"{d:.{places}f}")
    return format(max(tol, own.bound(d)) if own else tol, "f")


# ----- HTML with MathJax TeX --------------------------------------------------------------
class MoodleBuilder(HtmlBuilder):
    """The HTML document's markup, with math left as TeX for Moodle's MathJax filter."""

    def inline(self, latex: str) -> str:
        return f"\\({self.escape(latex)}\\)"

    def equation(self, lines: list[str], number: int | None) -> str:
        body = lines[0] if len(lines) == 1 else "\\begin{aligned}" + " \\\\ ".join(lines) + "\\end{aligned}"
        tag = f" \\tag{{{number}}}" if number is not None else ""
        return f"<p>\\[{self.escape(body)}{tag}\\]</p>"

    def figure(self, figure: Figure, caption: str | None) -> str:
        return f"<p><em>{self.word('moodle.figure_omitted')}</em></p>"

    # ----- the parts of a question --------------------------------------------------------
    def statement(self, solution) -> str:
        text = paragraphs((solution.statement or {}).get(self.lang))
        out = [f"<p>{with_math(p, self.escape, self.formula, self.identifier)}</p>" for p in text]
        if not out:          # no statement written: what is given, as the documents list it
            from examsolver.render.given import given

            out = ["<ul>" + "".join(f"<li>{self.text(p).strip()}</li>" for p in given(solution)) + "</ul>"]
        return "\n".join(out)

    def solution_html(self, view: SolutionView) -> str:
        out = []
        for title, items in ((self.words["heading.conventions"], view.conventions),
                             (self.words["heading.warnings"], view.warnings)):
            if items:
                out.append(f"<h4>{title}</h4><ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
        for section in view.sections:
            out.append(f"<h4>{section.title}</h4>")
            for block in section.blocks:
                if block.intro:
                    out.append(f"<p>{block.intro}</p>")
                out.append(block.body if block.kind != "text" else f"<p>{block.body}</p>")
        return "\n".join(out)

    def name_of(self, solution, name: str) -> str:
        symbol = math_name(solution, name)
        return self.inline(self.math.print(symbol)) if symbol is not None else self.identifier(name)


# ----- blanks of one result -----------------------------------------------------------------
def blank_entries(solution) -> list[tuple[str, object]]:
    """(name, written key or None) of the results that become blanks: the key's entries, or every
    numeric result when the spec has no key."""
    names = [(c.name, c.expected) for c in solution.checks if c.name in solution.results] if solution.checks else \
        [(name, None) for name in solution.results]
    return [(name, key) for name, key in names if _numeric(solution.results[name])]


def _numeric(value) -> bool:
    if isinstance(value, str):
        return False
    array = np.asarray(value, dtype=object)
    return array.size > 0 and all(_decimal(v) is not None for v in array.flat)


def _key_rule(key, values: np.ndarray) -> tuple[list, object]:
    """The decimals each entry of the key was rounded to (None: written exactly, or no key), and the
    key entry's own tolerance ({value: …, tol: …}) if it has one."""
    from examsolver.errors import ExprError
    from examsolver.spec.expr import parse_written
    from examsolver.verify import split_entry

    try:
        literal, own = split_entry(key) if key is not None else (None, None)
        written = np.asarray(parse_written(literal), dtype=object) if key is not None else None
    except ExprError:        # an unreadable key is verify's business; the blanks take the default
        written, own = None, None
    if written is None or written.size != values.size:
        return [None] * values.size, own
    return [w.places if w.value != v else None for w, v in zip(written.flat, values.flat)], own


def mistake_values(solution, names: list[str]) -> list[tuple[str, dict]]:
    """[(catalogue entry name, {result name: value})] for every entry that changes these results."""
    from examsolver.diagnose import Resolver
    from examsolver.diagnose.catalogue import CATALOGUE

    if solution.document is None:
        return []
    resolver = Resolver(solution.document, solution)
    out = []
    for entry in CATALOGUE:
        results = resolver.results(entry)
        if results:
            found = {n: results[n] for n in names if n in results}
            if found:
                out.append((entry.name, found))
    return out


def result_blanks(builder: MoodleBuilder, value, key, mistakes: list, partial: int) -> tuple[np.ndarray, int]:
    """The blanks of one result, shaped as it, and the most decimals one of them asks for.
    mistakes: [(entry name, value under it)]."""
    array = np.asarray(value, dtype=object)
    places_of, own = _key_rule(key, array)
    wrong = [(name, np.asarray(v, dtype=object)) for name, v in mistakes]
    wrong = [(name, v.reshape(array.shape)) for name, v in wrong if v.size == array.size]
    blanks, most = [], 0
    for i, v in enumerate(array.flat):
        d = _decimal(v)
        places = places_of[i] if places_of[i] is not None else default_places(d)
        most = max(most, places)
        tol = _tolerance_text(d, places, own)
        answers = [Answer(100, stored(d), tol, builder.word("moodle.correct"))]
        taken = [d]
        for name, other in wrong:
            m = _decimal(other.flat[i])
            if m is None or any(abs(m - t) <= Decimal(tol) for t in taken):
                continue         # the correct value (within the tolerance) or a mistake already listed
            taken.append(m)
            answers.append(Answer(partial, stored(m), tol,
                                  builder.text(Phrase("moodle.mistake", {"what": Phrase(f"mistake.{name}")}))))
        blanks.append(numerical_blank(answers))
    return np.array(blanks, dtype=object).reshape(array.shape), most


_GRID = 'style="display:inline-table;vertical-align:middle;border-left:1px solid;border-right:1px solid;' \
        'border-collapse:separate;border-spacing:4px 2px"'


def layout(blanks: np.ndarray) -> str:
    """A scalar's blank, or the blanks as the vector (one row) or matrix they are; a higher tensor as
    its matrices one after another, each under its index."""
    if blanks.ndim == 0:
        return blanks[()]
    if blanks.ndim == 1:
        blanks = blanks.reshape(1, -1)
    if blanks.ndim == 2:
        rows = "".join("<tr>" + "".join(f"<td>{b}</td>" for b in row) + "</tr>" for row in blanks)
        return f"<table {_GRID}><tbody>{rows}</tbody></table>"
    return "".join(f"<div>[{i}] {layout(part)}</div>" for i, part in enumerate(blanks))


# ----- questions and categories ----------------------------------------------------------------
_OPENING = re.compile(r"\{(?=\d*:|#)")


def no_blanks(markup: str) -> str:
    """Question text that makes no blank: Moodle's Cloze parser (qtype_multianswer_extract_question)
    reads a blank, `{1:MULTICHOICE:…}`, wherever a `{`, digits and `:` stand, whatever stands around
    them (a backslash escapes nothing outside a blank), and later each blank's place, `{#1}`.  Such a
    `{` — of a statement, a name, a formula's TeX — is written as its character reference: the
    browser, and MathJax after it, still read `{`."""
    return _OPENING.sub("&#123;", markup)


def question(builder: MoodleBuilder, solution, index: int, partial: int) -> ET.Element:
    """The problem as a Cloze question: statement, blanks, the worked solution as general feedback."""
    entries = blank_entries(solution)
    by_mistake = mistake_values(solution, [name for name, _ in entries])
    lines, most, held = [], 0, Held()
    for name, key in entries:
        value = solution.results[name]
        mistakes = [(entry, found[name]) for entry, found in by_mistake if name in found]
        blanks, places = result_blanks(builder, value, key, mistakes, partial)
        most = max(most, places)
        marks = np.array([held.put(b) for b in blanks.flat], dtype=object).reshape(blanks.shape)
        lines.append(f"<p>{builder.name_of(solution, name)} = {layout(marks)}</p>")
    view = builder.view(solution, index)
    text = builder.statement(solution)
    if lines:
        text += f"\n<p><em>{builder.word('moodle.instructions', places=most)}</em></p>\n" + "\n".join(lines)
    text = held.fill(no_blanks(text))          # the blanks made here are the question's only ones
    # no numeric result (a symbolic derivation): a description, as a Cloze without blanks is refused
    q = ET.Element("question", type="cloze" if lines else "description")
    _text(ET.SubElement(q, "name"), f"{html.unescape(view.task)}: {title_of(solution, builder.lang)}")
    _text(ET.SubElement(q, "questiontext", format="html"), text)
    _text(ET.SubElement(q, "generalfeedback", format="html"), builder.solution_html(view))
    ET.SubElement(q, "penalty").text = "0.3333333"
    ET.SubElement(q, "hidden").text = "0"
    ET.SubElement(q, "idnumber").text = (solution.problem_id or "")[:IDNUMBER_LENGTH]
    return q


IDNUMBER_LENGTH = 100        # Moodle's column: a longer idnumber fails the question's import


def _text(parent: ET.Element, text: str) -> None:
    ET.SubElement(parent, "text").text = text


# Control characters (XML 1.0 cannot hold most of C0, and no reader wants the rest), lone surrogates
# (not UTF-8) and the two non-characters: left out of the quiz file wherever they came from.
_NOT_XML = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


_VARIANT = re.compile(r"[-_.]v\d+$")        # `vary` names variant k of `2022_z3` `2022_z3_v0k`


def variant_groups(solutions: list) -> list[list]:
    """Solutions grouped as variants of one problem — the same id once a variant suffix (_v01) is
    taken off — in the order they first appear.  A shared source alone does not group: distinct
    tasks of one lab or homework share theirs, and a quiz must draw variants of one problem."""
    groups: dict = {}
    for s in solutions:
        groups.setdefault(_VARIANT.sub("", s.problem_id or ""), []).append(s)
    return list(groups.values())


def category_path(members: list, lang: str) -> str:
    """$course$/top/examsolver/…: the id stem and the source (or title) the variants share ('/' doubled:
    Moodle's separator)."""
    first = members[0]
    stem = _VARIANT.sub("", first.problem_id or "problem")
    name = f"{stem} — {first.source or title_of(first, lang)}".replace("/", "//")
    return f"$course$/top/examsolver/{name}"


def render_moodle(solutions: list, lang: str, decimal: str | None = None, assets=None, options=None) -> str:
    """A Moodle XML quiz file: per group of variants a category and its Cloze questions."""
    builder = MoodleBuilder(lang, decimal, None, options, "moodle")
    partial = getattr(options, "partial", 0) or 0
    quiz = ET.Element("quiz")
    index = 0
    for members in variant_groups(solutions):
        category = ET.SubElement(quiz, "question", type="category")
        _text(ET.SubElement(category, "category"), category_path(members, lang))
        for solution in members:
            index += 1
            quiz.append(question(builder, solution, index, partial))
    ET.indent(quiz)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + _NOT_XML.sub("", ET.tostring(quiz, encoding="unicode")) + "\n"
