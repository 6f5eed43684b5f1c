"""TeX from strangers' specs: nothing a spec says is read by TeX as a command, and TeX can neither read
nor write outside its build directory whatever reaches it.

Three layers, each tested on its own: the inline-math rebuilder (render/inline.py) writes only its
grammar; the text escape (render/latex.py) makes any string typeset as itself, checked with pdflatex and
pdftotext; TeX runs in kpathsea's paranoid mode without shell escape (render/pdf.py), checked with TeX
written to attack it.  Tests that need TeX fail instead of skipping when EXAMSOLVER_REQUIRE_TOOLS=1.
"""

from __future__ import annotations

import hashlib
import random
import re
import subprocess
import unicodedata
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from examsolver.cli import app
from examsolver.errors import SpecError
from examsolver.pipeline import solve_document
from examsolver.render.document import Assets, template_environment
from examsolver.render.inline import COMMANDS, UNICODE_MATH, InlineMathError, allowed_commands, to_latex, to_plain
from examsolver.render.latex import LatexBuilder, escape, render_latex
from examsolver.render.pdf import CompileError, compile_pdf
from examsolver.solution import Code, Phrase, Solution, Table
from examsolver.spec.load import load_text

from test_documents import need

HOSTILE = Path(__file__).parent / "hostile" / "outputs"
TEX_TOOLS = ("latexmk", "pdflatex", "pdftotext")

# Pieces of formulas, legal and hostile, that the drawn formulas are made of.
FRAGMENTS = ["x", "W", "1", "0,5", " ", "α", "²", "ᵀ", "₁", "′", "'", "−", "·", "ℝ", "+", "=", "(", ")", "[", "]",
             "|", "<", ",", "{", "}", "^", "_", "^^", "^^5c", "^^M", "^^^^005c", "&", "\\\\", "\\mathbf", "\\frac",
             "\\sqrt", "\\sqrt[", "\\text{", "\\text{a b}", "\\hat", "\\left(", "\\right)", "\\left", "\\right",
             "\\big(", "\\alpha", "\\cdot", "\\sum", "\\ln", "\\begin{bmatrix}", "\\end{bmatrix}", "\\begin{",
             "\\end{", "verbatim}", "\\input", "\\input{/etc/hostname}", "\\csname", "\\endcsname", "\\catcode",
             "\\def", "\\let", "\\include", "\\openout", "\\write", "\\read", "\\immediate", "\\special",
             "\\href{javascript:alert(1)}", "\\url", "\\endinput", "\\end{document}", "\\@", "\\\n", "\\^",
             "%", "#", "~", "$", "\"", "`", "@", "\x00", "\n", "\t", "\x1b", "é", "中", "\\{", "\\}", "\\|", "\\,",
             "\\displaystyle", "\\operatorname{", "\\mathbb{R}", "\\partial", "\\top", "x^{(1)}", "\\lVert"]
formulas = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=2), max_size=14).map("".join)

# The commands the rebuilt LaTeX may hold: the allow-list and what its Unicode becomes.
WRITTEN_COMMANDS = COMMANDS | {m for value in UNICODE_MATH.values() for m in re.findall(r"\\([A-Za-z]+|.)", value)} \
    | {"tfrac"}
_TEX_TOKEN = re.compile(r"\\([A-Za-z]+|.)|(.)", re.S)


def _written(latex: str) -> list[tuple[str | None, str | None]]:
    return [m.groups() for m in _TEX_TOKEN.finditer(latex)]


# ----- the inline-math rebuilder: a property -----------------------------------------------
@settings(max_examples=1000, deadline=None)
@given(formula=formulas, separator=st.sampled_from([".", ","]))
def test_what_the_allow_list_accepts_is_rebuilt_from_its_grammar_only(formula, separator):
    try:
        latex = to_latex(formula, separator)
    except InlineMathError:
        return
    assert "^^" not in latex
    depth = 0
    for command, char in _written(latex):
        assert command is None or command in WRITTEN_COMMANDS, (formula, latex, command)
        assert char is None or (char.isprintable() and char not in "%#~$\\"), (formula, latex, char)
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0, (formula, latex)
    assert depth == 0, (formula, latex)
    assert to_plain(formula, separator) is not None       # the terminal reads whatever a document can show


def test_each_hostile_formula_is_refused_with_a_reason():
    refused = {"^^5cinput{/etc/hostname}": "^^ is not allowed", "x^^M": "^^ is not allowed",
               "^^^^005c": "^^ is not allowed", r"\input{/etc/passwd}": "unknown command \\input (allowed: ",
               r"\csname input\endcsname": "unknown command \\csname", r"\catcode`\^^M=13": "unknown command \\catcode",
               r"\def\x{1}": "unknown command \\def", r"\href{javascript:alert(1)}{x}": "unknown command \\href",
               r"\end{document}": "\\end without \\begin", r"\begin{verbatim}": "unknown environment 'verbatim'",
               "a % comment": "'%' is not allowed", "#1": "'#' is not allowed", "a~b": "'~' is not allowed",
               "é": "'é' is not allowed in a formula (write words as \\text{…})",
               "\x1b[2J": "U+001B is not allowed", r"\text{a_b}": "'_' cannot be in \\text{…}",
               r"\text{\input{x}}": "'\\\\' cannot be in \\text{…}", r"\text{%}": "'%' cannot be in \\text{…}",
               "{x": "unbalanced braces", "x}": "unbalanced braces", r"\frac{1}": "\\frac needs an argument",
               "x^": "a superscript needs an argument", "x^2^3": "double superscript", "x'^2'": "double superscript",
               "x_1_2": "double subscript", r"\left( x": "\\left without \\right", r"x \right)": "\\right without \\left",
               "a & b": "& only between the cells of a matrix", r"a \\ b": "\\\\ only between the cells",
               r"\begin{bmatrix} 1 \end{pmatrix}": "ended by another \\end",
               "{" * 30 + "}" * 30: "nested deeper than", r"\begin{bmatrix}" + "1 & " * 100 + r"1\end{bmatrix}":
               "more than 100 matrix columns"}
    for formula, reason in refused.items():
        with pytest.raises(InlineMathError) as info:
            to_latex(formula)
        assert str(info.value).startswith("inline math: ") and reason in str(info.value), (formula, str(info.value))


def test_text_in_a_formula_is_written_as_text():
    assert to_latex(r"\text{ako je a<<b, ,,c'' --}", text=escape) == r"\text{ako je a<{}<b, ,{},c'{}' -{}-}"
    assert to_latex(r"\text{čađ [x]}", text=escape) == r"\text{čađ {[}x{]}}"
    assert to_latex(r"\mathbf W^\top x \sqrt[3]{2}") == r"\mathbf{W}^{\top} x \sqrt[{3}]{2}"
    assert to_latex(r"\begin{bmatrix} 1 \\ [2] \end{bmatrix}") == r"\begin{bmatrix} 1 \\{} [2] \end{bmatrix}"
    assert to_latex(r" x\ ") == r"x\ "            # a control space at the end is not cut to a backslash


# ----- TeX itself -------------------------------------------------------------------------------
def _document(body: str, lang: str = "en") -> str:
    """A document with the templates' own preamble."""
    template = template_environment(latex=True).from_string(
        "\\documentclass{article}\n<% include \"preamble.tex.j2\" %>\n\\begin{document}\n"
        "\\raggedright\\hyphenpenalty=10000\\exhyphenpenalty=10000\n<< body >>\n\\end{document}\n")
    return template.render(lang=lang, body=body)


def _pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-raw", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def _accepted_formulas(count: int) -> list[str]:
    rng = random.Random(20)
    found = [r"x'^2", r"\frac12", r"\sqrt[\left[ 3 \right]]{x}", r"\left\{ x \right.", r"\big< x \bigr|",
             r"\begin{bmatrix} 1 & 0 \\ [1] & -1 \end{bmatrix}", r"\text{a << b -- c ``d''}", r"x^\text{in}",
             r"\mathbf{\hat{W}}_{\ln}", r"\operatorname{softmax}(z)_i", "".join(UNICODE_MATH) + "·×±½",
             "x⁽¹⁾ᵀ₁₂ y′″", r"\begin{bmatrix}" + "1 & " * 99 + r"1\end{bmatrix}", r"\displaystyle\sum_{k}",
             r"\begin{pmatrix} \begin{vmatrix} a \end{vmatrix} \end{pmatrix}^2"]
    while len(found) < count:
        formula = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 14)))
        try:
            to_latex(formula)
        except InlineMathError:
            continue
        found.append(formula)
    return found


def test_every_accepted_formula_compiles(tmp_path):
    need(*TEX_TOOLS)
    builder = LatexBuilder("hr")
    body = "\n".join(f"\\par {i}: {builder.formula(f)}" for i, f in enumerate(_accepted_formulas(400)))
    compile_pdf(_document(body, "hr"), {}, tmp_path / "formulas.pdf", full=False)


HOSTILE_TEXT = ["\\input{/etc/passwd}", "^^5cinput{/etc/hostname}", "}\\immediate\\write18{id}{", "%comment #1 ~ &",
                "\\end{document}", "\\end{verbatim}", "\\catcode`\\^^M=13", "$x$ _a ^b", "[opt] \\item[x] \\\\[2cm]",
                "a--b---c ''x'' <<z>> ,,w !`?`", "\\csname input\\endcsname", "{1:MULTICHOICE:=a~b}",
                "<script>alert(1)</script>", "čćžšđ ČĆŽŠ éüöß", "σ ≈ ⊙ ∂ · × α β", "\"quoted\" `tick`",
                "\\def\\x{y}\\x \\let\\a=\\b"]


def _hostile_strings(count: int) -> list[str]:
    """The hostile texts and random strings over their characters (no whitespace runs: TeX folds them)."""
    rng = random.Random(7)
    alphabet = sorted(set("".join(HOSTILE_TEXT)) - set(" \n"))
    drawn = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) for _ in range(count)]
    return HOSTILE_TEXT + drawn


def _as_extracted(text: str) -> str:
    """pdftotext's reading normalized: ligature glyphs split, typographic apostrophes straight, spaces one."""
    text = unicodedata.normalize("NFKC", text).replace("’", "'").replace("Ð", "Đ")
    return " ".join(text.split())


def test_escaped_text_typesets_as_itself(tmp_path):
    need(*TEX_TOOLS)
    strings = _hostile_strings(80)
    body = "\n".join(f"\\par BEGIN{i}:{escape(s)}:END" for i, s in enumerate(strings))
    compile_pdf(_document(body, "hr"), {}, tmp_path / "text.pdf", full=False)
    found = dict(re.findall(r"BEGIN(\d+):(.*?):END", _pdf_text(tmp_path / "text.pdf"), re.S))
    for i, s in enumerate(strings):
        assert _as_extracted(found.get(str(i), "<missing>")) == _as_extracted(s), s


def test_listings_and_cells_cannot_end_their_environment(tmp_path):
    """A listing holding \\end{Verbatim}, \\end{frame} or \\end{document} goes on past them; hostile table
    cells stay in their cell; in the article and in the slides (a fragile frame)."""
    need(*TEX_TOOLS)
    code = "\n".join(["x = 1  # \\end{Verbatim}", "\\end{verbatim}", "\\end{lstlisting}", "\\end{frame}",
                      "\\end{document}", "^^5c %# $ & ~ _ { } [", "print('AFTER-THE-ENDS')"])
    solution = Solution(problem_id="t_listing", title={"en": "Listing \\end{frame}"}, source="\\end{document}")
    section = solution.section("section.forward")
    section.add(Table(header=["\\end{tabular} &", "x \\\\ y"], rows=[["a & b", "}{"], ["[x]", "%"]],
                      caption=Phrase("forward.softmax")))
    section.add(Code("python", code))
    for kind in ("article", "beamer"):
        target = tmp_path / f"{kind}.pdf"
        compile_pdf(render_latex([solution], "en", kind), {}, target, full=False)
        text = _as_extracted(_pdf_text(target))
        for line in code.splitlines() + ["\\end{tabular} &", "a & b", "}{", "[x]"]:
            assert _as_extracted(line) in text, (kind, line)


def test_tex_cannot_read_or_write_outside_its_build_directory(tmp_path, monkeypatch):
    """TeX written to attack: reads of a secret by absolute and relative path and by pdfTeX's file
    primitives typeset nothing of it; writes outside (absolute, ../, a dot file) stop the compile and
    leave no file; shell escape runs nothing, even with a latexmkrc in $HOME that turns it on."""
    need(*TEX_TOOLS)
    secret = tmp_path / "secret.tex"
    secret.write_text("SECRET-CONTENTS-7f3a\n")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".latexmkrc").write_text("$pdflatex = 'pdflatex -shell-escape %O %S';\n$pdf_mode = 1;\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TEXMFOUTPUT", str(tmp_path))
    for name, value in (("openin_any", "a"), ("openout_any", "a"), ("shell_escape", "t")):   # the user's own
        monkeypatch.setenv(name, value)
    up = "../" * 12 + str(secret).lstrip("/")
    reads = (f"\\newread\\r \\openin\\r={secret} \\ifeof\\r\\else\\read\\r to\\x [\\x]\\fi "
             f"\\newread\\s \\openin\\s={up} \\ifeof\\s\\else\\read\\s to\\y [\\y]\\fi "
             f"[\\pdffiledump length 40 {{{secret}}}] [\\pdfmdfivesum file {{{secret}}}] "
             f"\\IfFileExists{{{secret}}}{{\\input{{{secret}}}}}{{}} "
             f"\\immediate\\write18{{touch {tmp_path}/shell-ran}} READ-DONE")
    for full in (False, True):
        target = tmp_path / f"reads{int(full)}.pdf"
        compile_pdf(_document(reads), {}, target, full=full, log_to=target.with_suffix(".log"))
        text = _pdf_text(target)
        assert "READ-DONE" in text and "SECRET" not in text and b"SECRET".hex().upper() not in text.upper()
        assert hashlib.md5(secret.read_bytes()).hexdigest() not in text.lower()
        assert "write18 enabled" not in target.with_suffix(".log").read_text()
    for name in (str(tmp_path / "written-abs.txt"), "../written-up.txt", ".written-dot"):
        write = f"\\immediate\\openout5={name} \\immediate\\write5{{pwned}}\\immediate\\closeout5 WRITE-DONE"
        with pytest.raises(CompileError, match="can't write on file"):
            compile_pdf(_document(write), {}, tmp_path / "write.pdf", full=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        sorted(["secret.tex", "home", "reads0.pdf", "reads0.log", "reads1.pdf", "reads1.log", "write.log"])


# ----- the CLI on hostile specs -----------------------------------------------------------------
def _run(args: list[str], cwd: Path, monkeypatch):
    monkeypatch.chdir(cwd)
    return CliRunner().invoke(app, args)


@pytest.mark.parametrize("name, where, message", [
    pytest.param("tex_caret_input_file_read.yaml", "3:7",
                 "inline math: ^^ is not allowed (TeX reads ^^ and what follows as another character)", id="caret"),
    pytest.param("unlocated_math_refusal.yaml", "6:7",
                 f"inline math: unknown command \\input (allowed: {allowed_commands()})", id="input"),
])
@pytest.mark.parametrize("lang", ["hr", "en"])
def test_bad_inline_math_is_refused_where_it_is_written_before_anything_is_made(tmp_path, monkeypatch, name,
                                                                                  where, message, lang):
    spec = HOSTILE / name
    result = _run(["solve", str(spec), "--pdf", "--lang", lang, "-o", str(tmp_path / "out")], tmp_path, monkeypatch)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"{spec}:{where}: {message}"]
    assert not list(tmp_path.rglob("*"))


def test_bad_inline_math_in_notes_and_titles_is_located(tmp_path):
    spec = (Path(__file__).parent.parent / "problems" / "003_l2.yaml").read_text(encoding="utf-8")
    spec = spec.replace('en: "L2 regularization"', 'en: "L2 $x^^5c$"')
    spec = spec.replace("      before the ordinary step (weight decay).", "      $\\openout$ step.")
    lines = spec.splitlines()
    title = next(i for i, line in enumerate(lines, 1) if "x^^5c" in line)
    note = next(i for i, line in enumerate(lines, 1) if line.startswith("    en: >") and i > title + 20)
    with pytest.raises(SpecError) as info:
        solve_document(load_text(spec, "l2.yaml"), answers={})
    found = [str(p) for p in info.value.problems]
    assert found == [f"l2.yaml:{title}:7: inline math: ^^ is not allowed (TeX reads ^^ and what follows as another "
                     f"character)",
                     f"l2.yaml:{note}:9: inline math: unknown command \\openout (allowed: {allowed_commands()})"]


HOSTILE_SPEC = {
    "id": "t1_hostile",
    "source": "src \\input{SECRET} }{ ^^5cinput{SECRET} %x #1 ~ & $ _ [x] \\\\[2cm] \\end{document}",
    "title": {"hr": "T \\input{SECRET} ^^5cinput{SECRET}", "en": "T \\write18{touch PWNED} \\input{SECRET} \\item[x]"},
    "document": {"course": "[C] \\input{SECRET}", "author": "[2cm] A }\\immediate\\write18{touch PWNED}{",
                 "date": "D \\\\[2cm] \\immediate\\openout5=PWNED"},
    "statement": {lang: "Hello \\input{SECRET} and $\\mathbf{W}_1 = \\text{if a < b, ,,c''} \\frac{1}{2}$ "
                        "\\end{document} \\write18{touch PWNED} %c \\catcode`\\^^M ^^5cinput{SECRET}"
                  for lang in ("hr", "en")},
    "model": [{"linear": {"name": "fc%1#{}\\input{SECRET}", "W": [[1, 0], [1, -1]], "b": [0, 1]}}, "relu"],
    "loss": "mse", "data": {"x": [1, 2], "y": [0, 1]},
    "tasks": ["forward", {"gradient": {"wrt": ["fc%1#{}\\input{SECRET}.W"]}}],
}


@pytest.mark.parametrize("fmt", ["tex", "beamer"])
def test_pdf_of_hostile_text_holds_it_as_text_and_reads_and_writes_nothing(tmp_path, monkeypatch, fmt):
    """Payloads in every text field (math kept legal): the PDF shows them as written, holds nothing of
    the file they name, and the run writes nothing but the PDF."""
    need(*TEX_TOOLS)
    secret = tmp_path / "secret.tex"
    secret.write_text("SECRET-CONTENTS-7f3a\n")
    pwned = tmp_path / "PWNED"
    text = yaml.safe_dump(HOSTILE_SPEC, allow_unicode=True).replace("SECRET", str(secret)).replace("PWNED", str(pwned))
    spec = tmp_path / "hostile.yaml"
    spec.write_text(text)
    result = _run(["solve", str(spec), "--pdf", "-f", fmt, "--lang", "en", "--key", "--torch", "-o", "out"],
                  tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    pdfs = list((tmp_path / "out").glob("*.pdf"))
    assert len(pdfs) == 1
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == \
        sorted(["hostile.yaml", "secret.tex", "out", pdfs[0].relative_to(tmp_path).as_posix()])
    shown = _as_extracted(_pdf_text(pdfs[0]))
    assert "SECRET-CONTENTS" not in shown
    for payload in ("\\input{/", "\\end{document}", "^^5cinput", "\\write18{touch /", "fc%1#{}", "[2cm] A }"):
        assert payload in shown, payload


def test_figure_file_names_are_safe_words():
    assets = Assets(prefix="my exam {1}%$#~_ č-")
    assert assets.add("pdf", b"") == "my-exam--1-----_---fig1.pdf"


def test_names_a_spec_gives_results_are_written_in_formulas_as_their_characters(tmp_path, monkeypatch):
    """A result's `name:` becomes the symbol of an equation: TeX reads none of it as a command."""
    need(*TEX_TOOLS)
    secret = tmp_path / "secret.tex"
    secret.write_text("SECRET-CONTENTS-7f3a\n")
    name = f"\\input{{{secret}}}^^5c_x_y%#&$~{{}}"
    spec = tmp_path / "names.yaml"
    spec.write_text(yaml.safe_dump({"id": "names", "kind": "symbolic", "title": {"en": "names"}, "symbols": ["x"],
                                    "tasks": [{"evaluate": {"of": ["x**2"], "at": {"x": 2}, "names": [name]}},
                                              {"simplify": {"of": "x + x", "name": name + "2"}}]}))
    for fmt in ("tex", "beamer"):
        result = _run(["solve", str(spec), "--pdf", "-f", fmt, "--lang", "en", "-o", f"out-{fmt}"], tmp_path,
                      monkeypatch)
        assert result.exit_code == 0, result.output
        shown = _pdf_text(next((tmp_path / f"out-{fmt}").glob("*.pdf")))
        assert "SECRET" not in shown and "input{/" in shown.replace(" ", "")
