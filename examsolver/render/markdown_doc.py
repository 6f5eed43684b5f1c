"""Markdown documents: booklets with contents, figures as SVG files linked beside the .md.

The per-solution Markdown is render/markdown.py's; this adds what a document needs:
figures (written as files when there is a file to sit beside, else a note that
they were left out), several solutions in one booklet, a chosen decimal separator.
"""

from __future__ import annotations

import re

from examsolver.locales import catalog
from examsolver.render.document import SEPARATORS, Assets, booklet_title, localized_phrase
from examsolver.render.markdown import MarkdownRenderer, emitted, escape, line, one_line
from examsolver.render.math import LatexPrinter
from examsolver.solution import Figure, Phrase


class DocumentMarkdown(MarkdownRenderer):
    def __init__(self, lang: str = "hr", decimal: str | None = None, assets: Assets | None = None,
                 options=None):
        from examsolver.render.options import Options

        options = options or Options()
        super().__init__(lang, options.key, options.torch_in("md"))
        self.options = options
        self.sep = SEPARATORS[decimal] if decimal else None
        if self.sep:
            self.math = LatexPrinter(decimal_separator=self.sep, lang=lang)
        self.assets = assets

    def text(self, phrase: Phrase) -> str:
        return super().text(localized_phrase(phrase, self.sep) if self.sep else phrase)

    def block(self, block) -> list[str]:
        if not isinstance(block, Figure):
            return super().block(block)
        caption = self.text(block.caption) if block.caption else ""
        if self.assets is None:
            return [f"*{escape(catalog(self.lang)['doc.figure_omitted'])}*"]
        from examsolver.render.plots import render_figure

        name = self.assets.add("svg", render_figure(block, "svg", self.lang))
        out = [f"![{one_line(caption or escape(block.kind))}]({name})"]
        return out + ([f"*{caption}*"] if caption else [])


def _slug(text: str) -> str:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def render_markdown(solutions: list, lang: str, decimal: str | None = None, assets: Assets | None = None,
                    options=None) -> str:
    renderer = DocumentMarkdown(lang, decimal, assets, options)
    byline = [escape(t) for t in (renderer.options.course, renderer.options.author, renderer.options.date) if t]
    if len(solutions) == 1:
        title, _, rest = renderer.render(solutions[0]).partition("\n")    # the byline under the title, as in HTML
        return emitted("\n".join([title, "", line(" · ".join(byline)), rest] if byline else [title, rest]))
    from examsolver.render.common import title_of
    from examsolver.render.document import Booklet

    book = Booklet.of(solutions)
    out = [f"# {one_line(escape(book.title or booklet_title(lang)))}", ""]
    out += [line(" · ".join(byline)), ""] if byline else []
    out += [f"## {escape(catalog(lang)['heading.contents'])}", ""]
    for i, solution in enumerate(book.solutions, 1):
        title = title_of(solution, lang)
        out.append(f"{i}. [{one_line(escape(title))}](#{_slug(title)})")
    parts = ["\n".join(out) + "\n"]
    for solution, offset in zip(book.solutions, book.offsets):
        renderer.offset = offset
        parts.append(renderer.render(solution, level=2))
    return emitted("\n".join(parts))
