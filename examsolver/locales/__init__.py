"""Phrase catalogs: the same keys in every language (a test checks it)."""

from __future__ import annotations

from importlib import import_module

LANGUAGES = ("hr", "en")


def catalog(lang: str) -> dict:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r} (expected one of: {', '.join(LANGUAGES)})")
    return import_module(f"examsolver.locales.{lang}").PHRASES
