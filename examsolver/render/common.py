"""What every text renderer needs: phrases in a language, equations as chains."""

from __future__ import annotations

import re
import string

import numpy as np

from examsolver.locales import catalog
from examsolver.mathnodes import Node
from examsolver.notation import values as V
from examsolver.render.math import Printer, _is_sympy
from examsolver.solution import Phrase, Step

DECIMAL_SEPARATOR = {"hr": ",", "en": "."}


def equation_parts(step: Step, printer: Printer) -> list[str]:
    """[lhs, form, …, form with values, result, ≈ decimals] as printed pieces."""
    parts = [printer.print(step.lhs)] if step.lhs is not None else []
    parts += [printer.print(form) for form in step.forms]
    if step.forms and step.bindings:
        parts.append(printer.substituted(step.forms[-1], step.bindings))
    parts += [printer.print(form) for form in step.extra_forms]
    if step.result is not None and not _only_approximate(step.result):     # that one follows ≈ alone
        result = printer.print(step.result) if isinstance(step.result, Node) else \
            printer.value(step.result, step.layout)
        if not parts or result != parts[-1]:
            parts.append(result)
    unique = []
    for part in parts:       # a form that prints like its neighbour adds nothing
        if not unique or part != unique[-1]:
            unique.append(part)
    if len(unique) > 1 and _only_approximate(step.result) and unique[-1] == approximation(step, printer):
        unique.pop()         # the value put in is its own decimals: it follows ≈, not =
    return unique


def approximation(step: Step, printer: Printer) -> str | None:
    if step.result is None or isinstance(step.result, Node):
        return None
    if not step.approx and not _only_approximate(step.result):
        return None
    return printer.approx(step.result, step.layout)


def _only_approximate(result) -> bool:
    """A computed result with an entry that has no exact form: it is shown after ≈ only."""
    if isinstance(result, Node) or _is_sympy(result):
        return False
    return any(V.in_decimals(v) for v in np.asarray(result, dtype=object).flat)


# A word argument that is a name from code (running_mean, conv1.W): typeset as code, never as prose.
IDENTIFIER = re.compile(r"[A-Za-z]\w*(?:[._]\w+)+(?:, [A-Za-z]\w*(?:[._]\w+)*)*")


def translate(phrase: Phrase, lang: str, inline_math, inline_latex=None, separator: str | None = None,
              code=None) -> str:
    """The phrase's sentence; inline_math(node) prints formula arguments, inline_latex(formula) the
    catalog's own `$…$` formulas (default: Unicode, as on the terminal), code(name) identifiers."""
    from examsolver.render import inline

    separator = separator or DECIMAL_SEPARATOR[lang]
    args = {name: _argument(value, lang, inline_math, inline_latex, separator, code)
            for name, value in phrase.args.items()}
    plain_args = {k: _plain(v, separator) for k, v in phrase.args.items()}
    formula = inline_latex or (lambda latex: inline.to_plain(latex, separator))
    out = []
    for kind, piece in inline.split(catalog(lang)[phrase.key]):
        if kind == inline.TEXT:
            out.append(_Plurals(lang).format(piece, **args))
        else:
            text = piece.format(**plain_args)
            out.append(formula(text) if kind == inline.MATH else (code or str)(text))
    return "".join(out)


class _Plurals(string.Formatter):
    """`{n:kernel|kernels}` in a catalog: the word's form for the number n (Croatian has three:
    1 jezgra, 2 jezgre, 5 jezgri), so no sentence says "jezgr(e)"."""

    def __init__(self, lang: str):
        self.lang = lang

    def format_field(self, value, spec: str):
        if "|" not in spec:
            return super().format_field(value, spec)
        forms = spec.split("|")
        try:
            n = int(str(value))
        except ValueError:
            return forms[-1]
        if self.lang == "hr":
            index = 0 if n % 10 == 1 and n % 100 != 11 else 1 if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14 else 2
        else:
            index = 0 if n == 1 else 1
        return forms[min(index, len(forms) - 1)]


def _plain(value, separator: str) -> str:
    """An argument inside a catalog formula: a number or a word."""
    if hasattr(value, "_t"):
        from examsolver.notation import values

        return values.localize(values.plain(value), separator)
    return str(value)


def _argument(value, lang, inline_math, inline_latex, separator, code) -> str:
    if isinstance(value, Phrase):
        return translate(value, lang, inline_math, inline_latex, separator, code)
    if isinstance(value, dict) and lang in value:     # spec text: may hold `$…$` formulas too
        from examsolver.render import inline

        formula = inline_latex or (lambda latex: inline.to_plain(latex, separator))
        return with_math(str(value[lang]), str, formula, code)
    if isinstance(value, Node):
        return inline_math(value)
    if hasattr(value, "_t"):   # an exact number
        from examsolver.notation import values

        return values.localize(values.plain(value), separator)
    if code and isinstance(value, str) and IDENTIFIER.fullmatch(value):
        return code(value)
    return str(value)


def with_math(text: str, escape, formula, code=None) -> str:
    """Spec text (a statement) with its `$…$` formulas and `` `…` `` names: prose escaped, formulas
    printed by formula(latex), names by code(name) (default: as prose)."""
    from examsolver.render import inline

    printers = {inline.TEXT: escape, inline.MATH: formula, inline.CODE: code or escape}
    return "".join(printers[kind](piece) for kind, piece in inline.split(text))


def paragraphs(text: str | None) -> list[str]:
    """A statement's paragraphs (blank lines between them), the YAML's line breaks folded."""
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", (text or "").strip()) if p.strip()]


def title_of(solution, lang: str) -> str:
    title = solution.title or {}
    return title.get(lang) or title.get("en") or title.get("hr") or solution.problem_id
