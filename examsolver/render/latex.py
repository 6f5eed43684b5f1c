"""LaTeX documents: an article and beamer slides, from jinja2 templates in templates/.

Spec text (titles, statements, table cells, code) is untrusted: every character
is escaped, and Unicode symbols that pdfLaTeX's T1/utf8 setup cannot typeset
(⋆ ⊙ ∂ ≈ σ ᵀ ₁ …) become math (`\\ensuremath{\\star}`); anything else unknown
is shown as [U+XXXX] rather than breaking the compile.  Slides are cut into
frames here, by the estimated height of each block, so a frame never overflows
silently and no fragile `allowframebreaks` is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from examsolver.render.document import Assets, BlockView, Booklet, DocumentBuilder, SolutionView, booklet_title
from examsolver.render.document import equation_height
from examsolver.render.document import math_width, roman
from examsolver.render.document import template_environment
from examsolver.render.inline import SUBSCRIPTS, SUPERSCRIPTS, UNICODE_MATH
from examsolver.solution import Code, Figure, Step, Table

_SPECIAL = {"\\": "\\textbackslash{}", "{": "\\{", "}": "\\}", "$": "\\$", "&": "\\&", "#": "\\#", "%": "\\%",
            "_": "\\_", "^": "\\textasciicircum{}", "~": "\\textasciitilde{}", '"': "\\textquotedbl{}",
            "`": "\\textasciigrave{}", "[": "{[}", "]": "{]}", "\n": " ", "\t": " ", "\r": " ", "\u0302": ""}
# (a bracket braced: text never becomes the optional argument of \\item or \\\\; a line break a space:
# a title or a table cell never ends its paragraph)
# Pairs the T1 fonts join into one glyph (-- is –, '' is ”, << is «, ,, is „): kept apart, each as written.
_LIGATURES = set("-'<>,")

_MATH_SYMBOLS = dict(UNICODE_MATH)
_MATH_SYMBOLS.update({s: f"^{{{d}}}" for s, d in SUPERSCRIPTS.items()})
_MATH_SYMBOLS.update({s: f"_{{{d}}}" for s, d in SUBSCRIPTS.items()})


def _script_letter(ch: str) -> str | None:
    """Any Unicode superscript/subscript letter (ᴷ, ᵦ, …) as a LaTeX script of its base letter."""
    import unicodedata

    kind, _, code = unicodedata.decomposition(ch).partition(" ")
    if kind not in ("<super>", "<sub>") or not code:
        return None
    base = chr(int(code.split()[0], 16))
    base = _MATH_SYMBOLS.get(base, base)
    if not (base.isascii() and base.strip()):
        return None
    return ("^" if kind == "<super>" else "_") + "{" + base + "}"


# Cyrillic needs fonts a minimal TeX Live lacks (T2A): transliterated (scientific), still readable.
_CYRILLIC = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєґ",
                     "a b v g d e ë ž z i j k l m n o p r s t u f h c č š šč '' y ' è ju ja i ï je g".split()))
_CYRILLIC.update({k.upper(): v.capitalize() for k, v in _CYRILLIC.items()})
_TEXT_SYMBOLS = {"⚠": "\\textbf{!}", "✓": "\\ensuremath{\\checkmark}", "✗": "\\ensuremath{\\times}",
                 "•": "\\textbullet{}", "€": "EUR", "\u00a0": "~", "\u2009": "\\,", "\u202f": "\\,"}
# Typeset directly by inputenc (utf8) with T1/TS1 fonts: Latin-1, Latin Extended-A (but for the letters
# T1 lacks), punctuation.
_PASS = set("–—…‘’“”„‚«»†‡‰")
_NOT_IN_T1 = set("ĦħĸĿŀŉŦŧſ")


def escape(text: str) -> str:
    """Spec or catalog text → LaTeX that typesets those characters, and nothing else."""
    out = []
    for i, ch in enumerate(text):
        if ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif ch in _LIGATURES and text[i + 1:i + 2] == ch:
            out.append(ch + "{}")
        elif ch in _MATH_SYMBOLS:
            out.append(f"\\ensuremath{{{_MATH_SYMBOLS[ch]}}}")
        elif ch in _TEXT_SYMBOLS:
            out.append(_TEXT_SYMBOLS[ch])
        elif ch in _CYRILLIC:
            out.append(_CYRILLIC[ch])
        elif (ord(ch) < 0x180 or ch in _PASS) and ch not in _NOT_IN_T1:
            out.append(ch if ch.isprintable() or ch == "\x00" else " ")
        elif _script_letter(ch):
            out.append(f"\\ensuremath{{{_script_letter(ch)}}}")
        else:
            out.append(f"[U+{ord(ch):04X}]")
    return "".join(out)


def wrap_code(source: str, width: int) -> str:
    """Lines longer than width broken inside brackets (where Python continues a line by itself),
    the rest indented under the line they continue: code stays runnable when copied."""
    out = []
    for line in source.split("\n"):
        indent = " " * (len(line) - len(line.lstrip()) + 4)
        while len(line) > width:
            cut = _break_point(line, width)
            if cut is None:
                break
            out.append(line[:cut].rstrip())
            line = indent + line[cut:].lstrip()
        out.append(line)
    return "\n".join(out)


def _break_point(line: str, width: int) -> int | None:
    """The last place before width after a comma or space inside brackets (not in a string)."""
    depth, quote, best = 0, None, None
    for i, ch in enumerate(line[:width]):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch in ", " and depth > 0 and i > len(line) - len(line.lstrip()) + 8:
            best = i + 1
    return best


def escape_code(source: str) -> str:
    """Code for fancyvrb's Verbatim with commandchars=\\\\\\{\\}: braces and backslashes escaped."""
    special = {"\\": "\\textbackslash{}", "{": "\\{", "}": "\\}", "\t": "    ", "\r": ""}
    out = []
    for ch in source:
        if ch in special:
            out.append(special[ch])
        elif ch in _MATH_SYMBOLS:
            out.append(f"\\ensuremath{{{_MATH_SYMBOLS[ch]}}}")
        elif (ord(ch) < 0x180 or ch in _PASS) and ch not in _NOT_IN_T1:
            out.append(ch if ch.isprintable() or ch == "\n" else " ")
        else:
            out.append(f"[U+{ord(ch):04X}]")
    return "".join(out)


class LatexBuilder(DocumentBuilder):
    budget = 70.0
    code_width = 84          # characters of \small code on a line of the article

    def escape(self, text: str) -> str:
        return escape(text)

    def inline(self, latex: str) -> str:
        return f"${latex}$" if latex else ""        # $$ would open displayed math

    def words_in_math(self, words: str) -> str:
        return escape(words)

    def identifier(self, name: str) -> str:
        return "\\texttt{" + escape(name) + "}"

    def in_sentence(self, latex: str) -> str:
        if math_width(latex) <= self.budget / 2:
            return self.inline(latex)
        return "\\[\\fitmath{" + latex + "}\\]"

    def equation(self, lines: list[str], number: int | None) -> str:
        single = len(lines) == 1 and not lines[0].startswith("&")      # a continued chain stays aligned
        body = lines[0] if single else "\\begin{aligned}\n  " + " \\\\\n  ".join(lines) + "\n\\end{aligned}"
        if number is None:
            return f"\\begin{{equation*}}\n\\fitmath{{{body}}}\n\\end{{equation*}}"
        return f"\\begin{{equation}}\n\\fitmath{{{body}}}\\tag{{{number}}}\n\\end{{equation}}"

    def table(self, header: list[str], rows: list[list[str]], caption: str | None) -> str:
        columns = max([len(header)] + [len(r) for r in rows])
        lines = ["\\begin{center}", "\\fitbox{\\begin{tabular}{" + "c" * columns + "}", "\\toprule",
                 " & ".join(header) + " \\\\", "\\midrule"]
        lines += [" & ".join(row) + " \\\\" for row in rows]
        lines += ["\\bottomrule", "\\end{tabular}}"]
        if caption:
            lines += ["\\par\\smallskip{\\small " + caption + "}"]
        return "\n".join(lines + ["\\end{center}"])

    def figure(self, figure: Figure, caption: str | None) -> str:
        if self.assets is None:
            return "\\emph{" + self.word("doc.figure_omitted") + "}"
        from examsolver.render.plots import render_figure

        name = self.assets.add("pdf", render_figure(figure, "pdf", self.lang))
        lines = ["\\begin{center}",
                 f"\\includegraphics[width=0.8\\linewidth,height=0.55\\textheight,keepaspectratio]{{{name}}}"]
        if caption:
            lines += ["\\par{\\small " + caption + "}"]
        return "\n".join(lines + ["\\end{center}"])

    def code(self, code: Code, caption: str | None) -> str:
        lines = ["{\\small " + caption + "}"] if caption else []
        lines += ["\\begin{Verbatim}[commandchars=\\\\\\{\\},fontsize=\\small]",
                  escape_code(wrap_code(code.source.rstrip("\n"), self.code_width)), "\\end{Verbatim}"]
        return "\n".join(lines)


class SlideBuilder(LatexBuilder):
    budget = 64.0
    code_lines = 14          # lines of \scriptsize code on one frame, under a heading and a caption
    code_width = 88          # characters of \scriptsize code on a line of a frame
    table_rows = 9           # rows of a table on one frame; a taller table continues on the next

    def step_pieces(self, step: Step) -> list[BlockView]:
        """A chain taller than a frame continues on the next frames; its number stands on the last line."""
        lines = self.step_lines(step)
        intro = self.text(step.text) if step.text else ""
        pieces = _fitting_lines(lines, FRAME_LINES - 3)
        return [self.equation_view(piece, self.number(step) if i == len(pieces) - 1 else None, intro if i == 0 else "")
                for i, piece in enumerate(pieces)]

    def blocks_of(self, block) -> list[BlockView]:
        from dataclasses import replace

        if isinstance(block, Table) and len(block.rows) > self.table_rows:
            step = self.table_rows
            return [self.block(replace(block, rows=block.rows[i:i + step],
                                       caption=block.caption if i + step >= len(block.rows) else None))
                    for i in range(0, len(block.rows), step)]
        if isinstance(block, Step):
            return self.step_pieces(block)
        if not isinstance(block, Code):
            return [self.block(block)]

        lines = wrap_code(block.source.rstrip("\n"), self.code_width).splitlines() or [""]
        pieces = [lines[i:i + self.code_lines] for i in range(0, len(lines), self.code_lines)]
        views = []
        for i, piece in enumerate(pieces):
            part = replace(block, source="\n".join(piece), caption=block.caption if i == 0 else None)
            view = self.block(part)
            view.body = view.body.replace("fontsize=\\small", "fontsize=\\scriptsize")
            view.height = FRAME_LINES if len(piece) == self.code_lines else 0.75 * len(piece) + 2
            views.append(view)
        return views


# ----- slides: cutting sections into frames -------------------------------------
FRAME_LINES = 15.0       # text lines that fit under a frame title (16:9, 11pt)
FRAME_EQUATIONS = 4


@dataclass
class Frame:
    title: str
    items: list = field(default_factory=list)     # ("heading", text) | ("block", BlockView)
    height: float = 0.0
    equations: int = 0
    fragile: bool = False


def _groups(view: SolutionView) -> list[list]:
    """Items that must share a frame: a heading or a sentence with the block after it."""
    groups, pending = [], []
    for section in view.sections:
        pending.append(("heading", section.title))
        for block in section.blocks:
            pending.append(("block", block))
            if block.kind != "text":
                groups.append(pending)
                pending = []
        if pending and pending[-1][0] == "block":
            groups.append(pending)
            pending = []
    if pending:
        groups.append(pending)
    return groups


def _fitting_lines(lines: list[str], room: float) -> list[list[str]]:
    """Consecutive lines of an aligned chain in pieces no taller than room (at least a line each)."""
    pieces: list[list[str]] = [[]]
    for line in lines:
        if pieces[-1] and equation_height(pieces[-1] + [line]) > room:
            pieces.append([])
        pieces[-1].append(line)
    return pieces


def _fitting(groups: list[list]) -> list[list]:
    """A group taller than a frame (a sentence before a full page of code) gives its last block a
    frame of its own, so the sentence and the block each fit."""
    out = []
    for group in groups:
        sentences = any(kind == "block" for kind, _ in group[:-1])
        if sentences and sum(_height(i) for i in group) > FRAME_LINES:
            out += [group[:-1], group[-1:]]
        else:
            out.append(group)
    return out


def _height(item) -> float:
    return 1.4 if item[0] == "heading" else item[1].height


def frames_of(view: SolutionView, lang_words: dict) -> list[Frame]:
    """Greedy packing: a new frame when the next group would overflow lines or equations."""
    frames: list[Frame] = []
    for group in _fitting(_groups(view)):
        height = sum(_height(i) for i in group)
        equations = sum(1 for i in group if i[0] == "block" and i[1].kind == "equation")
        frame = frames[-1] if frames else None
        if frame is None or (frame.items and (frame.height + height > FRAME_LINES
                                              or frame.equations + equations > FRAME_EQUATIONS)):
            frame = Frame("")
            frames.append(frame)
        frame.items += group
        frame.height += height
        frame.equations += equations
        frame.fragile |= any(i[0] == "block" and i[1].kind == "code" for i in group)
    for number, frame in enumerate(frames, 1):
        frame.title = lang_words["doc.solution_part"].format(task=view.task, part=roman(number))
    return frames


TOC_LINES = 12          # entries of the table of contents on one frame


def contents_frames(views: list, exams: bool) -> list[tuple[int, int]]:
    """Ranges of sections (first, last) whose contents fit a frame each: a section is an exam with
    its tasks, or a task."""
    sizes = [] if exams else [1] * len(views)
    for view in views if exams else ():
        if view.new_exam:
            sizes.append(1)         # the exam's line
        sizes[-1] += 1              # and one per task
    ranges, first, used = [], 1, 0
    for number, size in enumerate(sizes, 1):
        if used and used + size > TOC_LINES:
            ranges.append((first, number - 1))
            first, used = number, 0
        used += size
    return ranges + [(first, len(sizes))] if sizes else []


# ----- documents -----------------------------------------------------------------
def render_latex(solutions: list, lang: str, kind: str = "article", decimal: str | None = None,
                 assets: Assets | None = None, options=None) -> str:
    """The whole .tex source: one solution, or a booklet with a table of contents."""
    builder = (SlideBuilder if kind == "beamer" else LatexBuilder)(lang, decimal, assets, options, kind)
    book = Booklet.of(solutions)
    views = book.views(builder)
    booklet = len(views) > 1
    title = escape(book.title or booklet_title(lang)) if booklet else f"{views[0].task}: {views[0].title}"
    options = builder.options
    context = dict(views=views, booklet=booklet, title=title, lang=lang, words=builder.words, escape=escape,
                   subtitle=escape(options.course) if booklet or options.course else views[0].source,
                   author=escape(options.author), date=escape(options.date),
                   exams=any(v.new_exam for v in views))
    if kind == "beamer":
        context["frames"] = {v.id: frames_of(v, builder.words) for v in views}
        context["contents"] = contents_frames(views, context["exams"])
        template = "beamer.tex.j2"
    else:
        template = "article.tex.j2"
    return template_environment(latex=True).get_template(template).render(**context)


__all__ = ["render_latex", "escape", "escape_code", "LatexBuilder", "SlideBuilder", "frames_of", "BlockView"]
