"""The command line: thin typer commands over the library; errors become exit codes here.

Heavy libraries (numpy, pydantic, sympy, matplotlib) are imported inside the
commands that need them, so `examsolver --help` starts at once.
"""

# No `from __future__ import annotations` here: typer would evaluate every parameter's annotation
# from its text at each start (~3% of `--help`).
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from examsolver.spec.limits import DEFAULTS as _D   # light: the defaults shown in --help

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                  help="Worked solutions of deep-learning exam problems written as YAML, and answer-key checks.")


class Lang(str, Enum):
    hr = "hr"
    en = "en"


class Format(str, Enum):
    term = "term"
    md = "md"
    tex = "tex"
    beamer = "beamer"
    html = "html"
    json = "json"
    torch = "torch"
    moodle = "moodle"


class ReportFormat(str, Enum):
    term = "term"
    json = "json"


class Decimal(str, Enum):
    comma = "comma"
    point = "point"


@app.callback()
def limits(
    max_seconds: Optional[float] = typer.Option(None, help=f"CPU seconds to solve one file (default {_D.seconds:g}; 0: none)."),
    max_memory: Optional[int] = typer.Option(None, help=f"Memory of the process in MB (default {_D.memory_mb}; 0: none)."),
    max_digits: Optional[int] = typer.Option(None, help=f"Digits of a number in a spec (default {_D.digits})."),
    max_exp_argument: Optional[int] = typer.Option(None, help=f"|x| in exp(x), tanh(x), … (default {_D.exp_argument})."),
    max_terms: Optional[int] = typer.Option(None, help=f"Terms of an exact sum (default {_D.terms})."),
    max_degree: Optional[int] = typer.Option(None, help=f"Degree of a symbolic expression (default {_D.degree})."),
    max_elements: Optional[int] = typer.Option(None, help=f"Entries of one tensor (default {_D.elements})."),
    max_work: Optional[int] = typer.Option(None, help=f"Estimated multiply-adds of a network (default {_D.work})."),
    max_steps: Optional[int] = typer.Option(None, help=f"Time steps of a sequence (default {_D.steps})."),
) -> None:
    """Limits on the work one input file may ask for (spec/limits.py); raise them only for trusted files."""
    from examsolver.spec import limits as bounds

    bounds.configure(seconds=max_seconds, memory_mb=max_memory, digits=max_digits, exp_argument=max_exp_argument,
                     terms=max_terms, degree=max_degree, elements=max_elements, work=max_work, steps=max_steps)
    if _PROCESS["own"]:     # the address-space cap is for a process of our own, not for a host calling app()
        bounds.limit_memory()


def _fail(problems) -> None:
    for problem in problems:
        _say(str(problem))


def _say(line: str) -> None:
    """A line on stderr that may quote a spec (a name, a formula): its control characters shown as escapes."""
    from examsolver.render.terminal import visible

    typer.echo(visible(line), err=True)


class _Internal:
    """The result of an action that failed by a bug of ours (exit code INTERNAL_ERROR)."""


def _run_guarded(debug: bool, action, name: str = ""):
    """Run action(); user errors become one line per problem (None: exit code 2), a bug of ours one
    line naming the file (_Internal: exit code INTERNAL_ERROR)."""
    from examsolver.errors import ExamsolverError, SpecError, internal_error_line

    try:
        return action()
    except SpecError as err:
        if debug:
            raise
        _fail(err.problems)
    except ExamsolverError as err:
        if debug:
            raise
        _say(f"{name + ': ' if name else ''}error: {err}")
    except Exception as err:  # a bug of ours: say so plainly, no traceback unless asked
        if debug:
            raise
        _say(internal_error_line(name, err))
        return _Internal()
    return None


@app.command()
def solve(
    specs: list[Path] = typer.Argument(..., help="Problem spec files (YAML); several make one booklet."),
    lang: Lang = typer.Option(Lang.hr, "--lang", "-l", help="Language of the solution."),
    fmt: Optional[Format] = typer.Option(None, "--format", "-f",
                                         help="Output format (default: term, or tex with --pdf)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Write to this file (a directory with --split or --pdf)."),
    pdf: bool = typer.Option(False, "--pdf", help="Compile tex/beamer to PDF with latexmk into the -o directory."),
    split: bool = typer.Option(False, "--split", help="One document per spec instead of one booklet."),
    decimal: Optional[Decimal] = typer.Option(None, "--decimal",
                                              help="Decimal separator (default: comma for hr, point for en)."),
    key: bool = typer.Option(False, "--key", help="Include the answer key in documents (the TA's version)."),
    torch: Optional[bool] = typer.Option(None, "--torch/--no-torch",
                                         help="End documents with the PyTorch check code (default: in slides only)."),
    sheet: bool = typer.Option(False, "--sheet", help="The exam sheet: the problem statements only, no solutions."),
    course: str = typer.Option("", "--course", help="Title page: the course."),
    author: str = typer.Option("", "--author", help="Title page: the author."),
    date: str = typer.Option("", "--date", help="Title page: the date."),
    partial: int = typer.Option(0, "--partial", min=0, max=100,
                                help="Moodle: credit in % for a wrong answer that a catalogued mistake explains."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors."),
) -> None:
    """Solve problem specs and write the worked solutions (terminal, Markdown, LaTeX, slides, HTML, JSON,
    a Moodle quiz)."""
    from examsolver.pipeline import solve_file
    from examsolver.render.options import Options

    fmt = fmt or (Format.tex if pdf else Format.term)
    if pdf and fmt not in (Format.tex, Format.beamer):
        typer.echo("error: --pdf needs --format tex or --format beamer", err=True)
        raise typer.Exit(2)
    if split and output is None:
        typer.echo("error: --split needs -o DIRECTORY", err=True)
        raise typer.Exit(2)
    from examsolver.errors import INTERNAL_ERROR

    solutions, failed, internal = [], False, False
    for spec in specs:
        solution = _run_guarded(debug, lambda spec=spec: solve_file(spec), str(spec))
        failed |= solution is None
        internal |= isinstance(solution, _Internal)
        if solution is not None and not isinstance(solution, _Internal):
            solutions.append(solution)
    if solutions:
        code = _run_guarded(debug, lambda: _write_solutions(solutions, fmt.value, lang.value, output, pdf, split,
                                                            decimal.value if decimal else None, debug,
                                                            Options(key=key, torch=torch, sheet=sheet, course=course,
                                                                    author=author, date=date, partial=partial)),
                            ", ".join(str(s) for s in specs))
        if isinstance(code, _Internal):
            raise typer.Exit(INTERNAL_ERROR)
        if code != 0:
            raise typer.Exit(2 if code is None else code)
    if internal:
        raise typer.Exit(INTERNAL_ERROR)
    if failed:
        raise typer.Exit(2)


def _write_solutions(solutions, fmt: str, lang: str, output: Optional[Path], pdf: bool, split: bool,
                     decimal: Optional[str], debug: bool, options=None) -> int:
    """Every output mode of `solve`; returns the exit code (errors of ours are printed here)."""
    from examsolver.errors import ExamsolverError
    from examsolver.render import output as out
    from examsolver.render.options import Options

    groups = [[s] for s in solutions] if split else [solutions]
    for group in groups:
        for line in (options or Options()).title_page_conflicts(group, lang):
            _say(f"warning: {line}")
    try:
        if pdf:
            from examsolver.render.document import Assets
            from examsolver.render.pdf import check_tools, compile_pdf

            check_tools()
            for group in groups:
                target = Path(output or ".")
                if not (target.suffix == ".pdf" and not split):
                    target = target / (out.document_name(group, fmt) + ".pdf")
                assets = Assets()
                tex = out.render_document(group, fmt, lang, decimal, assets, options)
                seconds = compile_pdf(tex, assets.files, target)
                typer.echo(f"{target} ({seconds:.1f} s)", err=True)
        elif split:
            for group in groups:
                name = out.document_name(group, fmt) + out.FORMATS[fmt].suffix
                out.write_document(group, fmt, lang, Path(output) / name, decimal, options)
        elif output is not None:
            out.write_document(solutions, fmt, lang, output, decimal, options)
        elif fmt == "term":
            for solution in solutions:
                out.render_solution(solution, fmt, lang, to_terminal=True, decimal=decimal, options=options)
        else:
            sys.stdout.write(out.render_document(solutions, fmt, lang, decimal, options=options))
    except ExamsolverError as err:   # no TeX (2), a LaTeX failure (1): the message says what to do
        if debug:
            raise
        _say(f"error: {err}")
        return err.exit_code
    return 0


@app.command()
def vary(
    spec: Path = typer.Argument(..., help="A problem spec with a `vary:` block."),
    count: int = typer.Option(5, "-n", min=1, max=1000, help="How many variants."),
    seed: int = typer.Option(0, "--seed", help="Seed of the draw (the same seed gives the same variants)."),
    output: Path = typer.Option(..., "--output", "-o", help="Directory for the variants' specs."),
    report: bool = typer.Option(False, "--report", help="Also the stress report: acceptance, spread of each "
                                                         "answer (a figure), repeats."),
    fmt: Optional[Format] = typer.Option(None, "--format", "-f", help="Also a booklet of all variants in this format."),
    lang: Lang = typer.Option(Lang.hr, "--lang", "-l", help="Language of the booklet."),
    max_tries: Optional[int] = typer.Option(None, "--max-tries", min=1, max=5000,
                                            help="Candidates to draw at most (default 200 per variant, at most 5000)."),
    seconds: float = typer.Option(120, "--seconds", min=0.01, max=86_400,
                                  help="CPU seconds for the whole draw; it stops then with the variants it has."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors."),
) -> None:
    """Draw exam variants whose every worked-solution value stays nice; write each as a spec with its key."""
    from examsolver.errors import INTERNAL_ERROR

    result = _run_guarded(debug, lambda: _vary(spec, count, seed, output, report, fmt, lang.value, max_tries, seconds,
                                               debug), str(spec))
    if isinstance(result, _Internal):
        raise typer.Exit(INTERNAL_ERROR)
    if result is None:
        raise typer.Exit(2)
    raise typer.Exit(result)


def _vary(spec: Path, count: int, seed: int, output: Path, report: bool, fmt, lang: str, max_tries, seconds,
          debug) -> int:
    from examsolver import vary as variants_of
    from examsolver.spec.load import load_file

    doc = load_file(spec)
    variants, stress = variants_of.draw(doc, count, seed, max_tries, seconds)
    for path in variants_of.unshown(doc):
        _say(f"warning: the statement does not show {path} (write it as {{{{{path}}}}}): the variants' "
             "statements repeat the original's numbers there")
    for path in variants_of.write_variants(doc, variants, seed, output):
        typer.echo(str(path))
    stem = output / str(doc.data.get("id", spec.stem))
    if report:
        text = variants_of.report_text(doc, variants, stress, count)
        from examsolver.render.output import write_atomic

        write_atomic(stem.with_name(stem.name + "_report.txt"), text)
        figure = variants_of.report_figure(doc, variants, stem.with_name(stem.name + "_report.png"), stress.original)
        typer.echo(text + (f"figure: {figure}\n" if figure else ""), nl=False)
    elif stress.accepted < count:
        typer.echo(f"warning: only {stress.accepted} of {count} variants from {stress.tried} candidates "
                   "(see --report)", err=True)
    if fmt is not None and variants:
        from examsolver.render import output as out

        target = stem.with_name(stem.name + "_variants" + out.FORMATS[fmt.value].suffix)
        code = _write_solutions([v.solution for v in variants], fmt.value, lang, target, False, False, None, debug)
        if code:
            return code
        typer.echo(str(target))
    return 0 if variants else 1


@app.command()
def schema() -> None:
    """Print the JSON Schema of a problem spec (for editors that check YAML)."""
    import json

    from examsolver.spec.model import spec_json_schema

    typer.echo(json.dumps(spec_json_schema(), indent=2, ensure_ascii=False))


# ----- answer keys: verify and check ---------------------------------------------------------
_REPORT_KINDS = ("json", "junit")


def _split_report_options(tokens: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """PATH... with `--report json|junit FILE` anywhere among them → (paths, [(kind, file)])."""
    paths, reports, i = [], [], 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--report":
            if i + 2 >= len(tokens):
                raise typer.BadParameter("--report needs a kind (json or junit) and a file", param_hint="--report")
            kind, target = tokens[i + 1], tokens[i + 2]
            if kind not in _REPORT_KINDS:
                raise typer.BadParameter(f"unknown report kind {kind!r} (expected json or junit)", param_hint="--report")
            reports.append((kind, target))
            i += 3
        elif token.startswith("-") and token != "-":
            raise typer.BadParameter(f"no such option: {token}")
        else:
            paths.append(token)
            i += 1
    return paths, reports


def _tolerance(rtol: Optional[str], atol: Optional[str]):
    from examsolver.errors import ExprError
    from examsolver.verify import Tolerance

    try:
        return Tolerance.parse(rtol, atol)
    except ExprError as err:
        raise typer.BadParameter(str(err), param_hint="--rtol/--atol") from None


def _verify_one(args):
    """One file in a worker process (or in this one); never raises for a user error."""
    from examsolver.errors import internal_error_line
    from examsolver.verify import FileReport, verify_file

    path, keys, answers, tolerance, debug = args
    try:
        return verify_file(path, keys_dir=keys, answers_file=answers, tolerance=tolerance)
    except Exception as err:  # a bug of ours: reported on that file, the rest still run
        if debug:
            raise
        return FileReport(str(path), errors=[internal_error_line(str(path), err)], internal=True)


def _run_files(files: list, keys, tolerance, jobs: int, debug: bool) -> list:
    """Reports in the order of files, with a progress bar on a terminal when the run is long."""
    from rich.console import Console
    from rich.progress import Progress

    tasks = [(f, keys, None, tolerance, debug) for f in files]
    err = Console(stderr=True)
    show = err.is_terminal and len(files) > 3
    reports = [None] * len(files)
    with Progress(console=err, transient=True, disable=not show) as progress:
        bar = progress.add_task("verify", total=len(files))
        if jobs > 1 and len(files) > 1:
            from concurrent.futures import ProcessPoolExecutor, as_completed

            _import_for_workers(files)
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                futures = {pool.submit(_verify_one, tasks[k]): k for k in _slow_first(files)}
                for future in as_completed(futures):
                    reports[futures[future]] = future.result()
                    progress.advance(bar)
        else:
            for k, t in enumerate(tasks):
                reports[k] = _verify_one(t)
                progress.advance(bar)
    return reports


def _import_for_workers(files: list) -> None:
    """The engine (and sympy, when a symbolic spec is among the files) imported once, before the worker
    processes fork from this one: each starts with them instead of importing them again."""
    import examsolver.diagnose  # noqa: F401
    import examsolver.engine.ops  # noqa: F401
    import examsolver.pipeline  # noqa: F401

    if any(_symbolic(f) for f in files):
        import sympy  # noqa: F401


def _slow_first(files: list) -> list:
    """Indices of files, the symbolic specs (sympy's: the slow ones) first, so that no worker starts one
    when the others are about to finish."""
    return sorted(range(len(files)), key=lambda k: not _symbolic(files[k]))


def _symbolic(path) -> bool:
    """Whether a spec file says `kind: symbolic` (a scheduling hint only: the solve reads the file properly)."""
    import re

    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError:
        return False
    return re.search(rb"^kind:\s*symbolic\b", head, re.M) is not None


def _write_reports(reports, targets, lang: str) -> None:
    from examsolver.render.output import write_atomic
    from examsolver.render.verify_report import to_json, to_junit

    for kind, target in targets:
        write_atomic(Path(target), to_json(reports, lang) if kind == "json" else to_junit(reports, lang))


@app.command(context_settings={"ignore_unknown_options": True})
def verify(
    paths: list[str] = typer.Argument(..., metavar="PATH... [--report json|junit FILE]",
                                      help="Spec files, directories (every *.yaml inside) or globs. "
                                           "`--report json FILE` / `--report junit FILE` (repeatable) also "
                                           "write a machine-readable report for CI."),
    keys: Optional[Path] = typer.Option(None, "--keys", help="Take each key from DIR/<id>.yaml instead of the spec's answers."),
    rtol: Optional[str] = typer.Option(None, "--rtol", help="Relative tolerance for every entry (an entry's own tol wins)."),
    atol: Optional[str] = typer.Option(None, "--atol", help="Absolute tolerance for every entry."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, max=64, help="Solve files in N parallel processes."),
    lang: Lang = typer.Option(Lang.hr, "--lang", "-l", help="Language of the report."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
) -> None:
    """Solve every spec and compare each answer-key entry; explain wrong answers.

    Exit code 0 when every entry matches, 1 when one is wrong, 2 when a spec (or key) is unreadable or invalid.
    """
    from examsolver.render.verify_report import print_reports
    from examsolver.verify import FileReport, exit_code, expand_paths

    names, targets = _split_report_options(paths)
    if not names:
        raise typer.BadParameter("give at least one spec file, directory or glob")
    tolerance = _tolerance(rtol, atol)
    files, missing = expand_paths(names)
    reports = _run_files(files, keys, tolerance, jobs, debug)
    reports += [FileReport(name, errors=[f"{name}: no such file, directory or matching spec"]) for name in missing]
    print_reports(reports, lang.value)
    _write_reports(reports, targets, lang.value)
    raise typer.Exit(exit_code(reports))


@app.command()
def check(
    spec: Path = typer.Argument(..., help="The problem spec (YAML)."),
    answers: Path = typer.Option(..., "--answers", "-a", help="YAML file of answers: result name → answer."),
    rtol: Optional[str] = typer.Option(None, "--rtol", help="Relative tolerance for every answer."),
    atol: Optional[str] = typer.Option(None, "--atol", help="Absolute tolerance for every answer."),
    lang: Lang = typer.Option(Lang.hr, "--lang", "-l", help="Language of the report."),
    fmt: ReportFormat = typer.Option(ReportFormat.term, "--format", "-f", help="Report format."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
) -> None:
    """Compare someone's answers with the engine's; say which convention or mistake gives each wrong one.

    Exit code 0 when every answer is right, 1 when one is wrong, 2 when the spec or answer file is invalid.
    """
    from examsolver.render.verify_report import print_reports, to_json
    from examsolver.verify import exit_code

    tolerance = _tolerance(rtol, atol)
    report = _verify_one((spec, None, answers, tolerance, debug))
    if fmt == ReportFormat.json:
        sys.stdout.write(to_json([report], lang.value))
    else:
        print_reports([report], lang.value)
    raise typer.Exit(exit_code([report]))


# Start-up settings for a short-lived command (a user's own setting wins): the exact engine keeps
# numbers in object arrays and never calls BLAS, whose worker threads cost ~20 ms to start; pydantic
# validates only our own spec, so scanning every installed package for pydantic plugins is waste.
_PROCESS_DEFAULTS = {"OPENBLAS_NUM_THREADS": "1", "PYDANTIC_DISABLE_PLUGINS": "__all__"}
_PROCESS = {"own": False}       # True when main() runs the command line as its own process


def main() -> None:
    import gc
    import os

    for name, value in _PROCESS_DEFAULTS.items():
        os.environ.setdefault(name, value)
    # A command lives for a moment and keeps almost all it allocates (modules, the solution), so
    # collecting young objects every 700 allocations is wasted work, and so is the full collection
    # over every object at exit (~10% of a solve's instructions together).  Cycles are still
    # collected while it runs, every 10,000 allocations.
    gc.set_threshold(10_000)
    _PROCESS["own"] = True
    try:
        app()
    finally:
        gc.freeze()
