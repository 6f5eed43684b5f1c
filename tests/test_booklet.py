"""Booklets (issue 13, item 4): grouped by exam, numbered as the exam numbers them, with a title page."""

from __future__ import annotations

import re

from examsolver.pipeline import solve_file
from examsolver.render import output as out
from examsolver.render.options import Options

from conftest import PROBLEMS


def test_grouped_by_exam_with_continuous_equation_numbers_and_a_title_page():
    paths = ["2022_z3", "000_t2", "2022_z1"]          # given out of order, two exams
    solutions = [solve_file(PROBLEMS / f"{p}.yaml") for p in paths]
    options = Options(author="Josip Šarić", date="3. lipnja 2023.", course="Duboko učenje 1")
    tex = out.render_document(solutions, "beamer", "hr", options=options)
    sections = re.findall(r"\\(section|subsection)\{([^}]*)\}", tex)
    assert sections[:3] == [("section", "Duboko učenje 1, završni ispit 2022."),
                            ("subsection", "Zadatak 3: Konvolucijski klasifikacijski model"),
                            ("subsection", "Zadatak 1: Korak učenja binarnog klasifikacijskog modela s normalizacijom "
                                           "nad grupom")]
    assert sections[3] == ("section", "Seed 000")
    assert "\\author{Josip Šarić}" in tex and "\\date{3. lipnja 2023.}" in tex and "Duboko učenje 1}" in tex
    tags = [int(t) for t in re.findall(r"\\tag\{(\d+)\}", tex)]
    z3 = sum(1 for s in solutions[0].sections for b in s.blocks if getattr(b, "number", None))
    assert tags[z3] == z3 + 1, "the second task of an exam goes on numbering"
    assert tags.count(1) == 2, "a new exam starts again at (1)"


def _with_title_page(name: str, page: str, tmp_path, stem: str):
    """A copy of a problem spec with a `document:` mapping (YAML flow text) at its top."""
    path = tmp_path / f"{stem}.yaml"
    path.write_text(f"document: {page}\n" + (PROBLEMS / f"{name}.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    return solve_file(path)


def test_course_author_and_date_come_from_the_spec_per_language_and_the_command_line_overrides(tmp_path):
    solution = _with_title_page("2022_z3", '{course: {hr: "Duboko učenje 1", en: "Deep Learning 1"}, '
                                           'author: "Ana Anić", date: "lipanj 2022."}', tmp_path, "a")
    hr = out.render_document([solution], "beamer", "hr")
    en = out.render_document([solution], "html", "en")
    assert "Duboko učenje 1" in hr and "\\author{Ana Anić}" in hr and "\\date{lipanj 2022.}" in hr
    assert "Deep Learning 1 · Ana Anić · lipanj 2022." in en
    assert "Deep Learning 1 · Ana Anić" in out.render_document([solution], "md", "en")
    override = out.render_document([solution], "beamer", "hr", options=Options(author="Ivo Ivić"))
    assert "\\author{Ivo Ivić}" in override and "Ana Anić" not in override and "\\date{lipanj 2022.}" in override


def test_a_booklet_takes_each_title_page_field_from_the_first_spec_that_has_it(tmp_path):
    first = _with_title_page("2022_z3", '{author: "Ana Anić"}', tmp_path, "first")
    second = _with_title_page("2022_z1", '{author: "Ivo Ivić", date: "2022."}', tmp_path, "second")
    tex = out.render_document([first, second], "beamer", "hr")
    assert "\\author{Ana Anić}" in tex and "Ivo Ivić" not in tex and "\\date{2022.}" in tex
    said = Options().title_page_conflicts([first, second], "hr")
    assert len(said) == 1 and "second.yaml: document.author 'Ivo Ivić' differs from 'Ana Anić'" in said[0]
    assert Options(author="Eva").title_page_conflicts([first, second], "hr") == []     # the command line decides


def test_unknown_title_page_fields_are_refused_where_written(tmp_path):
    import pytest

    from examsolver.errors import SpecError

    with pytest.raises(SpecError, match=r"bad\.yaml:1:\d+: unknown field 'teacher'"):
        _with_title_page("2022_z3", "{course: x, teacher: y}", tmp_path, "bad")


def test_every_problem_kind_accepts_a_title_page(tmp_path):
    for name in ("2022_z1", "000_t4", "000_t5", "2022_z2", "000_t6", "003_glorot"):     # network … symbolic
        solution = _with_title_page(name, "{course: DU1}", tmp_path, name)
        assert solution.title_page == {"course": "DU1"}, name
