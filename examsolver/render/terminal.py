"""The terminal: rich text with Unicode math, one numbered equation per line.

Every text reaches rich through `visible` (as `Text`, never as markup): a control character, an
escape sequence or a bidirectional override from a spec is shown as an escape (`\\x1b`), so it can
neither clear, recolour or retitle the terminal nor reorder what it shows.
"""

from __future__ import annotations

import re
import secrets

from rich.console import Console, Group
from rich.rule import Rule
from rich.table import Table as RichTable
from rich.text import Text

from examsolver.render.common import DECIMAL_SEPARATOR, approximation, equation_parts, paragraphs, title_of, translate
from examsolver.render.common import with_math
from examsolver.render.inline import to_plain
from examsolver.render.math import PlainPrinter
from examsolver.solution import Code, Figure, Phrase, Solution, Step, Table
from examsolver.solution import literal_text

STATUS_STYLE = {"match": "green", "mismatch": "bold red", "missing": "yellow", "invalid": "yellow"}

# C0 but tab and line feed, DEL, C1, and Unicode's bidirectional controls (LRE … RLO, LRI … PDI, marks)
_UNSEEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """Text as the terminal may show it: each control character as its escape (ESC as `\\x1b`)."""
    return _UNSEEN.sub(_escape, text)


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(text: str, style: str = "") -> Text:
    """Text for rich: shown as it is (never read as markup), its control characters as escapes."""
    return Text(visible(text), style=style)


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
        self.print(Rule(safe_text(title_of(solution, self.lang), style="bold")))
        if solution.source:
            self.print(safe_text(f"{self.heading('heading.source')}: {solution.source}", style="dim"))
        if solution.statement and solution.statement.get(self.lang):
            for paragraph in paragraphs(solution.statement[self.lang]):
                self.print(safe_text(with_math(paragraph, str, self.formula, self.identifier)))
        if solution.conventions:
            self.print(safe_text(self.heading("heading.conventions"), style="bold"))
            for p in solution.conventions:
                self.print(safe_text(f"  • {self.text(p)}"))
        for p in solution.warnings:
            self.print(safe_text(f"⚠ {self.text(p)}", style="yellow"))
        for alt in solution.alternatives:
            shown = ", ".join(f"{self.identifier(name)} = {self.math.value(value, 'row')}" for name, value in alt.values)
            self.print(safe_text(f"  {self.heading('verify.heading.alternatives')} {self.text(alt.phrase)}: {shown}",
                             style="yellow"))
        for section in solution.sections:
            self.print()
            self.print(safe_text(self.text(section.title), style="bold cyan"))
            for block in section.blocks:
                self.block(block)
        if solution.checks:
            self.checks(solution)

    def print(self, renderable=None) -> None:
        self.lines.append(Text() if renderable is None else renderable)

    def block(self, block) -> None:
        if isinstance(block, Step):
            if block.text:
                self.print(safe_text(self.text(block.text)))
            number = f"({block.number}) " if block.number else ""
            boxes, lines = self.chain(block, 2 + len(number), draw=True)
            room = self.console.width - 2 - len(number)
            if any(boxes.drawn(text) and boxes.width(text + approx) > room for text, approx in lines):
                boxes, lines = self.chain(block, 2 + len(number), draw=False)   # a box cut at the edge is unreadable
            for i, (text, approx) in enumerate(lines):
                rows = boxes.compose(text + approx)
                middle = (len(rows) - 1) // 2
                for r, row in enumerate(rows):
                    line = Text("  ")
                    line.append(number if i == 0 and r == middle else " " * len(number), style="dim")
                    cut = len(row) - boxes.width(approx) if approx and len(rows) == 1 else len(row)
                    line.append(row[:cut].rstrip() if r != middle else row[:cut])
                    line.append(row[cut:], style="dim")
                    self.print(line)
        elif isinstance(block, Phrase):
            self.print(safe_text(self.text(block)))
        elif isinstance(block, Table):
            table = RichTable()
            for h in block.header:
                table.add_column(safe_text(self.text(h) if isinstance(h, Phrase) else str(h)))
            for row in block.rows:     # Text(): brackets in values are not rich markup
                table.add_row(*[safe_text(self.text(v) if isinstance(v, Phrase) else v if isinstance(v, str)
                                      else self.math.print(v)) for v in row])
            self.print(table)
        elif isinstance(block, Code):
            self.print(safe_text(block.source.rstrip(), style="green"))
        elif isinstance(block, Figure):
            self.print(safe_text(f"[{block.kind}]", style="dim"))

    def chain(self, step: Step, indent: int, draw: bool):
        """(printer, lines) of a step's equation chain; with draw, small matrices over several lines."""
        boxes = MatrixBoxes(draw=draw, decimal_separator=self.math.s["decimal_separator"], lang=self.lang)
        parts, approx = equation_parts(step, boxes), approximation(step, boxes)
        lines = wrapped_chain([visible(p) for p in parts], approx and visible(approx), self.console.width, indent,
                              boxes.width)
        return boxes, lines

    def checks(self, solution: Solution) -> None:
        table = RichTable(title=safe_text(self.heading("heading.answers")))
        for key in ("label.name", "label.expected", "label.computed", "label.status"):
            table.add_column(safe_text(self.heading(key)))
        for check in solution.checks:
            computed = "" if check.computed is None else self.math.value(check.computed, "row")
            status = self.heading(f"status.{check.status}")
            if check.detail:
                status += f" ({self.text(check.detail)})"
            table.add_row(safe_text(check.name), safe_text(literal_text(check.expected)), safe_text(computed),
                          safe_text(status, style=STATUS_STYLE[check.status]))
        self.print()
        self.print(table)


# A drawn matrix's token in the one-line text: a random key in it, so that no text of a spec spells one
_BOX_KEY = secrets.token_hex(8)
_BOX = re.compile(f"\ue000{_BOX_KEY}(\\d+)\ue000")


class MatrixBoxes(PlainPrinter):
    """The plain printer, with small matrices drawn over several lines: each matrix becomes a
    token in the one-line text, and compose() lays the line out with the matrices in place."""

    MAX_ROWS, MAX_COLUMNS = 6, 8

    def __init__(self, bindings=None, draw: bool = True, **settings):
        super().__init__(bindings, **settings)
        self.boxes: list[list[str]] = []
        self.draw = draw                        # False: every matrix on its line, where the text can wrap

    def substituted(self, node, bindings: dict) -> str:
        printer = type(self)(bindings, self.draw, **self.s)
        printer.boxes = self.boxes              # one store for every printer of the equation
        return printer.print(node)

    def matrix(self, rows: list) -> str:
        if not self.draw or not 1 < len(rows) <= self.MAX_ROWS or max(len(r) for r in rows) > self.MAX_COLUMNS:
            return super().matrix(rows)
        rows = [[visible(v) for v in r] for r in rows]
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        cells = ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in rows]
        left = ["⎡"] + ["⎢"] * (len(rows) - 2) + ["⎣"]
        right = ["⎤"] + ["⎥"] * (len(rows) - 2) + ["⎦"]
        self.boxes.append([f"{a} {c} {b}" for a, c, b in zip(left, cells, right)])
        return f"\ue000{_BOX_KEY}{len(self.boxes) - 1}\ue000"

    @staticmethod
    def drawn(text: str) -> bool:
        """Whether the text holds a matrix drawn over several lines."""
        return _BOX.search(text) is not None

    def width(self, text: str) -> int:
        """Columns the text takes once its matrices are drawn."""
        return sum(len(self.boxes[int(p)][0]) if i % 2 else len(p) for i, p in enumerate(_BOX.split(text)))

    def compose(self, text: str) -> list[str]:
        """The line's rows: text on the middle row, each matrix centred on it."""
        pieces = _BOX.split(text)
        blocks = [self.boxes[int(p)] if i % 2 else [p] for i, p in enumerate(pieces)]
        height = max(len(b) for b in blocks)
        rows = [""] * height
        for block in blocks:
            top = (height - len(block)) // 2 if len(block) > 1 else (height - 1) // 2
            for r in range(height):
                inside = 0 <= r - top < len(block)
                rows[r] += block[r - top] if inside else " " * len(block[0])
        return rows


def wrapped_chain(parts: list[str], approx: str | None, width: int, indent: int, size=len) -> list[tuple[str, str]]:
    """lhs = a = b ≈ c as lines that fit the width, broken only before a relation; continuation
    lines start under the first `=` (as a displayed chain is aligned), never at column 0.

    Each line is (text, decimals): the decimals are printed dimmed.  size(text): its width."""
    pieces = [("= ", p) for p in parts[1:]] + ([("≈ ", approx)] if approx else [])
    if not parts:
        return [("", f"≈ {approx}" if approx else "")]
    hang = size(parts[0]) + 1 if size(parts[0]) + 1 < (width - indent) // 2 else 2
    lines, current = [], [parts[0]]
    used = indent + size(parts[0])
    for rel, piece in pieces:
        if len(current) > (0 if lines else 1) and used + 3 + size(piece) > width:
            lines.append(current)
            current, used = [" " * hang], indent + hang
        current.append(("" if current[-1].endswith(" ") else " ") + rel + piece)
        used += size(current[-1])
    lines.append(current)
    out = []
    for line in lines:
        decimals = line.pop() if len(line) > 1 and line[-1].lstrip().startswith("≈") else ""
        out.append(("".join(line), decimals))
    return out
