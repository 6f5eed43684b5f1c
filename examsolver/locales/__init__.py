"""Phrase catalogs: the same keys in every language (a test checks it).

A language's catalog is `locales/<lang>.py` merged with every `locales/<lang>_<area>.py`
(e.g. hr_retrieval.py), so each problem family keeps its phrases beside the others'.
"""

from __future__ import annotations

import pkgutil
from functools import lru_cache
from importlib import import_module

LANGUAGES = ("hr", "en")


@lru_cache(maxsize=None)
def catalog(lang: str) -> dict:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r} (expected one of: {', '.join(LANGUAGES)})")
    merged: dict = {}
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        if module == lang or module.startswith(lang + "_"):
            phrases = import_module(f"{__name__}.{module}").PHRASES
            clash = set(merged) & set(phrases)
            if clash:
                raise KeyError(f"phrase keys defined twice in {lang}: {', '.join(sorted(clash))}")
            merged.update(phrases)
    return merged
