"""PDF through latexmk + pdfLaTeX, compiled in a temporary directory and moved in whole.

The .tex comes from untrusted specs.  Its text is escaped and its formulas rebuilt from an
allow-list (render/latex.py, render/inline.py); should anything still slip through, TeX runs with
shell escape off and in kpathsea's paranoid mode (openin_any=p, openout_any=p: no absolute path,
no `..`, no dot file), so it can read and write only inside its fresh build directory (and read
the TeX installation), and with -halt-on-error; a failed compile leaves no PDF, only its log beside
the target.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from examsolver.errors import ExamsolverError

# What the templates really load (checked against the .fls of compiled documents): beamer needs pgf
# (texlive-pictures), Croatian needs babel-croatian (texlive-lang-european).
DEBIAN_PACKAGES = ("latexmk texlive-latex-base texlive-latex-recommended texlive-pictures texlive-lang-european "
                   "lmodern")
TOOLS = ("latexmk", "pdflatex")
TIMEOUT = 300


class MissingTeX(ExamsolverError):
    """No TeX installation: the user has to install one (exit code 2)."""


class CompileError(ExamsolverError):
    """pdfLaTeX failed on a document we generated: our bug, reported with the log's errors."""

    exit_code = 1


def check_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise MissingTeX(f"--pdf needs {' and '.join(missing)}, which are not installed; on Debian/Ubuntu: "
                         f"sudo apt-get install --no-install-recommends {DEBIAN_PACKAGES}")


def compile_pdf(tex: str, figures: dict, target: Path, full: bool = True, log_to: Path | None = None) -> float:
    """Compile tex (with its figure files) and write target.pdf atomically; returns seconds taken.

    full=False runs pdfLaTeX once instead of latexmk's runs to a fixed point: every LaTeX error
    shows on the first pass, so checks that only want errors are twice as fast (contents and
    frame navigation are then incomplete).  log_to: also keep pdfLaTeX's log there (checks of the layout).
    """
    from examsolver.render.output import write_atomic

    check_tools()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="examsolver-tex-") as build:
        build_dir = Path(build)
        (build_dir / "main.tex").write_text(tex, encoding="utf-8")
        for name, data in figures.items():
            (build_dir / name).write_bytes(data)
        flags = ["-interaction=nonstopmode", "-halt-on-error", "-file-line-error", "-no-shell-escape"]
        # -norc: no latexmkrc can put shell escape back (or change the command that runs)
        command = ["latexmk", "-norc", "-pdf", "-silent", *flags, "main.tex"] if full else \
            ["pdflatex", *flags, "main.tex"]
        try:
            run = subprocess.run(command, cwd=build_dir, env=tex_environment(), capture_output=True, encoding="utf-8",
                                 errors="replace", timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise CompileError(f"latexmk took more than {TIMEOUT} s on {target.name}") from None
        pdf = build_dir / "main.pdf"
        log = build_dir / "main.log"
        log_text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else run.stdout + run.stderr
        if run.returncode != 0 or not pdf.exists():
            write_atomic(target.with_suffix(".log"), log_text)
            raise CompileError(_diagnosis(log_text, target))
        write_atomic(target, pdf.read_bytes())
        if log_to is not None:
            write_atomic(log_to, log_text)
    return time.monotonic() - start


def tex_environment() -> dict:
    """The environment TeX runs in: paranoid file access, no shell escape, no output directory of the
    user's that TeX could also write to, reproducible dates and a long log line."""
    env = {k: v for k, v in os.environ.items() if k != "TEXMFOUTPUT"}
    return {**env, "openin_any": "p", "openout_any": "p", "shell_escape": "f", "max_print_line": "1000",
            "SOURCE_DATE_EPOCH": "0", "FORCE_SOURCE_DATE": "1"}


def overfull_boxes(log: str, tolerance: float = 5.0) -> list[str]:
    """The log's overfull boxes wider or taller than tolerance points: content that sticks out."""
    found = re.finditer(r"^(Overfull \\[hv]box \(([\d.]+)pt too (?:wide|high)\).*)$", log, re.M)
    return [m.group(1) for m in found if float(m.group(2)) > tolerance]


def _diagnosis(log: str, target: Path) -> str:
    missing = re.findall(r"File `([^']+\.(?:sty|cls|ldf|fd))' not found", log)
    if missing:
        return (f"LaTeX cannot find {', '.join(sorted(set(missing)))}; install the TeX packages: "
                f"sudo apt-get install --no-install-recommends {DEBIAN_PACKAGES}")
    errors = [line for line in log.splitlines() if line.startswith("!") or re.match(r"^\S+\.tex:\d+:", line)]
    shown = "\n  ".join(errors[:8]) or "(no error lines in the log)"
    return f"LaTeX failed on {target.name} (log: {target.with_suffix('.log')}):\n  {shown}"
