"""The terminal: rich text with Unicode math, one numbered equation per line."""

from __future__ import annotations

from rich.console import Console, Group
from rich.rule import Rule
from rich.table import Table as RichTable
from rich.text import Text

from examsolver.render.common import DECIMAL_SEPARATOR, approximation, equation_parts, paragraphs, title_of, translate
from examsolver.render.common import with_math
from examsolver.render.inline import to_plain
from examsolver.render.math import PlainPrinter
from examsolver.solution import Code, Figure, Phrase, Solution, Step, Table
from examsolver.verify import literal_text

STATUS_STYLE = {"match": "green", "mismatch": "bold red", "missing": "yellow", "invalid": "yellow"}


class TerminalRenderer:
    def __init__(self, lang: str = "hr", console: Console | None = None):
        self.lang = lang
        self.math = PlainPrinter(decimal_separator=DECIMAL_SEPARATOR[lang], lang=lang)
        # Our text is never rich markup or emoji codes: brackets and colons are math.
        self.console = console or Console(highlight=False, markup=False, emoji=False)
        self.lines: list = []    # renderables, printed at once: one rich pass instead of one per line

    def text(self, phrase: Phrase) -> str:
        return translate(phrase, self.lang, self.math.print, self.formula, self.math.s["decimal_separator"],
                         self.identifier)

    def identifier(self, name: str) -> str:
        """A name from code (conv1.W, running_mean): as it is written in code."""
        return name

    def formula(self, latex: str) -> str:
        return to_plain(latex, self.math.s["decimal_separator"])

    def heading(self, key: str) -> str:
        return self.text(Phrase(key))

    def render(self, solution: Solution) -> None:
        self.lines = []
        self.collect(solution)
        self.console.print(Group(*self.lines))

    def collect(self, solution: Solution) -> None:
        self.print(Rule(Text(title_of(solution, self.lang), style="bold")))
        if solution.source:
            self.print(Text(f"{self.heading('heading.source')}: {solution.source}", style="dim"))
        if solution.statement and solution.statement.get(self.lang):
            for paragraph in paragraphs(solution.statement[self.lang]):
                self.print(Text(with_math(paragraph, str, self.formula, self.identifier)))
        if solution.conventions:
            self.print(Text(self.heading("heading.conventions"), style="bold"))
            for p in solution.conventions:
                self.print(Text(f"  • {self.text(p)}"))
        for p in solution.warnings:
            self.print(Text(f"⚠ {self.text(p)}", style="yellow"))
        for alt in solution.alternatives:
            shown = ", ".join(f"{self.identifier(name)} = {self.math.value(value, 'row')}" for name, value in alt.values)
            self.print(Text(f"  {self.heading('verify.heading.alternatives')} {self.text(alt.phrase)}: {shown}",
                         style="yellow"))
        for section in solution.sections:
            self.print()
            self.print(Text(self.text(section.title), style="bold cyan"))
            for block in section.blocks:
                self.block(block)
        if solution.checks:
            self.checks(solution)

    def print(self, renderable=None) -> None:
        self.lines.append(Text() if renderable is None else renderable)

    def block(self, block) -> None:
        if isinstance(block, Step):
            if block.text:
                self.print(Text(self.text(block.text)))
            number = f"({block.number}) " if block.number else ""
            lines = wrapped_chain(equation_parts(block, self.math), approximation(block, self.math),
                                  self.console.width, 2 + len(number))
            for i, (text, approx) in enumerate(lines):
                line = Text("  ")
                line.append(number if i == 0 else " " * len(number), style="dim")
                line.append(text)
                if approx:
                    line.append(approx, style="dim")
                self.print(line)
        elif isinstance(block, Phrase):
            self.print(Text(self.text(block)))
        elif isinstance(block, Table):
            table = RichTable(*[self.text(h) if isinstance(h, Phrase) else str(h) for h in block.header])
            for row in block.rows:     # Text(): brackets in values are not rich markup
                table.add_row(*[Text(self.text(v) if isinstance(v, Phrase) else v if isinstance(v, str)
                                     else self.math.print(v)) for v in row])
            self.print(table)
        elif isinstance(block, Code):
            self.print(Text(block.source.rstrip(), style="green"))
        elif isinstance(block, Figure):
            self.print(Text(f"[{block.kind}]", style="dim"))

    def checks(self, solution: Solution) -> None:
        table = RichTable(title=self.heading("heading.answers"))
        for key in ("label.name", "label.expected", "label.computed", "label.status"):
            table.add_column(self.heading(key))
        for check in solution.checks:
            computed = "" if check.computed is None else self.math.value(check.computed, "row")
            status = self.heading(f"status.{check.status}")
            if check.detail:
                status += f" ({self.text(check.detail)})"
            table.add_row(Text(check.name), Text(literal_text(check.expected)), Text(computed),
                          Text(status, style=STATUS_STYLE[check.status]))
        self.print()
        self.print(table)


def wrapped_chain(parts: list[str], approx: str | None, width: int, indent: int) -> list[tuple[str, str]]:
    """lhs = a = b ≈ c as lines that fit the width, broken only before a relation; continuation
    lines start under the first `=` (as a displayed chain is aligned), never at column 0.

    Each line is (text, decimals): the decimals are printed dimmed."""
    pieces = [("= ", p) for p in parts[1:]] + ([("≈ ", approx)] if approx else [])
    if not parts:
        return [("", f"≈ {approx}" if approx else "")]
    hang = len(parts[0]) + 1 if len(parts[0]) + 1 < (width - indent) // 2 else 2
    lines, current = [], [parts[0]]
    used = indent + len(parts[0])
    for rel, piece in pieces:
        if len(current) > (0 if lines else 1) and used + 3 + len(piece) > width:
            lines.append(current)
            current, used = [" " * hang], indent + hang
        current.append(("" if current[-1].endswith(" ") else " ") + rel + piece)
        used += len(current[-1])
    lines.append(current)
    out = []
    for line in lines:
        decimals = line.pop() if len(line) > 1 and line[-1].lstrip().startswith("≈") else ""
        out.append(("".join(line), decimals))
    return out
