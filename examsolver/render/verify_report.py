"""Answer-key reports: a rich table per file and a summary, JSON, and JUnit XML for CI.

Renderers only: every value and verdict comes from verify.FileReport.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from examsolver.render.common import DECIMAL_SEPARATOR, translate
from examsolver.solution import Phrase
from examsolver.solution import literal_text
from examsolver.verify import FileReport, exit_code

STATUS_STYLE = {"match": "green", "mismatch": "bold red", "missing": "yellow", "invalid": "yellow"}
FILE_STYLE = {"pass": "green", "fail": "bold red", "error": "bold yellow", "nokey": "yellow"}


class Words:
    """Phrases and values in one language (plain Unicode, the language's decimal separator)."""

    def __init__(self, lang: str, latex: bool = False):
        from examsolver.render.math import LatexPrinter, PlainPrinter

        self.lang = lang
        printer = LatexPrinter if latex else PlainPrinter
        self.math = printer(decimal_separator=DECIMAL_SEPARATOR[lang] if not latex else ".", lang=lang)

    def __call__(self, key_or_phrase, **args) -> str:
        phrase = key_or_phrase if isinstance(key_or_phrase, Phrase) else Phrase(key_or_phrase, args)
        return translate(phrase, self.lang, self.math.print)

    def value(self, value) -> str:
        return "" if value is None else self.math.value(value, "row")

    def detail(self, entry) -> str:
        """Why an entry is not a match, and which convention or mistake explains it."""
        parts = []
        if entry.check.detail is not None:
            parts.append(self(entry.check.detail))
        x = entry.explanation
        if x is not None:
            what = self(x.phrase)
            parts.append(self("verify.explained", what=what) if x.exact else
                         self("verify.nearest", what=what, value=self.value(x.value)))
        elif entry.check.status == "mismatch" and not entry.truncated:
            parts.append(self("verify.unexplained"))
        return "; ".join(parts)

    def alternative(self, alt) -> str:
        shown = ", ".join(f"{name} = {self.value(value)}" for name, value in alt.values)
        return f"{self(alt.phrase)}: {shown}"


# ----- terminal ----------------------------------------------------------------------
def print_reports(reports: list[FileReport], lang: str, console=None, summary: bool = True) -> None:
    from rich.console import Console

    console = console or Console(highlight=False)
    words = Words(lang)
    for report in reports:
        print_file(report, words, console)
    if summary and len(reports) > 1:
        print_summary(reports, words, console)


def print_file(report: FileReport, words: Words, console) -> None:
    from rich.table import Table
    from examsolver.render.terminal import safe_text

    title = report.path + (f" · {report.problem_id}" if report.problem_id else "")
    console.rule(safe_text(title, style="bold"))
    if report.errors:
        for line in report.errors:
            console.print(safe_text(line, style="bold yellow"))
        return
    if report.key_source and report.key_source != report.path:
        console.print(safe_text(words("verify.key_from", path=report.key_source), style="dim"))
    for warning in report.warnings:
        console.print(safe_text(f"⚠ {words(warning)}", style="yellow"))
    if report.alternatives:
        console.print(safe_text(words("verify.heading.alternatives"), style="yellow"))
        for alt in report.alternatives:
            console.print(safe_text(f"  • {words.alternative(alt)}", style="yellow"))
    if not report.entries:
        console.print(safe_text(words("verify.status.nokey"), style="yellow"))
        return
    table = Table(show_lines=False)
    for key in ("label.name", "label.expected", "label.computed", "label.status", "verify.label.explanation"):
        table.add_column(words(key), overflow="fold")
    for entry in report.entries:
        c = entry.check
        table.add_row(safe_text(c.name), safe_text(literal_text(c.expected)), safe_text(words.value(c.computed)),
                      safe_text(words(f"status.{c.status}"), style=STATUS_STYLE.get(c.status, "")),
                      safe_text(words.detail(entry)))
    console.print(table)


def print_summary(reports: list[FileReport], words: Words, console) -> None:
    from rich.table import Table
    from examsolver.render.terminal import safe_text

    table = Table(title=words("verify.heading.summary"))
    for key in ("verify.label.file", "verify.label.problem", "verify.label.correct", "verify.label.wrong",
                "label.status", "verify.label.time"):
        table.add_column(words(key), overflow="fold")
    for r in reports:
        good = sum(e.ok for e in r.entries)
        table.add_row(safe_text(r.path), safe_text(r.problem_id or ""), str(good), str(len(r.entries) - good),
                      safe_text(words(f"verify.status.{r.status}"), style=FILE_STYLE[r.status]), f"{r.seconds:.2f} s")
    console.print()
    console.print(table)
    console.print(safe_text(totals(reports, words)))


def totals(reports, words) -> str:
    entries = [e for r in reports for e in r.entries]
    good = sum(e.ok for e in entries)
    return words("verify.totals", files=len(reports), entries=len(entries), correct=good,
                 wrong=len(entries) - good, errors=sum(r.status == "error" for r in reports))


# ----- JSON ----------------------------------------------------------------------------
def to_json(reports: list[FileReport], lang: str) -> str:
    from examsolver.render.jsonout import exact_text

    words = Words(lang)

    def value(v):
        if v is None:
            return None
        try:
            return exact_text(v)
        except (TypeError, ValueError, AttributeError):
            return str(v)

    files = []
    for r in reports:
        files.append({
            "path": r.path, "id": r.problem_id, "status": r.status, "seconds": round(r.seconds, 3),
            "key": r.key_source, "errors": r.errors,
            "warnings": [words(w) for w in r.warnings],
            "alternatives": [{"convention": a.mistake, "text": words(a.phrase),
                              "results": {n: value(v) for n, v in a.values}} for a in r.alternatives],
            "entries": [{
                "name": e.check.name, "expected": literal_text(e.check.expected), "status": e.check.status,
                "computed": value(e.check.computed), "truncated": e.truncated,
                "detail": words(e.check.detail) if e.check.detail else None,
                "explanation": None if e.explanation is None else {
                    "name": e.explanation.mistake, "kind": e.explanation.kind, "exact": e.explanation.exact,
                    "text": words(e.explanation.phrase), "value": value(e.explanation.value)},
            } for e in r.entries],
        })
    entries = [e for r in reports for e in r.entries]
    summary = {"files": len(reports), "entries": len(entries), "correct": sum(e.ok for e in entries),
               "wrong": sum(not e.ok for e in entries), "errors": sum(r.status == "error" for r in reports),
               "exit_code": exit_code(reports)}
    return json.dumps({"language": lang, "summary": summary, "files": files}, ensure_ascii=False, indent=2) + "\n"


# ----- JUnit XML -------------------------------------------------------------------------
def to_junit(reports: list[FileReport], lang: str) -> str:
    """One <testsuite> per file, one <testcase> per key entry; a bad file is one <error>."""
    words = Words(lang)
    root = ET.Element("testsuites", name="examsolver verify")
    for r in reports:
        suite = ET.SubElement(root, "testsuite", name=r.path, time=f"{r.seconds:.3f}")
        failures = errors = 0
        if r.errors:
            case = ET.SubElement(suite, "testcase", classname=r.path, name="spec")
            ET.SubElement(case, "error", message=r.errors[0]).text = "\n".join(r.errors)
            errors = 1
        for e in r.entries:
            case = ET.SubElement(suite, "testcase", classname=r.problem_id or r.path, name=e.check.name)
            if e.ok:
                continue
            failures += 1
            message = (f"{words(f'status.{e.check.status}')}: {words('label.expected')} {literal_text(e.check.expected)}, "
                       f"{words('label.computed')} {words.value(e.check.computed)}")
            failure = ET.SubElement(case, "failure", message=message, type=e.check.status)
            failure.text = words.detail(e) or message
        tests = len(r.entries) + (1 if r.errors else 0)
        suite.set("tests", str(tests))
        suite.set("failures", str(failures))
        suite.set("errors", str(errors))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
