"""The command line: thin typer commands over the library; errors become exit codes here.

Heavy libraries (numpy, pydantic, sympy, matplotlib) are imported inside the
commands that need them, so `examsolver --help` starts at once.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                  help="Worked solutions of deep-learning exam problems written as YAML, and answer-key checks.")


class Lang(str, Enum):
    hr = "hr"
    en = "en"


class Format(str, Enum):
    term = "term"
    md = "md"
    json = "json"


def _fail(problems) -> None:
    for problem in problems:
        typer.echo(str(problem), err=True)


def _run_guarded(debug: bool, action):
    """Run action(); user errors become one line per problem and exit code 2."""
    from examsolver.errors import ExamsolverError, SpecError

    try:
        return action()
    except SpecError as err:
        if debug:
            raise
        _fail(err.problems)
    except ExamsolverError as err:
        if debug:
            raise
        typer.echo(f"error: {err}", err=True)
    except Exception as err:  # a bug of ours: say so plainly, no traceback unless asked
        if debug:
            raise
        typer.echo(f"internal error: {type(err).__name__}: {err} (rerun with --debug and report it)", err=True)
    return None


@app.command()
def solve(
    specs: list[Path] = typer.Argument(..., help="Problem spec files (YAML)."),
    lang: Lang = typer.Option(Lang.hr, "--lang", "-l", help="Language of the solution."),
    fmt: Format = typer.Option(Format.term, "--format", "-f", help="Output format."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors."),
) -> None:
    """Solve problem specs and print the worked solutions."""
    from examsolver.engine.solve import solve_file
    from examsolver.render.output import render_solution, write_atomic

    failed = False
    texts = []
    for spec in specs:
        solution = _run_guarded(debug, lambda spec=spec: solve_file(spec))
        if solution is None:
            failed = True
            continue
        text = _run_guarded(debug, lambda solution=solution: render_solution(
            solution, fmt.value, lang.value, to_terminal=output is None))
        if text is None:
            failed = True
            continue
        texts.append(text)
    text = "".join(t for t in texts if t)
    if output is not None and texts:
        write_atomic(output, text)
    elif text:
        sys.stdout.write(text)
    if failed:
        raise typer.Exit(2)


@app.command()
def schema() -> None:
    """Print the JSON Schema of a problem spec (for editors that check YAML)."""
    import json

    from examsolver.spec.model import spec_json_schema

    typer.echo(json.dumps(spec_json_schema(), indent=2, ensure_ascii=False))


def main() -> None:
    app()
