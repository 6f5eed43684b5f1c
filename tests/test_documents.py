"""Documents: every problem in every format and language; LaTeX compiled; HTML laid out in Chromium.

Snapshots of the Markdown and LaTeX of the 2022 tasks 1 and 3 notice any change of those documents;
they are the engine's own output, so they detect change and verify nothing (tests/test_snapshots.py says
how to rewrite them: with a reason).

Tests that need TeX Live or Chromium skip when those are not installed, unless
EXAMSOLVER_REQUIRE_TOOLS=1 (set by .ci/run, which installs them): then they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from xml.etree import ElementTree
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from examsolver.cli import app
from examsolver.engine.scalar import Exact, ln_prime
from examsolver.pipeline import solve_file
from examsolver.mathnodes import Sym, Value, call
from examsolver.render import output as out
from examsolver.render.document import Assets, chain_lines
from examsolver.render.latex import escape
from examsolver.render.options import Options
from examsolver.solution import Code, Figure, Phrase, Solution, Step, Table

from conftest import PROBLEMS, ROOT

PROBLEM_FILES = sorted(PROBLEMS.glob("*.yaml"))
IDS = [p.stem for p in PROBLEM_FILES]
LANGS = ("hr", "en")
ARTIFACTS = ROOT / "test-artifacts"
REQUIRE = os.environ.get("EXAMSOLVER_REQUIRE_TOOLS") == "1"
_SOLVED: dict = {}


def solved(path: Path):
    if path not in _SOLVED:
        _SOLVED[path] = solve_file(path)
    return _SOLVED[path]


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        message = f"{', '.join(missing)} not installed (apt-get install latexmk texlive-… chromium; see .ci/run)"
        if REQUIRE:
            pytest.fail(message + " but EXAMSOLVER_REQUIRE_TOOLS=1")
        pytest.skip(message)


# ----- a solution with every kind of block, written here so every path is exercised ----------------
def showcase() -> Solution:
    """Figure, table, code, Unicode in spec text, a tensor too big to print, text that looks like TeX."""
    big = np.array([[Exact(Fraction(i * 20 + j, 11)) for j in range(20)] for i in range(20)], dtype=object)
    ln2 = ln_prime(2)
    solution = Solution(
        problem_id="demo_t7",
        title={"hr": "Prikaz: σ ≈ ⊙ ⋆ ∂ \\input{x} $5 % #1 _a ^b ~c <script>", "en": "Showcase: σ ≈ ⊙ ⋆ ∂ ₁ ᵀ"},
        source="Ispit „DU1”, zadatak 7 — 100 % & više",
        statement={"hr": "Zadano je x₁ = [1, −2]ᵀ, η = 0,5.\n\nDrugi odlomak: ∂L/∂θ ≈ 0,1.",
                   "en": "Given x₁ = [1, −2]ᵀ, η = 0.5.\n\nSecond paragraph: ∂L/∂θ ≈ 0.1."})
    solution.conventions.append(Phrase("convention.sgd", {"lr": Exact(Fraction(1, 2))}))
    section = solution.section("section.forward")
    section.add(Step(lhs=Sym("A", bold=True), forms=[call("relu", Sym("Z", bold=True))],
                     bindings={Sym("Z", bold=True): Value(big)}, result=big, text=Phrase("forward.relu")))
    section.add(Step(lhs=Sym("s"), result=ln2 * Fraction(3, 2)))
    section.add(Table(header=["k", Phrase("label.computed"), "σ ≈ ⊙ ⋆"],
                      rows=[["1", Exact(Fraction(1, 3)), "tačno"], ["2", ln2, "∂"]]))
    section.add(Figure("curves", {"series": [{"x": [0, 1, 2, 3], "y": [0, 1, 4, 9],
                                              "label": {"hr": "gubitak", "en": "loss"}}],
                                  "xlabel": {"hr": "korak", "en": "step"}, "ylabel": "L"},
                       caption=Phrase("forward.softmax")))
    section.add(Code("python", "def f(x):\n    return {\"a\": x ** 2}  # ∂ \\ ~ $ % & č\n"))
    solution.number_equations()
    return solution


# ----- every problem, every format, both languages ---------------------------------------------------
@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("fmt", sorted(out.FORMATS))
@pytest.mark.parametrize("path", PROBLEM_FILES, ids=IDS)
def test_every_problem_renders(path, fmt, lang):
    solution = solved(path)
    text = out.render_document([solution], fmt, lang)
    assert text.strip()
    if fmt in ("tex", "beamer"):
        assert text.count("\\begin{document}") == 1 and text.rstrip().endswith("\\end{document}")
        assert "[U+" not in text, "a character pdfLaTeX cannot typeset"
        if lang == "hr":
            assert "\\usepackage[croatian,shorthands=off]{babel}" in text
    if fmt == "html":
        assert text.count("<math") >= sum(1 for s in solution.sections for b in s.blocks if isinstance(b, Step))
        assert "\\frac" not in text and "\\begin" not in text, "LaTeX left unconverted"
        assert not re.search(r"""(src|href)=["'](?!#)""", text), "the page refers to something outside itself"
        for math in re.findall(r"<math\b.*?</math>", text, re.S):     # well-formed MathML, nothing unreadable
            ElementTree.fromstring(math)
        assert "<merror" not in text
    if fmt == "json":
        assert json.loads(text)["id"] == solution.problem_id


@pytest.mark.parametrize("fmt", ["md", "tex", "beamer", "html"])
def test_croatian_uses_the_decimal_comma_and_it_is_configurable(fmt):
    from dataclasses import replace

    # 2022_z3 has ln 2 ≈ 0.6931 beside its exact results (exact forms themselves never carry decimals)
    solution = replace(solved(PROBLEMS / "2022_z3.yaml"), checks=[])
    prose = lambda text: text.split("\\begin{Verbatim}")[0]      # the closing PyTorch code is Python
    hr = prose(out.render_document([solution], fmt, "hr"))
    en = prose(out.render_document([solution], fmt, "en"))
    hr_point = prose(out.render_document([solution], fmt, "hr", decimal="point"))
    comma, point = ("<mn>0,6931</mn>", "<mn>0.6931</mn>") if fmt == "html" else ("0{,}6931", "0.6931")
    assert comma in hr and point not in hr
    assert point in en and comma not in en
    assert point in hr_point and comma not in hr_point


def test_vector_entries_are_separated_by_semicolons_where_the_decimal_mark_is_a_comma():
    """Computed vectors and written-out ones (an intended state `[4500, 5000, > 0]ᵀ`) alike."""
    from examsolver.engine.scalar import Exact
    from examsolver.mathnodes import Const, Text
    from examsolver.render.math import LatexPrinter, PlainPrinter

    written = call("vector", Const(Exact(1) / 2), Text({"hr": "> 0", "en": "> 0"}))
    assert PlainPrinter(decimal_separator=",", lang="hr").print(written) == "[1/2; > 0]ᵀ"
    assert PlainPrinter(decimal_separator=".", lang="en").print(written) == "[1/2, > 0]ᵀ"
    assert LatexPrinter(decimal_separator=",", lang="hr").print(written) == r"\left[\frac{1}{2}; \text{> 0}\right]^T"
    computed = Value(np.array([Exact(1) / 2, Exact(1)], dtype=object), "colT")
    assert PlainPrinter(decimal_separator=",", lang="hr").print(computed) == "[1/2; 1]ᵀ"


def test_big_tensors_are_elided_in_documents_but_not_in_json():
    solution = showcase()
    tex = out.render_document([solution], "tex", "en")
    html = out.render_document([solution], "html", "en")
    assert "\\vdots" in tex and "\\cdots" in tex and "\\frac{399}{11}" in tex and "\\frac{200}{11}" not in tex
    assert "&#x022EE;" in html or "⋮" in html
    # JSON keeps every value (the showcase has no results, so take a real result through the same path)
    from examsolver.render.jsonout import result_entry

    entry = result_entry(solution.sections[0].blocks[0].result)
    assert len(entry["value"]) == 20 and all(len(row) == 20 for row in entry["value"])


def test_long_chains_break_at_relations_and_short_ones_do_not():
    assert chain_lines(["a", "b", "c"], None, 70) == ["a = b = c"]
    long = ["x" * 30, "y" * 30, "z" * 30, "w" * 30]
    lines = chain_lines(long, "0{,}5", 70)
    assert len(lines) >= 3 and lines[0].startswith("x" * 30 + " &= ")
    assert all(line.startswith("&") for line in lines[1:]) and lines[-1].endswith(" \\approx 0{,}5")


def test_spec_text_cannot_inject_latex_or_html():
    solution = showcase()
    tex = out.render_document([solution], "tex", "hr")
    assert "\\input{x}" not in tex and "\\textbackslash{}input\\{x\\}" in tex
    assert "\\$5 \\% \\#1 \\_a" in tex
    html = out.render_document([solution], "html", "hr")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Content-Security-Policy" in html


def test_unicode_in_text_becomes_math_in_latex():
    assert escape("σ ≈ ⊙ ⋆ ∂ x₁ ᵀ −") == ("\\ensuremath{\\sigma} \\ensuremath{\\approx} \\ensuremath{\\odot} "
                                          "\\ensuremath{\\star} \\ensuremath{\\partial} x\\ensuremath{_{1}} "
                                          "\\ensuremath{^{T}} \\ensuremath{-}")
    assert escape("čćđšž ČĆĐŠŽ „navodnici” – —") == "čćđšž ČĆĐŠŽ „navodnici” – —"
    assert escape("\U0001F600") == "[U+1F600]"        # never an error in pdfLaTeX


def test_figures_are_files_beside_markdown_and_latex_inline_svg_in_html(tmp_path):
    solution = showcase()
    written = out.write_document([solution], "md", "en", tmp_path / "demo.md")
    svg = tmp_path / "demo-fig1.svg"
    assert svg in written and svg.read_bytes().lstrip().startswith(b"<?xml")
    assert "](demo-fig1.svg)" in (tmp_path / "demo.md").read_text()
    assert "Figure omitted" in out.render_document([solution], "md", "en")       # stdout: no file to link
    written = out.write_document([solution], "tex", "en", tmp_path / "demo.tex")
    assert (tmp_path / "demo-fig1.pdf").read_bytes().startswith(b"%PDF")
    assert "\\includegraphics" in (tmp_path / "demo.tex").read_text() and "{demo-fig1.pdf}" in (
        tmp_path / "demo.tex").read_text()
    html = out.render_document([solution], "html", "hr")
    assert "<svg" in html and "<?xml" not in html and "korak" in html


def test_booklet_and_split(tmp_path):
    runner = CliRunner()
    ids = ["2022_z3", "2022_z1"]
    specs = [str(PROBLEMS / f"{i}.yaml") for i in ids]
    result = runner.invoke(app, ["solve", *specs, "--format", "md", "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert "## Contents" in result.stdout
    for i in ids:
        assert f"## {solved(PROBLEMS / f'{i}.yaml').title['en']}" in result.stdout
    result = runner.invoke(app, ["solve", *specs, "--format", "html", "--split", "-o", str(tmp_path / "split")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "split").iterdir()) == sorted(f"{i}.html" for i in ids)
    result = runner.invoke(app, ["solve", *specs, "--format", "tex", "-o", str(tmp_path / "b.tex")])
    assert result.exit_code == 0 and "\\tableofcontents" in (tmp_path / "b.tex").read_text()
    result = runner.invoke(app, ["solve", *specs, "--format", "json"])
    assert [d["id"] for d in json.loads(result.stdout)] == ids
    result = runner.invoke(app, ["solve", specs[0], "--split"])
    assert result.exit_code == 2 and "--split needs -o" in result.output


def test_pdf_without_tex_says_what_to_install(tmp_path, monkeypatch):
    import examsolver.render.pdf as pdf

    monkeypatch.setattr(pdf.shutil, "which", lambda tool: None)
    result = CliRunner().invoke(app, ["solve", str(PROBLEM_FILES[0]), "--pdf", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "apt-get install" in result.output and "texlive-lang-european" in result.output
    assert not list(tmp_path.iterdir())
    result = CliRunner().invoke(app, ["solve", str(PROBLEM_FILES[0]), "--pdf", "--format", "md"])
    assert result.exit_code == 2 and "--pdf needs --format tex or --format beamer" in result.output


def test_failed_compile_leaves_no_pdf_only_a_log(tmp_path):
    need("latexmk", "pdflatex")
    from examsolver.render.pdf import CompileError, compile_pdf

    target = tmp_path / "broken.pdf"
    with pytest.raises(CompileError, match="Undefined control sequence"):
        compile_pdf("\\documentclass{article}\\begin{document}\\nosuchmacro\\end{document}\n", {}, target)
    assert not target.exists() and target.with_suffix(".log").exists()


# ----- snapshots: change detectors, not checks ------------------------------------------------------------
SNAPSHOT_CASES = [(pid, lang, fmt) for pid in ("2022_z1", "2022_z3") for lang in LANGS
                  for fmt in ("md", "tex", "beamer")]


@pytest.mark.parametrize("pid,lang,fmt", SNAPSHOT_CASES, ids=[f"{p}.{l}.{f}" for p, l, f in SNAPSHOT_CASES])
def test_document_unchanged_since_its_snapshot(pid, lang, fmt):
    """The document as the engine last wrote it (tests/snapshots/): any change shows up here as a diff."""
    from test_snapshots import SNAPSHOTS, compare_snapshot

    text = out.render_document([solved(PROBLEMS / f"{pid}.yaml")], fmt, lang)
    path = SNAPSHOTS / f"{pid}.{lang}.{'beamer.tex' if fmt == 'beamer' else fmt}"
    compare_snapshot(path, text, "tests/test_documents.py -k snapshot")


# ----- LaTeX compiled for real -------------------------------------------------------------------------
COMPILES = [(pid, lang, kind) for pid in IDS + ["booklet", "showcase"] for lang in LANGS
            for kind in ("tex", "beamer")]
FULL = ("booklet", "showcase")    # latexmk to a fixed point (contents, navigation); others: one pass finds errors


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Every compile of the module, run two at a time; each test then reads its own outcome."""
    need("latexmk", "pdflatex")
    folder = tmp_path_factory.mktemp("pdf")

    def build(case):
        pid, lang, kind = case
        if pid == "booklet":
            solutions = [solved(p) for p in PROBLEM_FILES]
        elif pid == "showcase":
            solutions = [showcase()]
        else:
            solutions = [solved(PROBLEMS / f"{pid}.yaml")]
        assets = Assets()
        everything = Options(key=True, torch=True)          # the TA's version: all of it
        tex = out.render_document(solutions, kind, lang, assets=assets, options=everything)
        target = folder / f"{pid}.{lang}.{kind}.pdf"
        from examsolver.render.pdf import compile_pdf

        try:
            return compile_pdf(tex, assets.files, target, full=pid in FULL, log_to=target.with_suffix(".log")), target
        except Exception as err:  # reported by the test of that case
            return err, target

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(zip(COMPILES, pool.map(build, COMPILES)))


@pytest.mark.parametrize("case", COMPILES, ids=[".".join(c) for c in COMPILES])
def test_latex_compiles(compiled, case):
    outcome, target = compiled[case]
    assert not isinstance(outcome, Exception), str(outcome)
    assert target.read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize("case", COMPILES, ids=[".".join(c) for c in COMPILES])
def test_nothing_sticks_out(compiled, case):
    """No overfull box over 5 pt: no formula, table, code or frame runs past the page (issue 13, item 5)."""
    from examsolver.render.pdf import overfull_boxes

    outcome, target = compiled[case]
    if isinstance(outcome, Exception):
        pytest.skip("did not compile (test_latex_compiles reports it)")
    assert overfull_boxes(target.with_suffix(".log").read_text(errors="replace")) == []


def test_pdf_through_the_cli(tmp_path):
    need("latexmk", "pdflatex")
    result = CliRunner().invoke(app, ["solve", str(PROBLEMS / "2022_z3.yaml"), "--format", "beamer", "--pdf",
                                      "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "2022_z3-slides.pdf").read_bytes().startswith(b"%PDF")
    assert [p.name for p in tmp_path.iterdir()] == ["2022_z3-slides.pdf"]    # nothing else left behind


# ----- HTML in headless Chromium ------------------------------------------------------------------------
MEASURE = """<script>
(function () {
  var errors = [];
  window.addEventListener('error', function (e) { errors.push(String(e.message)); });
  var original = console.error;
  console.error = function () { errors.push(Array.prototype.join.call(arguments, ' ')); original.apply(console, arguments); };
  window.addEventListener('load', function () {
    var boxes = Array.prototype.map.call(document.querySelectorAll('math'), function (m) {
      var r = m.getBoundingClientRect();
      return {w: r.width, h: r.height, table: m.querySelector('mtable') !== null, frac: m.querySelector('mfrac') !== null};
    });
    var svgs = Array.prototype.map.call(document.querySelectorAll('figure svg'), function (s) {
      var r = s.getBoundingClientRect(); return {w: r.width, h: r.height};
    });
    var pre = document.createElement('pre');
    pre.id = 'es-measure';
    pre.textContent = JSON.stringify({math: boxes, svg: svgs, errors: errors,
                                      resources: performance.getEntriesByType('resource').length});
    document.body.appendChild(pre);
  });
})();
</script>"""

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(html_path: Path, *flags: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="es-chromium-") as profile:
        return subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *flags,
                               html_path.as_uri()], capture_output=True, text=True, timeout=120)


HTML_CASES = [(name, lang) for name in ("booklet", "showcase", "2022_z1", "2022_z3") for lang in LANGS]


@pytest.mark.parametrize("name,lang", HTML_CASES, ids=[f"{n}.{l}" for n, l in HTML_CASES])
def test_html_math_has_real_layout_in_chromium(tmp_path, name, lang):
    need("chromium")
    solutions = [showcase()] if name == "showcase" else [solved(p) for p in PROBLEM_FILES] if name == "booklet" \
        else [solved(PROBLEMS / f"{name}.yaml")]
    page = out.render_document(solutions, "html", lang)
    ARTIFACTS.mkdir(exist_ok=True)
    shown = ARTIFACTS / f"{name}.{lang}.html"
    shown.write_text(page, encoding="utf-8")
    screenshot = ARTIFACTS / f"{name}.{lang}.png"
    shot = chromium(shown, "--window-size=1200,3000", f"--screenshot={screenshot}", "--hide-scrollbars")
    assert screenshot.exists() and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]

    # the measuring script needs the page's CSP relaxed; everything else is the page as shipped
    probe = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page).replace("</body>", MEASURE + "</body>")
    probe_path = tmp_path / "probe.html"
    probe_path.write_text(probe, encoding="utf-8")
    run = chromium(probe_path, "--virtual-time-budget=5000", "--dump-dom")
    found = re.search(r'<pre id="es-measure">(.*?)</pre>', run.stdout, re.S)
    assert found, f"no measurements in the DOM; chromium said: {run.stderr[-2000:]}"
    import html as html_module

    data = json.loads(html_module.unescape(found.group(1)))
    assert data["errors"] == [] and data["resources"] == 0
    assert len(data["math"]) >= (10 if name == "booklet" else 3)
    flat = [b for b in data["math"] if b["w"] <= 0 or b["h"] <= 0]
    assert not flat, f"{len(flat)} <math> elements without a box"
    plain = [b["h"] for b in data["math"] if not b["table"] and not b["frac"]]
    tables = [b["h"] for b in data["math"] if b["table"]]
    assert tables and max(tables) > 1.8 * min(plain), "matrices are not laid out as tables"
    if name == "showcase":
        assert data["svg"] and all(s["w"] > 100 and s["h"] > 50 for s in data["svg"])
