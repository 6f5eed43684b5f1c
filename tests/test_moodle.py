"""`--format moodle`: Moodle XML whose Cloze blanks hold the engine's values and the catalogue's mistakes.

The blanks are read back with a small parser of the Cloze NUMERICAL grammar written here (not the
exporter's code), and every correct answer and every wrong answer is compared with a fresh solve.
"""

import html
import re
import xml.etree.ElementTree as ET
from decimal import Decimal

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from examsolver.cli import app
from examsolver.diagnose import Resolver
from examsolver.diagnose.catalogue import CATALOGUE
from examsolver.locales import catalog
from examsolver.pipeline import solve_file
from examsolver.render.moodle import MoodleBuilder, blank_entries, cloze_escape
from examsolver.solution import Phrase
from examsolver.verify import as_decimal

from conftest import PROBLEMS

runner = CliRunner()


# ----- a parser of the Cloze NUMERICAL grammar, as Moodle's qtype_multianswer reads it ------------
#   blank    := '{' weight ':' ('NUMERICAL' | 'NM') ':' answer ('~' answer)* '}'
#   answer   := ('=' | '%' percent '%')? number (':' number)? ('#' feedback)?
#   feedback := up to the first '~' or '}' not after a backslash; then HTML entities decoded, \} and \# unescaped
NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
FEEDBACK = r"(?:\\.|[^}~\\])*"
ANSWER = re.compile(rf"(=|%(\d{{1,3}})%)?({NUMBER}):(\d+(?:\.\d+)?)(?:#({FEEDBACK}))?")
BLANK = re.compile(rf"\{{(\d+):(?:NUMERICAL|NM):((?:{ANSWER.pattern})(?:~(?:{ANSWER.pattern}))*)\}}")


def parse_blanks(text: str) -> list[list[dict]]:
    """Every blank of a question text: [answer, …] with weight, value, tolerance, feedback; a `{n:`
    that does not open a valid blank fails."""
    blanks, end = [], 0
    for match in BLANK.finditer(text):
        assert not re.search(r"\{\d+:", text[end:match.start()]), "a malformed blank"
        end = match.end()
        answers = []
        for part in _split_unescaped(match.group(2)):
            m = ANSWER.fullmatch(part)
            assert m, part
            weight = 100 if m.group(1) == "=" else int(m.group(2)) if m.group(2) else 0
            feedback = html.unescape(m.group(5) or "").replace("\\}", "}").replace("\\#", "#")
            answers.append(dict(weight=weight, value=Decimal(m.group(3)), tol=Decimal(m.group(4)), feedback=feedback))
        blanks.append(answers)
    assert not re.search(r"\{\d+:", text[end:]), "a malformed blank"
    return blanks


def _split_unescaped(text: str) -> list[str]:
    parts, current, i = [], "", 0
    while i < len(text):
        if text[i] == "\\":
            current += text[i:i + 2]
            i += 2
            continue
        if text[i] == "~":
            parts.append(current)
            current = ""
        else:
            current += text[i]
        i += 1
    return parts + [current]


def test_the_grammar_parser_can_fail():
    assert parse_blanks("{1:NUMERICAL:=0.5:0.05#ok~%0%1:0.05#a \\} b}")[0][1]["feedback"] == "a } b"
    for bad in ("{1:NUMERICAL:=0.5:0.05#a~b}", "{1:NUMERICAL:=0,5:0.05}", "{1:NUMERICAL:=0.5}", "{1:NUMERICAL:=x:1}"):
        with pytest.raises(AssertionError):
            parse_blanks(bad)


def test_feedback_escaping_survives_moodles_reading():
    feedback = "\\(\\mathbf{p}_{1}\\) &lt; 1 # a~b \\"        # TeX, an entity, the reserved characters
    (blank,) = parse_blanks("{1:NUMERICAL:=1:0.5#" + cloze_escape(feedback) + "}")
    assert blank[0]["feedback"].rstrip() == feedback      # exactly the HTML meant, TeX's backslashes intact


# ----- exporting ------------------------------------------------------------------------------------
def export(tmp_path, specs, *args) -> ET.Element:
    out = tmp_path / "quiz.xml"
    result = runner.invoke(app, ["solve", *map(str, specs), "--format", "moodle", "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    return ET.parse(out).getroot()


def questions(root) -> list[ET.Element]:
    return [q for q in root if q.get("type") != "category"]


def _close(a: Decimal, b: Decimal) -> bool:
    """Equal to the 15 significant digits a blank stores."""
    return abs(a - b) <= Decimal(10) ** (max(abs(b).adjusted(), -300) - 13)


def engine_values(solution) -> list:
    """The blanks' values in order: each answer-key entry's result, entry by entry."""
    return [(name, i, v) for name, _ in blank_entries(solution)
            for i, v in enumerate(np.asarray(solution.results[name], dtype=object).flat)]


@pytest.mark.parametrize("name, lang", [("2022_z3", "en"), ("2022_z1", "hr"), ("2022_z5", "en"),
                                        ("extra_residual_block", "hr")])
def test_every_blank_holds_the_engine_value_and_the_catalogue_mistakes(tmp_path, name, lang):
    spec = PROBLEMS / f"{name}.yaml"
    (q,) = questions(export(tmp_path, [spec], "-l", lang))
    blanks = parse_blanks(q.find("questiontext/text").text)
    solution = solve_file(spec)                                      # solved again, apart from the export
    values = engine_values(solution)
    assert len(blanks) == len(values) > 0
    resolver = Resolver(solution.document, solution)
    words = MoodleBuilder(lang)          # the feedback's words (a phrase may hold a formula); values are ours
    mistakes = {words.text(Phrase("moodle.mistake", {"what": Phrase(f"mistake.{e.name}")})): e for e in CATALOGUE}
    for answers, (result, i, value) in zip(blanks, values):
        correct, wrong = answers[0], answers[1:]
        assert correct["weight"] == 100 and correct["feedback"] == catalog(lang)["moodle.correct"]
        assert _close(correct["value"], as_decimal(value)), (result, i)
        assert correct["tol"] == Decimal("0.00005")        # the solution's 4 decimals (no key rounds these)
        for answer in wrong:
            assert answer["weight"] == 0 and answer["tol"] == correct["tol"]
            assert abs(answer["value"] - as_decimal(value)) > correct["tol"]     # never the correct one
            entry = mistakes[answer["feedback"]]
            expected = np.asarray(resolver.results(entry)[result], dtype=object).flat[i]
            assert _close(answer["value"], as_decimal(expected)), (result, i, entry.name)
        seen = [a["value"] for a in answers]
        assert all(abs(a - b) > correct["tol"] for k, a in enumerate(seen) for b in seen[:k])   # no repeats


def test_z3_blanks_by_hand(tmp_path):
    """2022 task 3 (hand derivation): p = [1/3, 2/3]; ∂L/∂W1[0] = ln 2/9·[6, −1, 3] ≈ [0.46210, −0.07702,
    0.23105].  A true convolution flips the kernels to [−1, 0, 1] and [−1, 1, 1]: averages 1/3 and 1, so
    s = [ln 2/3, 2 ln 2] and p0 = 1/(1 + 2^(5/3)) = 0.239532…; summed pooling triples ∂L/∂W1 (2 ln 2)."""
    (q,) = questions(export(tmp_path, [PROBLEMS / "2022_z3.yaml"], "-l", "en"))
    blanks = parse_blanks(q.find("questiontext/text").text)
    p0, w00 = blanks[0], blanks[2 + 2 + 6]
    assert abs(float(p0[0]["value"]) - 1 / 3) < 1e-14 and p0[0]["tol"] == Decimal("0.00005")
    assert any(abs(float(a["value"]) - 1 / (1 + 2 ** (5 / 3))) < 1e-14 and "true convolution" in a["feedback"]
               for a in p0[1:])
    assert abs(float(w00[0]["value"]) - 2 * np.log(2) / 3) < 1e-14
    assert any(abs(float(a["value"]) - 2 * np.log(2)) < 1e-14 and "summed" in a["feedback"] for a in w00[1:])
    assert any(abs(float(a["value"]) + 2 * np.log(2) / 3) < 1e-14 and "opposite sign" in a["feedback"]
               for a in w00[1:])
    # h1 = [[2, −1, 1], [1, 1, 1]] has no zero: ReLU′(0) = 1 changes nothing, so it is not offered
    assert not any("derivative at 0" in a["feedback"] for b in blanks for a in b)


def test_partial_credit_and_languages(tmp_path):
    root = export(tmp_path, [PROBLEMS / "2022_z3.yaml"], "-l", "hr", "--partial", "25")
    (q,) = questions(root)
    text, feedback = q.find("questiontext/text").text, q.find("generalfeedback/text").text
    blanks = parse_blanks(text)
    assert {a["weight"] for b in blanks for a in b[1:]} == {25}
    assert "Netočno: taj se rezultat dobiva uz: prava konvolucija" in text and "Točno." in text
    assert "Zadatak 3" in q.find("name/text").text and "Unaprijedni prolaz" in feedback
    assert "0{,}3333" in feedback and "\\[" in feedback and "\\tag{1}" in feedback     # decimal comma in hr TeX
    assert "\\(\\mathbf{p}\\)" in text
    en = questions(export(tmp_path, [PROBLEMS / "2022_z3.yaml"], "-l", "en"))[0]
    assert "Forward pass" in en.find("generalfeedback/text").text and "0.3333" in en.find("generalfeedback/text").text


def test_a_rounded_key_sets_the_blank_precision(tmp_path):
    spec = yaml.safe_load((PROBLEMS / "2022_z3.yaml").read_text(encoding="utf-8"))
    spec["answers"] = {"p": ["0.33", "2/3"], "s": [0.7, "ln(4)"],      # 0.7 is ln 2 rounded to one decimal
                       "h1": {"value": [[2, -1, 1], [1, 1, 1]], "tol": "0.5"}}     # its own tolerance
    path = tmp_path / "z3.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    (q,) = questions(export(tmp_path, [path]))
    tols = [b[0]["tol"] for b in parse_blanks(q.find("questiontext/text").text)]
    assert tols == [Decimal("0.5")] * 6 + [Decimal("0.005"), Decimal("0.00005"), Decimal("0.05"), Decimal("0.00005")]


def test_variants_share_a_category_and_symbolic_problems_are_descriptions(tmp_path):
    spec = yaml.safe_load((PROBLEMS / "2022_z3.yaml").read_text(encoding="utf-8"))
    paths = []
    for k in (1, 2):
        spec["id"] = f"2022_z3_v0{k}"
        spec["data"]["x"][0] = 4 + k
        paths.append(tmp_path / f"v{k}.yaml")
        paths[-1].write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    root = export(tmp_path, [*paths, PROBLEMS / "2022_z4.yaml", PROBLEMS / "2022_z3.yaml"])
    kinds = [q.get("type") for q in root]
    assert kinds == ["category", "cloze", "cloze", "cloze", "category", "description"]
    assert [q.find("idnumber").text for q in questions(root)] == ["2022_z3_v01", "2022_z3_v02", "2022_z3", "2022_z4"]
    assert "2022_z3" in root[0].find("category/text").text
    # two different tasks of one lab share a source: not variants, a category each
    shared = export(tmp_path, [PROBLEMS / "002_anchor.yaml", PROBLEMS / "002_bn_conv_relu.yaml"])
    assert [q.get("type") for q in shared].count("category") == 2


def test_stdout_without_o_and_whole_or_nothing(tmp_path, monkeypatch):
    result = runner.invoke(app, ["solve", str(PROBLEMS / "2022_z3.yaml"), "--format", "moodle"])
    assert result.exit_code == 0 and ET.fromstring(result.stdout.encode()).tag == "quiz"
    out = tmp_path / "quiz.xml"
    out.write_text("old", encoding="utf-8")
    import examsolver.render.moodle as moodle

    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(moodle, "layout", broken)
    result = runner.invoke(app, ["solve", str(PROBLEMS / "2022_z3.yaml"), "--format", "moodle", "-o", str(out)])
    assert result.exit_code != 0
    assert out.read_text(encoding="utf-8") == "old" and [p.name for p in tmp_path.iterdir()] == ["quiz.xml"]
