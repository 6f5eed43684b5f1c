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
