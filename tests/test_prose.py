"""No raw `_`, `^`, braces or code identifiers in the prose of any document (issue 13, item 1).

Every problem is rendered in every document format and both languages, with the answer key; the
mathematics (`$…$`, display equations, MathML), code listings and names typeset as code are taken
out, and what is left — the sentences a reader reads — must not hold TeX or spec syntax.
"""

from __future__ import annotations

import html
from fractions import Fraction
import os
import re

import pytest
from rich.console import Console
from rich.text import Text

from examsolver.pipeline import solve_file
from examsolver.render import output as out
from examsolver.render.inline import InlineMathError, plain_text, split, to_latex
from examsolver.render.options import Options
from examsolver.render.terminal import TerminalRenderer
from examsolver.solution import Phrase, Step, Table

from conftest import PROBLEMS

PROBLEM_FILES = sorted(PROBLEMS.glob("*.yaml"))
_SOLVED: dict = {}
# a name from code: two or more characters before a dot (np.log, fc1.W), or an underscore inside a word
IDENTIFIER = r"\b[A-Za-z]\w+\.[A-Za-z_]\w*|\b[A-Za-z]\w*_\w"
RAW = {"md": rf"[_^{{}}\\]|{IDENTIFIER}", "html": rf"[_^{{}}\\]|{IDENTIFIER}", "term": rf"[_^{{}}\\]|{IDENTIFIER}",
       "tex": r"\\_|\\textasciicircum|\\\{|\\\}|\\textbackslash"}


def solved(path):
    if path not in _SOLVED:
        _SOLVED[path] = solve_file(path)
    return _SOLVED[path]


def prose_md(text: str) -> str:
    for pattern in (r"```.*?```", r"\$\$.*?\$\$", r"\$[^$]*\$", r"`[^`]*`", r"\]\([^)]*\)"):
        text = re.sub(pattern, " ", text, flags=re.S)
    return text


def prose_tex(text: str) -> str:
    text = text[text.index("\\begin{document}"):]
    for pattern in (r"\\begin\{Verbatim\}.*?\\end\{Verbatim\}", r"\\begin\{(equation\*?)\}.*?\\end\{\1\}",
                    r"\$[^$]*\$", r"\\texttt\{[^}]*\}"):
        text = re.sub(pattern, " ", text, flags=re.S)
    return text


def prose_html(text: str) -> str:
    text = text[text.index("<body"):]
    for pattern in (r"<math.*?</math>", r"<pre.*?</pre>", r"<code.*?</code>", r"<svg.*?</svg>", r"<[^>]+>"):
        text = re.sub(pattern, " ", text, flags=re.S)
    return html.unescape(text)


class ProseOnly(TerminalRenderer):
    """The terminal's sentences: equations, formulas, code and table cells (mathematics) left out."""

    def __init__(self, lang, console):
        super().__init__(lang, console)
        self.math.print = lambda node: " "

    def formula(self, latex: str) -> str:
        return " "

    def identifier(self, name: str) -> str:
        return " "

    def block(self, block) -> None:
        if isinstance(block, Step):
            if block.text:
                self.print(Text(self.text(block.text)))
        elif isinstance(block, Table):
            for cell in [*block.header, *[c for row in block.rows for c in row]]:
                if isinstance(cell, Phrase):
                    self.print(Text(self.text(cell)))
        elif isinstance(block, Phrase):
            super().block(block)


def prose_term(solution, lang: str) -> str:
    console = Console(record=True, width=200, file=open(os.devnull, "w"), color_system=None)
    ProseOnly(lang, console).render(solution)
    return "\n".join(line for line in console.export_text().splitlines() if not line.strip().startswith("┃")
                     and not re.match(r"\s*[│┃]", line))


def prose(solution, fmt: str, lang: str) -> str:
    if fmt == "term":
        return prose_term(solution, lang)
    text = out.render_document([solution], fmt, lang, options=Options(key=True, torch=True))
    return {"md": prose_md, "tex": prose_tex, "beamer": prose_tex, "html": prose_html}[fmt](text)


@pytest.mark.parametrize("lang", ("hr", "en"))
@pytest.mark.parametrize("fmt", ("md", "tex", "beamer", "html", "term"))
def test_no_raw_markup_or_identifiers_in_prose(fmt, lang):
    bad = []
    for path in PROBLEM_FILES:
        for line in prose(solved(path), fmt, lang).splitlines():
            if re.search(RAW["tex" if fmt == "beamer" else fmt], line):
                bad.append(f"{path.stem}: {line.strip()[:140]}")
    assert not bad, "\n".join(bad)


def test_the_check_can_fail():
    """The extractor keeps prose: a raw subscript in a sentence is found."""
    from examsolver.solution import Solution

    solution = Solution(problem_id="demo_t1", title={"hr": "x", "en": "x"},
                        statement={"hr": "Zadano je W_hh i $\\mathbf{W}_{hh}$.", "en": "Given W_hh."})
    for fmt in ("md", "tex", "html", "term"):
        assert re.search(RAW[fmt], prose(solution, fmt, "hr")), fmt


# ----- the inline-math reader -------------------------------------------------------------------
def test_inline_math_is_rebuilt_from_allowed_tokens():
    assert to_latex(r"\mathbf{W}_1 = [1, 0,5]", ",") == r"\mathbf{W}_1 = [1, 0{,}5]"
    assert to_latex("x⁽¹⁾ = [1, −2]ᵀ") == "x^{(1)} = [1, -2]^{T}"
    for hostile in (r"\input{/etc/passwd}", r"\def\x{1}", "a % comment", "{", r"\begin{verbatim}"):
        with pytest.raises(InlineMathError):
            to_latex(hostile)


def test_inline_math_in_unicode():
    # a subscript word is written W_hh, as W_hy must be (ᵧ does not exist) and as the equations write both
    assert plain_text(r"Given $\mathbf{x}^{(1)} = [1, 1]^T$ and $\mathbf{W}_{hh}$, $x_{i}$.") == \
        "Given x⁽¹⁾ = [1, 1]ᵀ and W_hh, xᵢ."
    assert plain_text(r"$\frac{e^x}{1 + e^x}$, $\sqrt{2}$") == "eˣ/(1 + eˣ), √2"
    assert split(r"costs \$5, `np.log` and $x$") == [("text", "costs $5, "), ("code", "np.log"), ("text", " and "),
                                                      ("math", "x")]


def test_terminal_equations_wrap_under_their_equation():
    """At 80 columns no line is longer and every continuation starts under its equation, not at column 0."""
    console = Console(record=True, width=80, file=open(os.devnull, "w"), color_system=None)
    TerminalRenderer("hr", console).render(solved(PROBLEMS / "2022_z1.yaml"))
    lines = console.export_text().splitlines()
    continued = [line for line in lines if re.match(r" {6,}= ", line)]
    assert continued, "2022_z1 has chains longer than 80 columns"
    assert all(len(line) <= 80 for line in lines)
    assert not any("  ≈" in line for line in lines)


def test_the_exam_sheet_has_the_statements_only():
    from typer.testing import CliRunner

    from examsolver.cli import app

    path = str(PROBLEMS / "2022_z3.yaml")
    for fmt in ("term", "md", "tex", "beamer", "html", "json"):
        result = CliRunner().invoke(app, ["solve", path, "--sheet", "--format", fmt, "--lang", "en"])
        assert result.exit_code == 0, result.output
        assert "Convolutional" in result.stdout or "convolution" in result.stdout
        assert "2/3" not in result.stdout and "Forward pass" not in result.stdout and "torch.relu" not in result.stdout


def test_python_api():
    import examsolver

    solution = examsolver.solve(PROBLEMS / "2022_z1.yaml", lang="en")
    assert solution["fc1.W.updated"].tolist() == [[Fraction(5, 4), Fraction(1, 4)], [Fraction(-1, 4), Fraction(7, 4)]]
    assert "Forward pass" in solution._repr_markdown_() and "<math" in solution._repr_html_()
    with pytest.raises(KeyError, match="known"):
        solution["nothing"]
    spec = {"id": "demo", "title": {"hr": "Demo", "en": "Demo"}, "model": [{"linear": {"W": [[1, 2]], "b": [0.5]}}],
            "loss": "mse", "data": {"x": [1, -1], "y": [0]}, "tasks": ["forward"]}
    assert examsolver.solve(spec)["loss"] == Fraction(1, 4)


@pytest.mark.parametrize("name", ["extra_attention", "2022_z5"])
def test_a_matrix_too_wide_for_the_terminal_is_written_on_its_line(name):
    """At 80 columns a drawn matrix whose row the edge would cut is written [[…], […]] instead: every line
    that opens a box row closes it."""
    console = Console(record=True, width=80, file=open(os.devnull, "w"), color_system=None)
    TerminalRenderer("en", console).render(solved(PROBLEMS / f"{name}.yaml"))
    for line in console.export_text().splitlines():
        assert line.count("⎡") + line.count("⎢") + line.count("⎣") == \
            line.count("⎤") + line.count("⎥") + line.count("⎦"), line
