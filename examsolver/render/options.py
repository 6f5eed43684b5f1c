"""What a document holds beyond the solution itself: one small value passed through every format."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    key: bool = False             # the answer key (the TA's version); students' documents leave it out
    torch: bool | None = None     # the closing PyTorch check code; None: on in slides (as the 2022 slides), off elsewhere
    sheet: bool = False           # the exam sheet: the statements only, from the same specs
    course: str = ""              # title page: the course, who wrote it, its date
    author: str = ""
    date: str = ""
    partial: int = 0              # Moodle: the credit (%) of a wrong answer the mistake catalogue explains

    def torch_in(self, fmt: str) -> bool:
        if self.sheet:
            return False
        return self.torch if self.torch is not None else fmt == "beamer"

    def shown(self, solutions: list) -> list:
        """The solutions as this document shows them: for the exam sheet, only what the students get."""
        if not self.sheet:
            return solutions
        from dataclasses import replace

        return [replace(s, sections=[], conventions=[], warnings=[], checks=[], alternatives=[], results={})
                for s in solutions]
