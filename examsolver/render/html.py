"""Self-contained HTML: math as MathML (printed from the formula nodes by render/mathml.py; the
`$…$` formulas of statements and catalogs and sympy expressions are LaTeX text, converted by
latex2mathml here), figures as inline SVG, styles inline.  Nothing is
fetched when the page is viewed; browsers with MathML Core (Chromium, Firefox, Safari) lay the
math out natively; no script runs in the page.
"""

from __future__ import annotations

import html
import re

from markupsafe import Markup

from examsolver.render.common import approximation, equation_parts
from examsolver.render.document import Assets, BlockView, Booklet, DocumentBuilder, booklet_title, chain_groups
from examsolver.render.document import chain_lines, equation_height, template_environment
from examsolver.render.mathml import MathMLPrinter, math_element, mrow
from examsolver.solution import Code, Figure

_FENCE = {"&#x0005B;": "&#x0005D;", "&#x00028;": "&#x00029;", "&#x0007C;": "&#x0007C;"}


class MathError(ValueError):
    """latex2mathml could not read a formula (a printer produced LaTeX it does not know)."""


def mathml_inner(latex: str) -> str:
    """The MathML content (inside <math>) of a LaTeX formula."""
    from latex2mathml.converter import convert_to_element

    try:
        element = convert_to_element(latex)
    except Exception as err:   # latex2mathml raises many unrelated types
        raise MathError(f"{type(err).__name__}: {err} in {latex!r}") from err
    out = _serialized(element)
    inner = out[out.index(">") + 1:out.rindex("</math>")]
    return _tidy(inner)


def _serialized(element) -> str:
    """latex2mathml's tree as markup, every text and attribute escaped.  Its own `convert` unescapes
    the whole serialization to keep the character references it writes into texts (`&#x0003C;`), and
    with them the raw text of `\\text{…}`: `\\text{<img …>}` became an element.  Here only those
    references are restored (one the formula's text spelled out would still be a character, not markup)."""
    from xml.etree.ElementTree import tostring

    return _REFERENCE.sub(r"&\1", tostring(element, encoding="unicode"))


_REFERENCE = re.compile(r"&amp;(#x[0-9A-Fa-f]+;)")


def _tidy(mathml: str) -> str:
    """Decimal commas as one number (0{,}5 → <mn>0,5</mn>); matrix brackets that stretch."""
    mathml = re.sub(r"<mn>(\d+)</mn><mrow><mo>&#x0002C;</mo></mrow><mn>(\d+)</mn>", r"<mn>\1,\2</mn>", mathml)
    # a minus after an operator or an opening fence is a sign, not a binary minus: no spaces around it
    # (after a closing fence, `[…] − 1`, it is binary)
    mathml = re.sub(r"(<mo[^>]*>(?!&#x0005D;|&#x00029;|&#x0007C;|\]|\))[^<]*</mo>|<mrow>)<mo>&#x02212;</mo>",
                    r'\1<mo form="prefix">&#x02212;</mo>', mathml)
    # separators as in print: `0,5; 1` with a space after the semicolon (latex2mathml reads `;` as a letter),
    # `∂L/∂s` with no space around the slash, parentheses close to what they enclose
    mathml = mathml.replace("<mi>;</mi>", '<mo separator="true" lspace="0em" rspace="0.2778em">;</mo>')
    mathml = mathml.replace("<mo>&#x0002C;</mo>", '<mo separator="true" lspace="0em" rspace="0.1667em">,</mo>')
    mathml = mathml.replace("<mo>&#x0002F;</mo>", '<mo lspace="0em" rspace="0em">/</mo>')
    mathml = mathml.replace('<mo stretchy="true" fence="true"', '<mo lspace="0.0556em" rspace="0.0556em" stretchy="true" fence="true"')
    # ln 2, exp x: a thin space after a function name, as TeX puts it
    mathml = re.sub(r"<mi>(ln|log|exp|tanh|max|min|sin|cos)</mi>(?=<m[in])", r'<mi>\1</mi><mspace width="0.1667em"/>',
                    mathml)
    for left, right in _FENCE.items():
        mathml = mathml.replace(f"<mo>{left}</mo><mtable>",
                                f'<mrow><mo fence="true" stretchy="true" form="prefix">{left}</mo><mtable>')
        mathml = mathml.replace(f"</mtable><mo>{right}</mo>",
                                f'</mtable><mo fence="true" stretchy="true" form="postfix">{right}</mo></mrow>')
    return mathml


def aligned_element(rows: list[tuple[str, str]]) -> str:
    """(left, right) MathML rows as a two-column table aligned at the first relation."""
    cells = "".join(f'<mtr><mtd style="text-align:right;padding-right:0">{left}</mtd>'
                    f'<mtd style="text-align:left;padding-left:0">{right}</mtd></mtr>' for left, right in rows)
    return math_element(f'<mtable displaystyle="true">{cells}</mtable>', display=True)


_RELATION = {"=": "<mo>=</mo>", "approx": "<mo>&#x2248;</mo>"}


class HtmlBuilder(DocumentBuilder):
    """HTML markup whose math is LaTeX text: through latex2mathml here; Moodle keeps it as TeX for
    MathJax; the page (PageBuilder) prints formula nodes as MathML instead."""

    budget = 80.0

    def escape(self, text: str) -> str:
        return html.escape(text, quote=True)

    def inline(self, latex: str) -> str:
        """LaTeX text (a `$…$` formula of a statement or a phrase): through latex2mathml."""
        return math_element(mathml_inner(latex))

    def identifier(self, name: str) -> str:
        return f"<code>{self.escape(name)}</code>"

    def table(self, header: list[str], rows: list[list[str]], caption: str | None) -> str:
        head = "".join(f"<th>{h}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
        cap = f"<caption>{caption}</caption>" if caption else ""
        return f'<table class="data">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'

    def figure(self, figure: Figure, caption: str | None) -> str:
        from examsolver.render.plots import render_figure

        svg = render_figure(figure, "svg", self.lang).decode("utf-8")
        svg = svg[svg.index("<svg"):]           # no XML prolog or DOCTYPE inside HTML
        cap = f"<figcaption>{caption}</figcaption>" if caption else ""
        return f"<figure>{svg}{cap}</figure>"

    def code(self, code: Code, caption: str | None) -> str:
        cap = f'<div class="caption">{caption}</div>' if caption else ""
        return f'{cap}<pre><code class="language-{self.escape(code.language)}">{self.escape(code.source)}</code></pre>'

    def equation(self, lines: list[str], number: int | None) -> str:
        """LaTeX lines ('lhs &= a = b', '&= c') through latex2mathml."""
        if len(lines) == 1:
            return _numbered(math_element(mathml_inner(lines[0]), display=True), number)
        rows = [(mathml_inner(left) if left.strip() else "", mathml_inner(right))
                for left, _, right in (line.partition("&") for line in lines)]
        return _numbered(aligned_element(rows), number)


class PageBuilder(HtmlBuilder):
    """The self-contained page: formula nodes printed by the MathML printer."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mathml = MathMLPrinter(**self.math.s)

    def node_inline(self, node) -> str:
        return math_element(self.mathml.print(node))

    node_in_sentence = node_inline

    def value_inline(self, value, layout: str) -> str:
        return math_element(self.mathml.value(value, layout))

    def step(self, step):
        """The chain printed as MathML, broken where its LaTeX would break."""
        latex, approx = equation_parts(step, self.math), approximation(step, self.math)
        parts, decimals = equation_parts(step, self.mathml), approximation(step, self.mathml)
        pieces = [("=", p) for p in parts[1:]] + ([("approx", decimals)] if decimals else [])
        same = len(parts) == len(latex) and (approx is None) == (decimals is None)
        groups = chain_groups(latex, approx, self.budget) if same else [list(range(len(pieces)))]
        rows = [("".join(parts[:1]) if i == 0 else "", "".join(_RELATION[pieces[j][0]] + pieces[j][1] for j in group))
                for i, group in enumerate(groups)]
        if len(rows) == 1:
            body = math_element(mrow(rows[0][0] + rows[0][1]), display=True)
        else:
            body = aligned_element([(mrow(left), mrow(right)) for left, right in rows])
        intro = self.text(step.text) if step.text else ""
        height = equation_height(chain_lines(latex, approx, self.budget)) + (1 + len(intro) // 90 if intro else 0)
        return BlockView("equation", _numbered(body, self.number(step)), height, intro)


def _numbered(math: str, number: int | None) -> str:
    """A displayed equation with its number on the right, an anchor for links to it."""
    tag = f'<span class="eqno">({number})</span>' if number is not None else ""
    label = f' id="eq-{number}"' if number is not None else ""
    return f'<div class="equation"{label}><div class="eqbody">{math}</div>{tag}</div>'

def render_html(solutions: list, lang: str, decimal: str | None = None, assets: Assets | None = None,
                options=None) -> str:
    """One self-contained page: a solution, or a booklet with a table of contents."""
    builder = PageBuilder(lang, decimal, assets, options, "html")
    book = Booklet.of(solutions)
    views = book.views(builder)
    booklet = len(views) > 1
    title = (book.title or booklet_title(lang)) if booklet else f"{_plain(views[0].task)}: {_plain(views[0].title)}"
    for view in views:       # everything in a view is already markup
        _mark(view)
    byline = [text for text in (builder.options.course, builder.options.author, builder.options.date) if text]
    context = dict(views=views, booklet=booklet, title=title, lang=lang, words=builder.words, byline=byline)
    return template_environment(latex=False).get_template("page.html.j2").render(**context)


def _plain(markup: str) -> str:
    return html.unescape(markup)


def _mark(view) -> None:
    for name in ("task", "title", "source", "exam"):
        setattr(view, name, Markup(getattr(view, name)))
    view.statement = [Markup(p) for p in view.statement]
    view.conventions = [Markup(p) for p in view.conventions]
    view.given = [Markup(p) for p in view.given]
    view.warnings = [Markup(p) for p in view.warnings]
    for section in view.sections:
        section.title = Markup(section.title)
        for block in section.blocks:
            block.body, block.intro = Markup(block.body), Markup(block.intro)
    if view.checks:
        view.checks["header"] = [Markup(h) for h in view.checks["header"]]
        view.checks["rows"] = [[Markup(c) for c in row] for row in view.checks["rows"]]
