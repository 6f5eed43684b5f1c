"""The format registry, and writing outputs whole or not at all.

One table says, for every output format, how a list of solutions becomes a
document and what its file is called.  Several solutions make one booklet
(or, split, one document each); figures are written beside a document as
files of their own (PDF for LaTeX, SVG for Markdown) or inlined (HTML).
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from examsolver.errors import ExamsolverError

if TYPE_CHECKING:   # the document modules load only for the formats that need them
    from examsolver.render.document import Assets
    from examsolver.render.options import Options


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    render: Callable          # (solutions, lang, decimal, assets, options) → text
    figures: bool = False     # writes figure files beside the document


def _markdown(solutions, lang, decimal, assets, options) -> str:
    from examsolver.render.markdown_doc import render_markdown

    return render_markdown(solutions, lang, decimal, assets, options)


def _json(solutions, lang, decimal, assets, options) -> str:
    import json

    from examsolver.render.jsonout import render, to_dict

    if len(solutions) == 1:
        return render(solutions[0], lang)
    return json.dumps([to_dict(s, lang) for s in solutions], ensure_ascii=False, indent=2) + "\n"


def _terminal(solutions, lang, decimal, assets, options) -> str:
    from rich.console import Console

    from examsolver.render.terminal import TerminalRenderer

    console = Console(record=True, width=120, file=open(os.devnull, "w"), color_system=None)
    renderer = TerminalRenderer(lang, console)
    _set_separator(renderer, "plain", decimal)
    for solution in solutions:
        renderer.render(solution)
    return console.export_text()


def _tex(kind: str):
    def render(solutions, lang, decimal, assets, options) -> str:
        from examsolver.render.latex import render_latex

        return render_latex(solutions, lang, kind, decimal, assets, options)

    return render


def _torch(solutions, lang, decimal, assets, options) -> str:
    from examsolver.render.torch_script import torch_text

    return "\n\n".join(torch_text(s) for s in solutions)


def _html(solutions, lang, decimal, assets, options) -> str:
    from examsolver.render.html import render_html

    return render_html(solutions, lang, decimal, assets, options)


def _moodle(solutions, lang, decimal, assets, options) -> str:
    from examsolver.render.moodle import render_moodle

    return render_moodle(solutions, lang, decimal, assets, options)


FORMATS = {f.name: f for f in (
    Format("term", ".txt", _terminal),
    Format("md", ".md", _markdown, figures=True),
    Format("tex", ".tex", _tex("article"), figures=True),
    Format("beamer", ".tex", _tex("beamer"), figures=True),
    Format("html", ".html", _html),
    Format("json", ".json", _json),
    Format("torch", ".py", _torch),
    Format("moodle", ".xml", _moodle),
)}


def _set_separator(renderer, kind: str, decimal: str | None) -> None:
    """A renderer made for a language, with the decimal separator the user chose instead."""
    if decimal is None:
        return
    from examsolver.render.document import SEPARATORS
    from examsolver.render.math import LatexPrinter, PlainPrinter

    printer = PlainPrinter if kind == "plain" else LatexPrinter
    renderer.math = printer(decimal_separator=SEPARATORS[decimal], lang=renderer.lang)


def render_solution(solution, fmt: str, lang: str, to_terminal: bool = True, decimal: str | None = None,
                    options: Options | None = None) -> str:
    """One solution's text; the terminal format prints directly when to_terminal."""
    from examsolver.render.options import Options

    options = options or Options(key=True)
    if fmt == "term" and to_terminal:
        from examsolver.render.terminal import TerminalRenderer

        renderer = TerminalRenderer(lang)
        _set_separator(renderer, "plain", decimal)
        renderer.render(options.shown([solution])[0])
        return ""
    return render_document([solution], fmt, lang, decimal, options=options)


def render_document(solutions: list, fmt: str, lang: str, decimal: str | None = None,
                    assets: Assets | None = None, options: Options | None = None) -> str:
    """The document; the answer key is in it only when asked (students get documents without it)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    from examsolver.render.options import Options

    options = (options or Options()).with_title_page(solutions, lang)
    return FORMATS[fmt].render(options.shown(solutions), lang, decimal, assets, options)


def document_name(solutions: list, fmt: str) -> str:
    """File stem: the problem id, or for a booklet the ids' common exam prefix."""
    ids = [s.problem_id or "solution" for s in solutions]
    if len(ids) == 1:
        stem = ids[0]
    else:
        prefix = os.path.commonprefix(ids)
        prefix = prefix[:max(prefix.rfind("_"), 0)] if not all(i == prefix for i in ids) else prefix
        stem = f"{prefix}_solutions" if prefix else "solutions"
    stem = re.sub(r"[^\w.-]", "_", stem)
    return stem + ("-slides" if fmt == "beamer" else "")


def write_document(solutions: list, fmt: str, lang: str, path: Path, decimal: str | None = None,
                   options: Options | None = None) -> list[Path]:
    """Render and write one document (and its figure files beside it); returns what was written."""
    from examsolver.render.document import Assets

    path = Path(path)
    spec = FORMATS[fmt]
    if path.is_dir():    # -o DIR: the document is written inside it, under its usual name
        path = path / (document_name(solutions, fmt) + spec.suffix)
    assets = Assets(prefix=f"{path.stem}-") if spec.figures else None
    text = render_document(solutions, fmt, lang, decimal, assets, options)
    written = []
    for name, data in (assets.files.items() if assets else ()):
        write_atomic(path.parent / name, data)
        written.append(path.parent / name)
    write_atomic(path, text)
    return written + [path]


class OutputError(ExamsolverError):
    """An output path that must not be written (a device, a directory, a FIFO…)."""


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write to a temporary file beside the target, then rename: never a half-written file.

    Only regular files are replaced (a device such as /dev/full, a FIFO or a directory is refused);
    a symbolic link is followed, so the file it points to is updated and the link stays; an existing
    file keeps its mode, a new one gets the mode the umask gives (0644 under the usual 022).
    """
    target = Path(os.path.realpath(path))
    try:
        existing = os.stat(target)
    except FileNotFoundError:
        existing = None
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror}") from None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        what = "a directory" if stat.S_ISDIR(existing.st_mode) else "not a regular file"
        raise OutputError(f"cannot write {path}: it is {what} (give a file name)")
    mode = stat.S_IMODE(existing.st_mode) if existing is not None else 0o666 & ~_umask()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content if isinstance(content, bytes) else content.encode("utf-8"))
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise OutputError(f"cannot write {path}: {err.strerror}") from None
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
