"""Phrase catalogs: the same keys and placeholders in hr and en, and every key the engine emits exists."""

from __future__ import annotations

import dataclasses
import functools
import pkgutil
import string

import pytest

import examsolver.locales as locales
from examsolver.pipeline import solve_file
from examsolver.locales import LANGUAGES, catalog
from examsolver.render.output import render_solution
from examsolver.solution import Phrase

from conftest import PROBLEMS

ALL_PROBLEMS = sorted(PROBLEMS.glob("*.yaml"))


def placeholders(template: str) -> set:
    """Names used by str.format in the template ('{layer}', '{shape!s}', '{a.b}' → layer, shape, a)."""
    names = set()
    for _, field, _, _ in string.Formatter().parse(template):
        if field is not None:
            names.add(field.split(".")[0].split("[")[0])
    return names


def test_catalogs_have_identical_keys():
    hr, en = set(catalog("hr")), set(catalog("en"))
    assert not hr - en, f"only in hr: {sorted(hr - en)}"
    assert not en - hr, f"only in en: {sorted(en - hr)}"


def test_every_area_file_has_its_twin():
    modules = {m.name for m in pkgutil.iter_modules(locales.__path__)}
    for lang in LANGUAGES:
        for name in modules:
            if name.startswith(lang + "_") or name == lang:
                for other in LANGUAGES:
                    twin = other + name[len(lang):]
                    assert twin in modules, f"{name}.py has no {twin}.py"


@pytest.mark.parametrize("key", sorted(catalog("en")))
def test_placeholders_identical(key):
    hr, en = catalog("hr")[key], catalog("en")[key]
    assert isinstance(hr, str) and isinstance(en, str), key
    assert hr.strip() and en.strip(), key
    assert placeholders(hr) == placeholders(en), f"{key}: hr {placeholders(hr)} vs en {placeholders(en)}"


def emitted_phrases(obj, seen=None) -> list:
    """Every Phrase reachable from a solution (sections, steps, conventions, warnings, checks, arguments)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, (str, bytes, int, float)) or obj is None:
        return []
    seen.add(id(obj))
    found = []
    if isinstance(obj, Phrase):
        found.append(obj)
        found += emitted_phrases(obj.args, seen)
    elif isinstance(obj, dict):
        for value in obj.values():
            found += emitted_phrases(value, seen)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            found += emitted_phrases(value, seen)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            if f.name != "results":             # values, not text
                found += emitted_phrases(getattr(obj, f.name), seen)
    return found


@functools.cache
def solved(path):
    return solve_file(path)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("path", ALL_PROBLEMS, ids=lambda p: p.stem)
def test_every_emitted_key_exists(path, lang):
    solution = solved(path)
    phrases = emitted_phrases(solution)
    assert phrases, "a solution without a single sentence"
    table = catalog(lang)
    missing = sorted({p.key for p in phrases if p.key not in table})
    assert not missing, f"missing phrase keys in {lang}: {missing}"
    for phrase in phrases:
        unfilled = placeholders(table[phrase.key]) - set(phrase.args)
        assert not unfilled, f"{phrase.key}: no value for {sorted(unfilled)}"
    # rendering translates every phrase; a missing key would raise KeyError here
    assert render_solution(solution, "md", lang, to_terminal=False)
