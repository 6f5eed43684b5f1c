"""Choosing a renderer by format, and writing files whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def render_solution(solution, fmt: str, lang: str, to_terminal: bool = True) -> str:
    """The rendered text; the terminal format prints directly when to_terminal."""
    if fmt == "md":
        from examsolver.render.markdown import MarkdownRenderer

        return MarkdownRenderer(lang).render(solution)
    if fmt == "json":
        from examsolver.render.jsonout import render

        return render(solution, lang)
    if fmt == "term":
        from rich.console import Console

        from examsolver.render.terminal import TerminalRenderer

        if to_terminal:
            TerminalRenderer(lang).render(solution)
            return ""
        console = Console(record=True, width=120, file=open(os.devnull, "w"), color_system=None)
        TerminalRenderer(lang, console).render(solution)
        return console.export_text()
    raise ValueError(f"unknown format {fmt!r}")


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside path, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
