"""One exception hierarchy; only the CLI turns it into messages and exit codes."""

from __future__ import annotations

from dataclasses import dataclass


INTERNAL_ERROR = 3     # exit code of a bug of ours (0 success, 1 a wrong answer, 2 an invalid input)


def internal_error_line(name: str, err: BaseException) -> str:
    """The one line that reports a bug of ours on an input file."""
    text = " ".join(str(err).split())[:200]
    return f"{name + ': ' if name else ''}internal error: {type(err).__name__}: {text} (rerun with --debug and report it)"


class ExamsolverError(Exception):
    """Base of every error a user can cause."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One located mistake in an input file."""

    file: str
    line: int | None
    col: int | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}:{self.col or 1}"
        return f"{where}: {self.message}"


class SpecError(ExamsolverError):
    """A spec or answer file is unreadable or invalid; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class EngineError(ExamsolverError):
    """The computation asked for is impossible (shape mismatch, log of a negative, …)."""


class ExprError(ValueError):
    """A number or expression in a spec does not parse (raised inside validation)."""
