"""Markdown with math that GitHub and KaTeX render ($…$ and $$…$$ with \\tag)."""

from __future__ import annotations

from examsolver.render.common import DECIMAL_SEPARATOR, approximation, equation_parts, paragraphs, title_of, translate
from examsolver.render.common import with_math
from examsolver.render.document import chain_lines
from examsolver.render.inline import to_latex
from examsolver.render.given import given
from examsolver.render.names import math_name
from examsolver.render.torch_script import torch_script
from examsolver.render.math import LatexPrinter
from examsolver.solution import Code, Figure, Phrase, Solution, Step, Table
from examsolver.solution import literal_text


class MarkdownRenderer:
    budget = 90.0            # characters of math on one line before a chain continues on the next

    def __init__(self, lang: str = "hr", key: bool = True, torch: bool = False):
        self.lang = lang
        self.key = key           # show the answer key
        self.torch = torch       # end with the PyTorch check code
        self.offset = 0          # equations of the exam before this solution (booklets)
        self.math = LatexPrinter(decimal_separator=DECIMAL_SEPARATOR[lang], lang=lang)

    def text(self, phrase: Phrase) -> str:
        return translate(phrase, self.lang, lambda node: f"${self.math.print(node)}$", self.formula,
                         self.math.s["decimal_separator"], self.identifier)

    def identifier(self, name: str) -> str:
        return f"`{name}`"

    def formula(self, latex: str) -> str:
        return f"${to_latex(latex, self.math.s['decimal_separator'])}$"

    def heading(self, key: str) -> str:
        return self.text(Phrase(key))

    def render(self, solution: Solution, level: int = 1) -> str:
        h = "#" * level
        out = [f"{h} {title_of(solution, self.lang)}", ""]
        if solution.source:
            out += [f"*{self.heading('heading.source')}:* {solution.source}", ""]
        if solution.statement and solution.statement.get(self.lang):
            out += [f"{h}# {self.heading('heading.statement')}", ""]
            out += [with_math(p, str, self.formula, self.identifier) + "\n" for p in paragraphs(solution.statement[self.lang])]
        facts = given(solution)
        if facts:
            out += [f"{h}# {self.heading('heading.given')}", ""] + [f"- {self.text(p).strip()}" for p in facts] + [""]
        if solution.conventions:
            out += [f"{h}# {self.heading('heading.conventions')}", ""]
            out += [f"- {self.text(p)}" for p in solution.conventions] + [""]
        if solution.warnings:
            out += [f"{h}# {self.heading('heading.warnings')}", ""]
            out += [f"- ⚠ {self.text(p)}" for p in solution.warnings] + [""]
            for alt in solution.alternatives:
                shown = ", ".join(f"`{name}` = ${self.math.value(value, 'row')}$" for name, value in alt.values)
                out += [f"- {self.heading('verify.heading.alternatives')} {self.text(alt.phrase)}: {shown}"]
            out += [""] if solution.alternatives else []
        for section in solution.sections:
            out += [f"{h}# {self.text(section.title)}", ""]
            for block in section.blocks:
                out += self.block(block) + [""]
        script = self.torch and torch_script(solution)
        if script:
            out += [f"{h}# {self.heading('doc.torch_check')}", "", "```python", script.rstrip(), "```", ""]
        if solution.checks and self.key:
            out += self.checks(solution, h)
        return "\n".join(out).rstrip() + "\n"

    def block(self, block) -> list[str]:
        if isinstance(block, Step):
            return self.step(block)
        if isinstance(block, Phrase):
            return [self.text(block)]
        if isinstance(block, Table):
            return self.table(block)
        if isinstance(block, Code):
            return [f"```{block.language}", block.source.rstrip(), "```"]
        if isinstance(block, Figure):
            return [f"*[{block.kind}]*"]
        raise TypeError(f"cannot render {type(block).__name__}")

    def step(self, step: Step) -> list[str]:
        out = [self.text(step.text), ""] if step.text else []
        lines = chain_lines(equation_parts(step, self.math), approximation(step, self.math), self.budget)
        tag = f" \\tag{{{step.number + self.offset}}}" if step.number else ""
        if len(lines) == 1:
            return out + ["$$", lines[0] + tag, "$$"]
        # a long chain on aligned lines, as in the PDF (KaTeX and GitHub read `aligned`)
        return out + ["$$", "\\begin{aligned}", " \\\\\n".join(lines), "\\end{aligned}" + tag, "$$"]

    def table(self, table: Table) -> list[str]:
        header = [self.text(h) if isinstance(h, Phrase) else str(h) for h in table.header]
        rows = [[self.cell(c) for c in row] for row in table.rows]
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return out + ["| " + " | ".join(r) + " |" for r in rows]

    def cell(self, value) -> str:
        if isinstance(value, Phrase):
            return self.text(value)
        if isinstance(value, str):
            return value
        return f"${self.math.print(value)}$"

    def checks(self, solution: Solution, h: str) -> list[str]:
        out = [f"{h}# {self.heading('heading.answers')}", "",
               f"| {self.heading('label.name')} | {self.heading('label.computed')} | {self.heading('label.status')} |",
               "|---|---|---|"]
        for check in solution.checks:
            computed = "" if check.computed is None else f"${self.math.value(check.computed, 'row')}$"
            status = self.heading(f"status.{check.status}")
            if check.status != "match":
                status += f" ({self.heading('label.expected')}: `{literal_text(check.expected)}`)"
            if check.detail:
                status += f" ({self.text(check.detail)})"
            symbol = math_name(solution, check.name)
            name = f"${self.math.print(symbol)}$" if symbol is not None else f"`{check.name}`"
            out.append(f"| {name} | {computed} | {status} |")
        return out + [""]
