"""What the document formats (LaTeX article, beamer, HTML) share: a walk over a Solution.

A `DocumentBuilder` turns Solutions into plain view objects (titles, paragraphs,
equations already broken into lines, tables, figures) that jinja2 templates lay
out.  Subclasses decide only the markup: how text is escaped, how an equation,
a table, a figure or code looks.  Equations come from `equation_parts` and the
LaTeX printer, the same composer every other format uses.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from examsolver.errors import ExamsolverError
from examsolver.locales import catalog
from examsolver.render.common import DECIMAL_SEPARATOR, approximation, equation_parts, paragraphs, title_of, translate
from examsolver.render.common import with_math
from examsolver.render.math import LatexPrinter
from examsolver.render.given import given
from examsolver.render.names import math_name
from examsolver.render.torch_script import torch_script
from examsolver.solution import Code, Figure, Phrase, Solution, Step, Table

SEPARATORS = {"comma": ",", "point": "."}


@dataclass
class Assets:
    """Files a document refers to (figures), written beside it; None data means 'omit figures'."""

    prefix: str = ""
    files: dict = field(default_factory=dict)      # file name → bytes

    def add(self, suffix: str, data: bytes) -> str:
        """The file's name: letters, digits, - and _ only, so it is the same word in a path, in LaTeX's
        \\includegraphics and in Markdown."""
        prefix = re.sub(r"[^A-Za-z0-9_-]", "-", self.prefix)
        name = f"{prefix}fig{len(self.files) + 1}.{suffix}"
        self.files[name] = data
        return name


@dataclass
class BlockView:
    kind: str           # text | equation | table | figure | code
    body: str           # markup
    height: float = 1.0  # in text lines, for slide chunking
    intro: str = ""     # the sentence before an equation


@dataclass
class SectionView:
    title: str
    blocks: list[BlockView]


@dataclass
class SolutionView:
    id: str
    anchor: str
    task: str           # "Zadatak 3" / "Task 3"
    title: str
    source: str
    statement: list[str]
    conventions: list[str]
    warnings: list[str]
    sections: list[SectionView]
    checks: dict | None  # {"header": [...], "rows": [[...]]}
    exam: str = ""       # the exam it comes from (booklets group by it)
    given: list = field(default_factory=list)   # the model, data and loss as bullets (network problems)
    new_exam: bool = False   # the first task of its exam in the booklet


def task_number(solution: Solution, index: int) -> int:
    """The task's number as its exam numbers it: from the source ("…, zadatak 3") or the id
    (2022_z3 → 3, 000_t2 → 2); else its place in the booklet."""
    for text, pattern in ((_split_source(solution)[1], r"(\d+)\s*$"), (solution.problem_id or "", r"_[A-Za-z]*(\d+)$")):
        match = re.search(pattern, text)
        if match:
            return int(match.group(1))
    return index


def _split_source(solution: Solution) -> tuple[str, str]:
    """(exam, task) of a source written "exam, task" ("Duboko učenje 1, završni ispit 2022., zadatak 3"):
    split at its last comma outside parentheses; a source without one is all exam."""
    source, depth = solution.source or "", 0
    for i in range(len(source) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(source[i], 0)
        if source[i] == "," and depth == 0:
            return source[:i].strip(), source[i + 1:].strip()
    return source.strip(), ""


def exam_of(solution: Solution) -> str:
    """The exam a task comes from: its source without the task ("Duboko učenje 1, završni ispit 2022.")."""
    return _split_source(solution)[0]


@dataclass
class Booklet:
    """Several solutions as one document: grouped by exam, equations numbered on through an exam."""

    solutions: list
    offsets: list          # equations of the same exam before each solution
    exams: list
    title: str             # the exam they all come from, or ""

    @classmethod
    def of(cls, solutions: list) -> "Booklet":
        order = {exam: i for i, exam in reversed(list(enumerate(exam_of(s) for s in solutions)))}
        ordered = sorted(solutions, key=lambda s: order[exam_of(s)])        # stable: the given order within an exam
        offsets, seen = [], {}
        for s in ordered:
            exam = exam_of(s)
            offsets.append(seen.get(exam, 0) if exam else 0)
            seen[exam] = seen.get(exam, 0) + sum(1 for sec in s.sections for b in sec.blocks
                                                 if isinstance(b, Step) and b.number)
        exams = [exam_of(s) for s in ordered]
        return cls(ordered, offsets, exams, exams[0] if len(set(exams)) == 1 else "")

    def views(self, builder) -> list:
        out, place = [], {}
        for i, (solution, offset) in enumerate(zip(self.solutions, self.offsets), 1):
            place[self.exams[i - 1]] = place.get(self.exams[i - 1], 0) + 1      # a task without a number: its place in the exam
            view = builder.view(solution, place[self.exams[i - 1]], offset)
            view.exam = builder.escape(self.exams[i - 1])
            view.new_exam = len(set(self.exams)) > 1 and (i == 1 or self.exams[i - 1] != self.exams[i - 2])
            out.append(view)
        return out


class Held:
    """Markup set aside while the sentence around it is escaped: put() leaves a mark in its place,
    fill() puts it back.  A mark carries a random key, so no text of a spec can spell one (a NUL and
    a number alone once picked a formula, or past the end of the list an internal error)."""

    def __init__(self):
        self.key = secrets.token_hex(8)
        self.items: list[str] = []

    def put(self, markup: str) -> str:
        self.items.append(markup)
        return f"\x00{self.key}:{len(self.items) - 1}\x00"

    def fill(self, text: str) -> str:
        """The text with the markup back in place; a NUL of the spec's own is dropped (TeX refuses it)."""
        return re.sub(f"\x00{self.key}:(\\d+)\x00", lambda m: self.items[int(m.group(1))], text).replace("\x00", "")


def roman(n: int) -> str:
    out = ""
    for value, letters in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"),
                           (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        while n >= value:
            out += letters
            n -= value
    return out


def localized_phrase(phrase: Phrase, separator: str) -> Phrase:
    """The phrase with exact-number arguments written with the chosen decimal separator."""
    from examsolver.notation import values

    def arg(value):
        if isinstance(value, Phrase):
            return localized_phrase(value, separator)
        if hasattr(value, "_t"):
            return values.localize(values.plain(value), separator)
        return value

    return Phrase(phrase.key, {k: arg(v) for k, v in phrase.args.items()})


# ----- how wide a LaTeX formula is ---------------------------------------------
_WORDS = {"\\ln", "\\exp", "\\max", "\\min", "\\tanh", "\\log", "\\sin", "\\cos", "\\mathrm", "\\text"}
_ZERO = {"\\left", "\\right", "\\displaystyle", "\\mathbf", "\\boldsymbol", "\\mathbb", "\\hat", "\\,", "\\!",
         "\\quad", "\\big", "\\Big", "\\operatorname"}


def _group(tex: str, i: int) -> tuple[str, int]:
    """The braced group starting at tex[i] ('{…}') or the single token there; and the index after it."""
    if i < len(tex) and tex[i] == "{":
        depth = 0
        for j in range(i, len(tex)):
            depth += {"{": 1, "}": -1}.get(tex[j], 0)
            if depth == 0:
                return tex[i + 1:j], j + 1
        return tex[i + 1:], len(tex)
    if i < len(tex) and tex[i] == "\\":
        match = re.match(r"\\([A-Za-z]+|.)", tex[i:])
        return match.group(0), i + len(match.group(0))
    return tex[i:i + 1], i + 1


def math_width(tex: str) -> float:
    """Rough width of a formula in characters: enough to decide where to break a chain."""
    width, i = 0.0, 0
    while i < len(tex):
        ch = tex[i]
        if tex.startswith("\\begin{", i):
            env, j = _group(tex, i + 6)
            end = tex.find("\\end{" + env + "}", j)
            end = len(tex) if end < 0 else end
            rows = [r.split("&") for r in tex[j:end].split("\\\\")]
            columns = max(len(r) for r in rows)
            cells = [max((math_width(r[c]) for r in rows if c < len(r)), default=0) for c in range(columns)]
            width += sum(cells) + 1.5 * columns + 1
            i = end + len(env) + 6
        elif tex.startswith("\\frac", i):
            num, j = _group(tex, i + 5)
            den, i = _group(tex, j)
            width += max(math_width(num), math_width(den)) + 0.5
        elif ch in "_^":
            group, i = _group(tex, i + 1)
            width += 0.7 * math_width(group)
        elif ch == "\\":
            token, i = _group(tex, i)
            if token in ("\\text", "\\mathrm"):
                group, i = _group(tex, i)
                width += len(group)
            elif token in _WORDS:
                width += len(token) - 1
            elif token not in _ZERO:
                width += 1.5 if token in ("\\star", "\\odot", "\\cdot", "\\approx", "\\oslash", "\\times") else 1
        elif ch in "{}":
            i += 1
        elif ch == " ":
            i += 1
        else:
            width += 2.2 if ch in "=+-<>" else 1
            i += 1
    return width


def chain_groups(parts: list[str], approx: str | None, budget: float) -> list[list[int]]:
    """lhs = … = result [≈ decimals], measured in LaTeX: which of the pieces after the lhs (the
    approximation last) stand on each line.  One line when it fits, else lines filled greedily;
    continuation lines start at the first relation, so each line's width counts the lhs's
    indentation; a piece wider than the budget gets a line of its own."""
    pieces = parts[1:] + ([approx] if approx else [])
    one = " ".join(parts[:1] + [f"= {p}" for p in parts[1:]] + ([f"\\approx {approx}"] if approx else []))
    if len(parts) < 2 or math_width(one) <= budget:
        return [list(range(len(pieces)))]
    indent = math_width(parts[0])
    lines: list[list[int]] = [[]]
    for i, piece in enumerate(pieces):
        width = indent + sum(math_width(pieces[j]) + 2.2 for j in lines[-1]) + math_width(piece) + 2.2
        if lines[-1] and width > budget:
            lines.append([])
        lines[-1].append(i)
    return lines


def chain_lines(parts: list[str], approx: str | None, budget: float) -> list[str]:
    """The chain as LaTeX lines: one line, or aligned lines ('lhs &= a = b', '&= c')."""
    pieces = [("=", p) for p in parts[1:]] + ([("\\approx", approx)] if approx else [])
    if not parts:
        return [approx or ""]
    groups = chain_groups(parts, approx, budget)
    if len(groups) == 1:
        return [" ".join([parts[0]] + [f"{rel} {p}" for rel, p in pieces])]
    out = []
    for i, group in enumerate(groups):
        (rel, piece), rest = pieces[group[0]], [pieces[j] for j in group[1:]]
        text = (parts[0] + " " if i == 0 else "") + f"&{rel} {piece}"
        out.append(text + "".join(f" {r} {p}" for r, p in rest))
    return out


def equation_height(lines: list[str]) -> float:
    """Height in text lines: a matrix with r rows is about r lines tall, a fraction two."""
    height = 0.0
    for line in lines:
        rows = [line[m.end():].split("\\end{bmatrix}")[0].count("\\\\") + 1
                for m in re.finditer(r"\\begin\{bmatrix\}", line)]
        fracs = 4.0 if re.search(r"\\(int|sum|prod)\\limits|\\sum_", line) else 1.0 + _frac_depth(line) \
            if "frac" in line else 1.1
        height += max([fracs] + [1.1 * r + 0.4 for r in rows])
    return height + 0.8      # display spacing


def _frac_depth(line: str) -> int:
    """How deeply fractions nest in a line of LaTeX: tanh(1/2 + 3σ(1/4)/4)/2 is three levels, about four
    text lines tall."""
    fractions, arguments, depth, deepest, i = [], [], 0, 0, 0
    while i < len(line):
        match = re.match(r"\\[dt]?frac(?![a-zA-Z])", line[i:])
        if match:
            fractions.append([depth, 2])         # its two arguments open at this brace depth
            i += match.end()
            continue
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            if fractions and fractions[-1][0] == depth and fractions[-1][1] > 0:
                fractions[-1][1] -= 1
                arguments.append(depth)
                deepest = max(deepest, len(arguments))
                if fractions[-1][1] == 0:
                    fractions.pop()
            depth += 1
        elif c == "}":
            depth -= 1
            if arguments and arguments[-1] == depth:
                arguments.pop()
        i += 1
    return deepest


class DocumentBuilder:
    """Walks Solutions into views; subclasses give the markup."""

    budget = 70.0            # characters of math on one line

    def __init__(self, lang: str = "hr", decimal: str | None = None, assets: Assets | None = None,
                 options=None, fmt: str = ""):
        from examsolver.render.options import Options

        options = options or Options()
        self.lang = lang
        self.key = options.key                  # show the answer key (the TA's version)
        self.torch = options.torch_in(fmt)      # end with the PyTorch check code
        self.options = options
        self.offset = 0                         # equations of the exam before this solution
        self.sep = SEPARATORS[decimal] if decimal else DECIMAL_SEPARATOR[lang]
        self.math = LatexPrinter(decimal_separator=self.sep, lang=lang)
        self.assets = assets
        self.words = catalog(lang)

    # ----- hooks --------------------------------------------------------------
    def escape(self, text: str) -> str:
        raise NotImplementedError

    def inline(self, latex: str) -> str:
        raise NotImplementedError

    def equation(self, lines: list[str], number: int | None) -> str:
        raise NotImplementedError

    def identifier(self, name: str) -> str:
        """A name from code in a sentence (running_mean): typewriter type."""
        raise NotImplementedError

    def in_sentence(self, latex: str) -> str:
        """A formula of a sentence: inline, or displayed when it is too long to break across lines."""
        return self.inline(latex)

    def node_in_sentence(self, node) -> str:
        """A formula node of a sentence (HTML prints the node itself, not its LaTeX)."""
        return self.in_sentence(self.math.print(node))

    def node_inline(self, node) -> str:
        """A formula node in a table cell or an answer key."""
        return self.inline(self.math.print(node))

    def value_inline(self, value, layout: str) -> str:
        return self.inline(self.math.value(value, layout))

    def formula(self, latex: str) -> str:
        """A `$…$` formula of a statement or a phrase: rebuilt from its allowed tokens, then inline."""
        from examsolver.render.inline import to_latex

        return self.inline(to_latex(latex, self.sep, self.words_in_math))

    def words_in_math(self, words: str) -> str:
        """The words of a formula's `\\text{…}` (no character special to TeX can be in them)."""
        return words

    def table(self, header: list[str], rows: list[list[str]], caption: str | None) -> str:
        raise NotImplementedError

    def figure(self, figure: Figure, caption: str | None) -> str:
        raise NotImplementedError

    def code(self, code: Code, caption: str | None) -> str:
        raise NotImplementedError

    # ----- text ---------------------------------------------------------------
    def word(self, key: str, **args) -> str:
        return self.text(Phrase(key, args))

    def text(self, phrase: Phrase) -> str:
        """The translated sentence, escaped, with formula arguments as inline math."""
        held = Held()
        sentence = translate(localized_phrase(phrase, self.sep), self.lang,
                             lambda node: held.put(self.node_in_sentence(node)),
                             lambda latex: held.put(self.formula(latex)), self.sep,
                             lambda name: held.put(self.identifier(name)))
        return held.fill(self.escape(sentence))

    def cell(self, value) -> str:
        if isinstance(value, Phrase):
            return self.text(value)
        if isinstance(value, str):
            return self.escape(value)
        return self.node_inline(value)

    # ----- the walk -------------------------------------------------------------
    def view(self, solution: Solution, index: int = 1, offset: int = 0) -> SolutionView:
        """The solution as markup; its equations numbered from offset + 1 (continuous through an exam)."""
        self.offset = offset
        statement = paragraphs((solution.statement or {}).get(self.lang))
        sections = [SectionView(self.text(s.title), [v for b in s.blocks for v in self.blocks_of(b)])
                    for s in solution.sections]
        script = self.torch and torch_script(solution)
        if script:
            sections.append(SectionView(self.word("doc.torch_check"), self.blocks_of(Code("python", script))))
        return SolutionView(
            id=solution.problem_id, anchor=re.sub(r"[^A-Za-z0-9_-]", "-", solution.problem_id or f"p{index}"),
            task=self.escape(self.words["doc.task"].format(n=task_number(solution, index))),
            title=self.escape(title_of(solution, self.lang)), source=self.escape(solution.source or ""),
            statement=[with_math(p, self.escape, self.formula, self.identifier) for p in statement],
            conventions=[self.text(p) for p in solution.conventions],
            given=[self.text(p).strip() for p in given(solution)],
            warnings=[self.text(p) for p in solution.warnings], sections=sections,
            checks=self.checks(solution) if self.key else None)

    def blocks_of(self, block) -> list[BlockView]:
        """Usually one view per block; slides cut long code into pieces that fit a frame."""
        return [self.block(block)]

    def block(self, block) -> BlockView:
        if isinstance(block, Step):
            return self.step(block)
        if isinstance(block, Phrase):
            body = self.text(block)
            return BlockView("text", body, 1 + len(body) // 90)
        caption = self.text(block.caption) if getattr(block, "caption", None) else None
        if isinstance(block, Table):
            header = [self.text(h) if isinstance(h, Phrase) else self.escape(str(h)) for h in block.header]
            rows = [[self.cell(c) for c in row] for row in block.rows]
            return BlockView("table", self.table(header, rows, caption), 1.3 * len(rows) + 2.5)
        if isinstance(block, Figure):
            return BlockView("figure", self.figure(block, caption), 99.0)
        if isinstance(block, Code):
            return BlockView("code", self.code(block, caption), 0.9 * len(block.source.strip().splitlines()) + 1.5)
        raise TypeError(f"cannot render {type(block).__name__}")

    def number(self, step: Step) -> int | None:
        return step.number + self.offset if step.number else None

    def step(self, step: Step) -> BlockView:
        return self.equation_view(self.step_lines(step), self.number(step), self.text(step.text) if step.text else "")

    def step_lines(self, step: Step) -> list[str]:
        return chain_lines(equation_parts(step, self.math), approximation(step, self.math), self.budget)

    def equation_view(self, lines: list[str], number: int | None, intro: str = "") -> BlockView:
        height = equation_height(lines) + (1 + len(intro) // 90 if intro else 0)
        return BlockView("equation", self.equation(lines, number), height, intro)

    def checks(self, solution: Solution) -> dict | None:
        """The answer key: each result by its name in the key file, its value as mathematics, and
        the key's own text only where it disagrees."""
        if not solution.checks:
            return None
        from examsolver.solution import literal_text

        header = [self.word(k) for k in ("label.name", "label.computed", "label.status")]
        rows = []
        for check in solution.checks:
            computed = "" if check.computed is None else self.math.value(check.computed, "row")
            if math_width(computed) > self.budget / 2:      # a tensor of formulas: it stands in the solution
                computed = self.word("doc.key_in_solution")
            elif computed:
                computed = self.value_inline(check.computed, "row")
            status = self.word(f"status.{check.status}")
            if check.status != "match":
                status += f" ({self.word('label.expected')}: {self.identifier(literal_text(check.expected))})"
            if check.detail:
                status += " (" + self.text(check.detail) + ")"
            symbol = math_name(solution, check.name)
            name = self.node_inline(symbol) if symbol is not None else self.identifier(check.name)
            rows.append([name, computed, status])
        return {"header": header, "rows": rows, "status": [c.status for c in solution.checks]}


def templates_dir() -> Path:
    """templates/: inside the package (a wheel; in the repository a symlink to the top-level
    templates/), else the repository's own (a checkout that made no symlinks)."""
    here = Path(__file__).resolve()
    for path in (here.parents[1] / "templates", here.parents[2] / "templates"):
        if path.is_dir():
            return path
    raise ExamsolverError("the document templates are missing from this installation (reinstall examsolver)")


def template_environment(latex: bool):
    """jinja2 over templates/; LaTeX templates use <% %> and << >> so braces stay TeX's."""
    import jinja2

    options = dict(loader=jinja2.FileSystemLoader(str(templates_dir())), undefined=jinja2.StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    if latex:
        options.update(block_start_string="<%", block_end_string="%>", variable_start_string="<<",
                       variable_end_string=">>", comment_start_string="<#", comment_end_string="#>",
                       autoescape=False)
    else:
        options.update(autoescape=True)
    return jinja2.Environment(**options)


def booklet_title(lang: str) -> str:
    return catalog(lang)["doc.booklet_title"]
