"""Nothing a spec says reaches an HTML page, a Markdown document, a Moodle quiz or the terminal as
markup or as a control sequence (issue 20).

Hostile strings — fixed payloads, and hypothesis's draws from an alphabet of dangerous characters —
go into every text a spec has: id, source, title, statement prose, a formula's \\text{…}, a code name,
the title page, a layer's name, an answer key's names and texts, a symbolic problem's conventions,
notes and result names.  Each output is read back by a parser of its language and compared with what
the printer makes of the same spec with harmless text: HTML by html.parser (only the elements and
attributes the printer makes) and by Chromium; Markdown by markdown-it (CommonMark with GFM tables: no
HTML, link or image, the same headings, lists, tables and code blocks); Moodle XML by xml.etree, its
question text by Moodle's Cloze grammar (the blanks examsolver made, and no other); the terminal for
control characters.
"""

from __future__ import annotations

import functools
import io
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from examsolver.cli import app
from examsolver.errors import ExamsolverError
from examsolver.pipeline import solve_document, solve_file
from examsolver.render import output as out
from examsolver.render.options import Options
from examsolver.spec.load import load_text

REQUIRE = os.environ.get("EXAMSOLVER_REQUIRE_TOOLS") == "1"

PAYLOADS = [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", '"><svg onload=alert(1)>',
    "<a href='javascript:alert(1)'>x</a>", "<!-- x", "&lt;b&gt; &#60;i&#62; &amp;", "]]> <![CDATA[x]]>",
    "[x](javascript:alert(1)) ![i](http://e.invalid/x.png) <http://e.invalid> [r]: http://e.invalid",
    "\n# heading\n- item\n1. item\n> quote\n| a | b |\n|---|---|\n:--|--:\n```\ncode\n```\n~~~\n    indented\n---\n===\n",
    "*em* _em_ **strong** ~~del~~ `code` \\* \\",
    "{1:MULTICHOICE:=extra~wrong} {2:SHORTANSWER:%100%*} {#1} {1:NM:=1:0} \\{1:SA:=x\\} ~#=:%",
    "\x1b[2J\x1b[31mRED \x1b]0;TITLE\x07 \x9b31m \b\b\bX \rY \x00 \x0b \x7f \x85",
    "\u202eevil\u202c \u2066x\u2069 \u200f", "[bold red]R[/] :smile: $5 \\$",
]
FORMULA_PAYLOADS = ["<img/src/onerror=alert(3)>", "<a/href=https://e.invalid>click</a>", "<script>", "a&lt;b"]
BENIGN = "q"             # no name of a result, so it plays every part the hostile text plays


def spec(text: str, formula: str = BENIGN, code: str = BENIGN) -> dict:
    """A network problem with text in every channel a spec has."""
    return _common(text, formula, code) | {
        "model": [{"linear": {"name": text, "W": [[1, 0], [1, -1]], "b": [0, 1]}}],
        "loss": "mse", "data": {"x": [1, 2], "y": [0, 1]}, "tasks": ["forward"],
        "answers": {"o": [1, 0], text: 3, "L": text},
    }


def symbolic_spec(text: str, formula: str = BENIGN, code: str = BENIGN) -> dict:
    """A symbolic problem: its conventions, notes and results named by the spec."""
    return _common(text, formula, code) | {
        "kind": "symbolic", "symbols": ["z"], "define": {"f": "tanh(z)"},
        "conventions": [{"en": text, "hr": text}], "notes": [{"en": text, "hr": text}],
        "tasks": [{"derivative": {"of": "f", "wrt": "z", "name": text, "as": "df"}},
                  {"evaluate": {"of": ["df"], "at": {"z": 0}, "names": [text + "(0)"]}}],
        "answers": {text: "1 - tanh(z)**2", text + "(0)": 1, "L": text},
    }


def _common(text: str, formula: str, code: str) -> dict:
    prose = text.replace("$", "\\$")          # a dollar of prose, as a spec writes it
    return {"id": text, "source": text, "title": {"en": text, "hr": text},
            "statement": {"en": f"S {prose} $\\text{{{formula}}}$ `{code}` {prose} end", "hr": prose},
            "document": {"course": text[:300], "author": text[:300], "date": text[:300]}}


KINDS = {"network": spec, "symbolic": symbolic_spec}


def solved(data: dict):
    """The solution, or None when the spec is refused (a located refusal is a right answer too)."""
    try:
        return solve_document(load_text(yaml.safe_dump(data, allow_unicode=True), "hostile.yaml"))
    except ExamsolverError:
        return None


def render(solution, fmt: str, lang: str = "en") -> str:
    return out.render_document([solution], fmt, lang, options=Options(key=True, torch=True))


def terminal(solution, lang: str = "en") -> str:
    from rich.console import Console

    from examsolver.render.terminal import TerminalRenderer

    buffer = io.StringIO()
    console = Console(file=buffer, width=100, color_system=None, highlight=False, markup=False, emoji=False)
    TerminalRenderer(lang, console).render(solution)
    return buffer.getvalue()


# ----- HTML --------------------------------------------------------------------------------
class _Elements(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements: Counter = Counter()
        self.attributes: set = set()
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements[tag] += 1
        self.attributes.update((tag, name, value) for name, value in attrs)

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)


def elements(page: str) -> _Elements:
    parser = _Elements()
    parser.feed(page)
    parser.close()
    return parser


def assert_html_made_by_printer(page: str, benign: str) -> None:
    """Only the elements the printer makes, each with attributes it makes (an id as a sanitized word)."""
    found, allowed = elements(page), elements(benign)
    assert set(found.elements) <= set(allowed.elements), set(found.elements) - set(allowed.elements)
    for tag, name, value in found.attributes - allowed.attributes:
        assert name == "id" and re.fullmatch(r"[A-Za-z0-9_-]+", value or ""), (tag, name, value)


# ----- Markdown ----------------------------------------------------------------------------
STRUCTURE = ("heading_open", "bullet_list_open", "ordered_list_open", "list_item_open", "table_open", "tr_open",
             "th_open", "td_open", "fence", "code_block", "hr", "blockquote_open", "em_open", "strong_open",
             "s_open")
FORBIDDEN_TOKENS = ("html_block", "html_inline", "link_open", "image")


def markdown_tokens(document: str) -> Counter:
    from markdown_it import MarkdownIt          # rich's own dependency

    parser = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    counts: Counter = Counter()
    for token in parser.parse(document):
        counts[token.type] += 1
        for child in token.children or []:
            counts[child.type] += 1
    return counts


def markdown_text(document: str) -> str:
    from markdown_it import MarkdownIt

    page = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(document)
    return "".join(elements(page).text)


def assert_markdown_made_by_printer(document: str, benign: str) -> None:
    found, allowed = markdown_tokens(document), markdown_tokens(benign)
    assert not any(found[t] for t in FORBIDDEN_TOKENS), {t: found[t] for t in FORBIDDEN_TOKENS if found[t]}
    structure = {t: (found[t], allowed[t]) for t in STRUCTURE if found[t] != allowed[t]}
    assert not structure, structure


_UNSHOWN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f]")


def shown(text: str) -> str:
    """Text as a reader sees it: control characters gone, white space one space (NEL, U+0085, is a line
    break to YAML and to str.split, so white space too)."""
    return " ".join(_UNSHOWN.sub("", text).split())


# ----- Moodle: the Cloze grammar of qtype_multianswer, written from its documentation -------------
_TYPES = ("NUMERICAL|NM|MULTICHOICE|MC|MULTICHOICE_V|MCV|MULTICHOICE_H|MCH|SHORTANSWER|SA|MW|SHORTANSWER_C|"
          "SAC|MWC|MULTICHOICE_S|MCS|MULTICHOICE_VS|MCVS|MULTICHOICE_HS|MCHS|MULTIRESPONSE|MR|MULTIRESPONSE_H|"
          "MRH|MULTIRESPONSE_S|MRS|MULTIRESPONSE_HS|MRHS")
_ALTERNATIVE = (r"(?:=|%-?[0-9]+(?:[.,][0-9]*)?%)?"               # weight
                r".+?(?<!\\)(?<!&)(?<!&amp;)(?=[~#}]|$)"           # answer: up to an unescaped ~ # }
                r"(?:#.*?(?<!\\)(?=[~}]|$))?")                     # feedback: up to an unescaped ~ }
_BLANK = re.compile(rf"\{{[0-9]*:(?:{_TYPES}):{_ALTERNATIVE}(?:~{_ALTERNATIVE})*\}}", re.S)
_PLACE = re.compile(r"\{#([0-9]+)\}")


def moodle_blanks(text: str) -> int:
    """How many sub-questions Moodle makes of a question text: each leftmost blank in turn becomes its
    place `{#n}`; the text's places must then be exactly 1…n, once each (a place the text wrote itself
    would show a blank twice, or one that does not exist)."""
    count = 0
    while (blank := _BLANK.search(text)) is not None:
        count += 1
        text = text[:blank.start()] + f"{{#{count}}}" + text[blank.end():]
    assert [int(n) for n in _PLACE.findall(text)] == list(range(1, count + 1)), _PLACE.findall(text)
    return count


def quiz_blanks(quiz: str) -> list[int]:
    root = ElementTree.fromstring(quiz.encode("utf-8"))
    return [moodle_blanks(q.findtext("questiontext/text") or "") for q in root.iter("question")
            if q.get("type") != "category"]


# ----- the terminal -------------------------------------------------------------------------
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def assert_no_control(text: str) -> None:
    assert not _CONTROL.search(text), sorted({f"U+{ord(c):04X}" for c in _CONTROL.findall(text)})


# ----- every output of one spec ----------------------------------------------------------------
@functools.cache
def benign(kind: str, fmt: str) -> str:
    return render(solved(KINDS[kind](BENIGN)), fmt)


def check_every_output(kind: str, text: str, formula: str = BENIGN, code: str = BENIGN) -> str | None:
    """Every output checked; the terminal's text returned (None: the spec was refused, which is right too)."""
    hostile = solved(KINDS[kind](text, formula, code))
    if hostile is None:
        return None
    assert_html_made_by_printer(render(hostile, "html"), benign(kind, "html"))
    document = render(hostile, "md")
    assert_markdown_made_by_printer(document, benign(kind, "md"))
    assert shown(text) in shown(markdown_text(document)), "the source does not read as written"
    assert quiz_blanks(render(hostile, "moodle")) == quiz_blanks(benign(kind, "moodle"))
    shown_on_terminal = terminal(hostile)
    assert_no_control(shown_on_terminal)
    return shown_on_terminal


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_payloads_in_every_channel_stay_text(payload, kind):
    on_terminal = check_every_output(kind, payload, formula=FORMULA_PAYLOADS[len(payload) % len(FORMULA_PAYLOADS)],
                                     code=payload.replace("`", ""))
    if on_terminal is not None and "[bold red]" in payload:
        assert "[bold red]R[/]" in on_terminal and ":smile:" in on_terminal     # rich markup printed as written


def test_the_benign_spec_exercises_every_channel():
    """The comparisons mean something: the harmless spec has the blanks, the answer key table, the
    formula and the code name that the hostile ones are measured against."""
    assert quiz_blanks(benign("network", "moodle")) == [4]   # o and the layer's output, two entries each
    assert quiz_blanks(benign("symbolic", "moodle")) == [1]  # q(0); q is a formula, L no result
    for kind in KINDS:
        page = elements(benign(kind, "html"))
        assert page.elements["mtext"] and page.elements["code"] and page.elements["td"]
        tokens = markdown_tokens(benign(kind, "md"))
        assert tokens["td_open"] and tokens["code_inline"] and tokens["heading_open"]
    assert markdown_tokens(benign("network", "md"))["fence"]      # the PyTorch script


_DANGEROUS = st.sampled_from(list("<>&\"'`\\[]()!#*_|~{}=:%;/-+.1 \n\r\t\x00\x07\x08\x0b\x1b\x7f\x85\x9b"
                                  "\u202a\u202e\u2066\u2069\u200f\u2028"))
_FRAGMENTS = st.sampled_from(["<script>", "<img src=x onerror=f()>", "javascript:", "](", "![", "{1:NM:=1}",
                              "{#1}", "\\}", "&#60;", "&lt;", "]]>", "\x1b[", "\x1b]0;", "\n# ", "\n- ", "\n1. ",
                              "|---|", "```", "[bold]", "\n\n"])
HOSTILE = st.lists(st.one_of(_DANGEROUS, _FRAGMENTS), min_size=1, max_size=12).map("".join)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(text=HOSTILE, kind=st.sampled_from(list(KINDS)))
def test_hostile_text_in_every_channel_stays_text(text, kind):
    assume(check_every_output(kind, text, code=text.replace("`", "")) is not None)


def test_a_booklet_links_only_to_its_own_anchors():
    """A booklet's table of contents is the one place the printers make links: each to an anchor made of
    word characters, whatever the titles and ids."""
    from markdown_it import MarkdownIt

    solutions = [solved(spec(PAYLOADS[3])), solved(spec(PAYLOADS[7]))]
    page = elements(out.render_document(solutions, "html", "en", options=Options(key=True)))
    hrefs = [value for _, name, value in page.attributes if name == "href"]
    assert hrefs and all(re.fullmatch(r"#[A-Za-z0-9_-]+", h) for h in hrefs), hrefs
    document = out.render_document(solutions, "md", "en", options=Options(key=True))
    parser = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    links = [child.attrGet("href") for token in parser.parse(document) for child in token.children or []
             if child.type == "link_open"]
    assert len(links) == 2 and all(re.fullmatch(r"#[\w-]*", h) for h in links), links
    assert not markdown_tokens(document)["html_inline"] and not markdown_tokens(document)["image"]


OUTPUTS = Path(__file__).parent / "hostile" / "outputs"
REPRODUCERS = ["html_mathml_text_markup_injection", "moodle_cloze_injection", "moodle_idnumber_control_char_bad_xml",
               "term_escape_injection"]
ACTIVE = {"img", "script", "a", "iframe", "svg", "object", "embed", "form", "link", "meta", "style", "base"}


@pytest.mark.parametrize("name", REPRODUCERS)
@pytest.mark.parametrize("lang", ["hr", "en"])
def test_the_2026_12_reproducers_write_no_markup(name, lang):
    """The found attacks, each in every language: no active element or event attribute in the page
    beyond the page's own head, no HTML, link or image in the Markdown, one blank per entry of each
    result the quiz asks for, no control character on the terminal."""
    solution = solve_file(OUTPUTS / f"{name}.yaml")
    page = render(solution, "html", lang)
    body = elements(page[page.index("<body>"):])
    assert not ACTIVE & set(body.elements), ACTIVE & set(body.elements)
    assert not [name for _, name, _ in body.attributes if name.startswith("on")]
    tokens = markdown_tokens(render(solution, "md", lang))
    assert not any(tokens[t] for t in FORBIDDEN_TOKENS), tokens
    asked = [c.name for c in solution.checks if c.name in solution.results] if solution.checks else solution.results
    entries = sum(np.size(solution.results[name]) for name in asked)     # the key's results, else every one
    assert quiz_blanks(render(solution, "moodle", lang)) == [entries]
    assert_no_control(terminal(solution, lang))


# ----- Chromium, the CLI's error lines, verify's report ---------------------------------------------
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_chromium_builds_no_element_from_spec_text(tmp_path):
    if shutil.which("chromium") is None:
        message = "chromium not installed (see .ci/run)"
        if REQUIRE:
            pytest.fail(message + " but EXAMSOLVER_REQUIRE_TOOLS=1")
        pytest.skip(message)
    page = tmp_path / "hostile.html"
    page.write_text(render(solved(spec(PAYLOADS[1] + PAYLOADS[3], formula=FORMULA_PAYLOADS[0])), "html"),
                    encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="es-chromium-") as profile:
        run = subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                              page.as_uri()], capture_output=True, text=True, timeout=120)
    dom = run.stdout
    assert "<math" in dom and "onerror=alert" in dom, f"no page in the DOM; chromium said: {run.stderr[-2000:]}"
    assert not re.search(r"<(img|script|iframe|a)\b", dom), re.findall(r"<(?:img|script|iframe|a)\b[^>]*>", dom)
    assert not re.search(r"<[^>]*\son\w+=", dom), re.findall(r"<[^>]*\son\w+=[^>]*>", dom)


def test_error_lines_quoting_a_spec_show_its_control_characters(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec("\x1b[2J") | {"statement": {"en": "S $\x1b[31m\\input$"}}),
                    encoding="utf-8")
    result = CliRunner().invoke(app, ["solve", str(path), "-l", "en", "-f", "md"])
    assert result.exit_code == 2, result.stderr
    assert "\\x1b" in result.stderr or "U+001B" in result.stderr, result.stderr     # shown, never sent
    assert_no_control(result.stderr.replace("\n", ""))


def test_verify_report_shows_control_characters_of_names(tmp_path):
    from rich.console import Console

    from examsolver.render.verify_report import print_reports
    from examsolver.verify import verify_file

    path = tmp_path / "key.yaml"
    path.write_text(yaml.safe_dump(spec("o\x1b]0;T\x07[red]")), encoding="utf-8")
    buffer = io.StringIO()
    print_reports([verify_file(path)], "en", console=Console(file=buffer, width=100, color_system=None))
    assert_no_control(buffer.getvalue().replace("\n", ""))
    assert "\\x1b]0;T\\x07[red]" in buffer.getvalue()
