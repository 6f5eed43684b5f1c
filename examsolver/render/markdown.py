"""Markdown with math that GitHub and KaTeX render ($…$ and $$…$$ with \\tag).

Text from a spec or a catalog is written by `escape` so that it shows its characters and nothing
else: no HTML passes, no link, image, heading, list, table or code syntax of its own; formulas are
the rebuilt LaTeX of render/inline.py and the printers, between dollars (`math`); names from code are
code spans (`code`).  Control characters are dropped from the whole document where it is emitted.
"""

from __future__ import annotations

import re

from examsolver.render.common import DECIMAL_SEPARATOR, approximation, equation_parts, paragraphs, title_of, translate
from examsolver.render.common import with_math
from examsolver.render.document import Held, chain_lines
from examsolver.render.inline import to_latex
from examsolver.render.given import given
from examsolver.render.names import math_name
from examsolver.render.torch_script import torch_script
from examsolver.render.math import LatexPrinter
from examsolver.solution import Code, Figure, Phrase, Solution, Step, Table
from examsolver.solution import literal_text


# ----- escaping --------------------------------------------------------------------------
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}          # no HTML, no autolink, no block quote
_PUNCTUATION = set("\\`*_#~$")                # escapes, code, emphasis, headings, strikethrough, math
# at a line's start: a list item, a break, a heading's underline, a link's definition, a table's row
_BLOCK_MARK = re.compile(r"[-+=\[|:]|\d{1,9}(?=[.)])")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape(text: str) -> str:
    """Text as Markdown that shows exactly its characters.  A bracket or a bar (common in prose: `[0, 1]`,
    `|x|`) makes a link only as `](`, a table only with a row of its own, a link only with a definition
    at a line's start: so `](` is broken and each line after a line break starts safely (`line`)."""
    out = "".join(_ENTITIES.get(ch) or ("\\" + ch if ch in _PUNCTUATION else ch) for ch in text)
    first, *rest = re.split(r"\r\n?|\n", out.replace("](", "]\\("))
    return "\n".join([first] + [line(text) for text in rest])


def line(text: str) -> str:
    """Escaped text that begins a block (a paragraph, a list item): a leading indentation dropped (it
    would make code), a leading `-`, `+`, `=`, `[`, `|`, `:` or `1.` escaped (a list, a break, a heading's
    underline, a link's definition, a table's delimiter row)."""
    text = text.lstrip(" \t")
    mark = _BLOCK_MARK.match(text)
    if mark is None:
        return text
    if mark.group().isdigit():
        return f"{mark.group()}\\{text[mark.end():]}"
    return "\\" + text


def one_line(markdown: str) -> str:
    """Markdown for a heading or a table cell, which end at a line break."""
    return re.sub(r"\s*\n\s*", " ", markdown)


def code(text: str) -> str:
    """A name or a key's text as a code span: delimited by more backticks than it holds, on one line."""
    text = re.sub(r"[\r\n]+", " ", text)
    fence = _backticks(text, 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def fenced(source: str, language: str) -> list[str]:
    """A code block: fenced by more backticks than any run inside it (a name in the code may hold ```)."""
    fence = _backticks(source, 3)
    return [fence + language, source.rstrip(), fence]


def _backticks(text: str, least: int) -> str:
    """A fence of backticks longer than any run of them in the text, at least `least` long."""
    return "`" * max(least, max(map(len, re.findall("`+", text)), default=0) + 1)


_MATH_TOKEN = re.compile(r"\\(?:[A-Za-z]+|.)|.", re.S)


def math(latex: str) -> str:
    """A formula between dollars."""
    return f"${safe_latex(latex)}$"


def safe_latex(latex: str) -> str:
    """The formula with `<` written `\\lt`: a renderer without math sees no tag in it (inside \\text{…}
    the text is closed around it)."""
    tokens = _MATH_TOKEN.findall(latex) + [""]
    out, depth, text_at = [], 0, None        # text_at: the brace depth a \text{…} group opened at
    for token, after in zip(tokens, tokens[1:]):
        if token == "\\text" and text_at is None and after == "{":
            text_at = depth
        depth += {"{": 1, "}": -1}.get(token, 0)
        if token == "}" and depth == text_at:
            text_at = None
        if token == "<":
            token = "}\\lt\\text{" if text_at is not None else "\\lt" + (" " if after[:1].isalpha() else "")
        out.append(token)
    return "".join(out)


def cell(markdown: str) -> str:
    """A table cell: on one line, every `|` not already escaped escaped (GFM splits a row at each, inside
    code spans and formulas too)."""
    return re.sub(r"(?<!\\)((?:\\\\)*)\|", r"\1\\|", one_line(markdown))


def emitted(markdown: str) -> str:
    """The document as written: without control characters (escape sequences, NULs)."""
    return _CONTROL.sub("", markdown)


class MarkdownRenderer:
    budget = 90.0            # characters of math on one line before a chain continues on the next

    def __init__(self, lang: str = "hr", key: bool = True, torch: bool = False):
        self.lang = lang
        self.key = key           # show the answer key
        self.torch = torch       # end with the PyTorch check code
        self.offset = 0          # equations of the exam before this solution (booklets)
        self.math = LatexPrinter(decimal_separator=DECIMAL_SEPARATOR[lang], lang=lang)

    def text(self, phrase: Phrase) -> str:
        """The translated sentence escaped, its formulas and names put in after."""
        held = Held()
        sentence = translate(phrase, self.lang, lambda node: held.put(math(self.math.print(node))),
                             lambda latex: held.put(self.formula(latex)), self.math.s["decimal_separator"],
                             lambda name: held.put(self.identifier(name)))
        return held.fill(escape(sentence))

    def identifier(self, name: str) -> str:
        return code(name)

    def formula(self, latex: str) -> str:
        return math(to_latex(latex, self.math.s["decimal_separator"]))

    def heading(self, key: str) -> str:
        return self.text(Phrase(key))

    def render(self, solution: Solution, level: int = 1) -> str:
        h = "#" * level
        out = [f"{h} {one_line(escape(title_of(solution, self.lang)))}", ""]
        if solution.source:
            out += [f"*{self.heading('heading.source')}:* {escape(solution.source)}", ""]
        if solution.statement and solution.statement.get(self.lang):
            out += [f"{h}# {self.heading('heading.statement')}", ""]
            out += [line(with_math(p, escape, self.formula, self.identifier)) + "\n"
                    for p in paragraphs(solution.statement[self.lang])]
        facts = given(solution)
        if facts:
            out += [f"{h}# {self.heading('heading.given')}", ""]
            out += [f"- {line(self.text(p).rstrip())}" for p in facts] + [""]
        if solution.conventions:
            out += [f"{h}# {self.heading('heading.conventions')}", ""]
            out += [f"- {line(self.text(p))}" for p in solution.conventions] + [""]
        if solution.warnings:
            out += [f"{h}# {self.heading('heading.warnings')}", ""]
            out += [f"- ⚠ {self.text(p)}" for p in solution.warnings] + [""]
            for alt in solution.alternatives:
                shown = ", ".join(f"{self.identifier(name)} = {math(self.math.value(value, 'row'))}"
                                  for name, value in alt.values)
                out += [f"- {line(self.heading('verify.heading.alternatives'))} {self.text(alt.phrase)}: {shown}"]
            out += [""] if solution.alternatives else []
        for section in solution.sections:
            out += [f"{h}# {one_line(self.text(section.title))}", ""]
            for block in section.blocks:
                out += self.block(block) + [""]
        script = self.torch and torch_script(solution)
        if script:
            out += [f"{h}# {self.heading('doc.torch_check')}", ""] + fenced(script, "python") + [""]
        if solution.checks and self.key:
            out += self.checks(solution, h)
        return emitted("\n".join(out).rstrip() + "\n")

    def block(self, block) -> list[str]:
        if isinstance(block, Step):
            return self.step(block)
        if isinstance(block, Phrase):
            return [line(self.text(block))]
        if isinstance(block, Table):
            return self.table(block)
        if isinstance(block, Code):
            return fenced(block.source, block.language)
        if isinstance(block, Figure):
            return [f"*\\[{escape(block.kind)}\\]*"]
        raise TypeError(f"cannot render {type(block).__name__}")

    def step(self, step: Step) -> list[str]:
        out = [line(self.text(step.text)), ""] if step.text else []
        lines = chain_lines(equation_parts(step, self.math), approximation(step, self.math), self.budget)
        lines = [safe_latex(text) for text in lines]
        tag = f" \\tag{{{step.number + self.offset}}}" if step.number else ""
        if len(lines) == 1:
            return out + ["$$", lines[0] + tag, "$$"]
        # a long chain on aligned lines, as in the PDF (KaTeX and GitHub read `aligned`)
        return out + ["$$", "\\begin{aligned}", " \\\\\n".join(lines), "\\end{aligned}" + tag, "$$"]

    def table(self, table: Table) -> list[str]:
        header = [self.text(h) if isinstance(h, Phrase) else escape(str(h)) for h in table.header]
        rows = [[self.cell(c) for c in row] for row in table.rows]
        return [_row(header), "|" + "---|" * len(header)] + [_row(r) for r in rows]

    def cell(self, value) -> str:
        if isinstance(value, Phrase):
            return self.text(value)
        if isinstance(value, str):
            return escape(value)
        return math(self.math.print(value))

    def checks(self, solution: Solution, h: str) -> list[str]:
        out = [f"{h}# {self.heading('heading.answers')}", "",
               _row([self.heading(k) for k in ("label.name", "label.computed", "label.status")]), "|---|---|---|"]
        for check in solution.checks:
            computed = "" if check.computed is None else math(self.math.value(check.computed, "row"))
            status = self.heading(f"status.{check.status}")
            if check.status != "match":
                status += f" ({self.heading('label.expected')}: {code(literal_text(check.expected))})"
            if check.detail:
                status += f" ({self.text(check.detail)})"
            symbol = math_name(solution, check.name)
            name = math(self.math.print(symbol)) if symbol is not None else code(check.name)
            out.append(_row([name, computed, status]))
        return out + [""]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(map(cell, cells)) + " |"
