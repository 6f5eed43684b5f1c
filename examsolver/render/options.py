"""What a document holds beyond the solution itself: one small value passed through every format."""

from __future__ import annotations

from dataclasses import dataclass, replace


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

    def with_title_page(self, solutions: list, lang: str) -> "Options":
        """Course, author and date: the command line's, else the first spec's (in the order given) that
        has one; a later spec's different value is not used (booklets of several exams name theirs in
        the sections)."""
        found = {}
        for name in ("course", "author", "date"):
            texts = (_in(s.title_page.get(name), lang) for s in solutions if not getattr(self, name))
            found[name] = next((t for t in texts if t), getattr(self, name))
        return replace(self, **found)

    def title_page_conflicts(self, solutions: list, lang: str) -> list[str]:
        """Title-page fields whose value differs between specs of one booklet (not set on the command
        line): what with_title_page leaves out, to be said rather than dropped silently."""
        said = []
        for name in ("course", "author", "date"):
            if getattr(self, name):
                continue
            texts = [(getattr(s.document, "path", s.problem_id), _in(s.title_page.get(name), lang)) for s in solutions]
            texts = [(path, text) for path, text in texts if text]
            for path, text in texts[1:]:
                if text != texts[0][1]:
                    said.append(f"{path}: document.{name} {text!r} differs from {texts[0][1]!r} of {texts[0][0]}; "
                                f"the booklet's title page uses the first (or give --{name})")
                    break
        return said

    def shown(self, solutions: list) -> list:
        """The solutions as this document shows them: for the exam sheet, only what the students get."""
        if not self.sheet:
            return solutions
        return [replace(s, sections=[], conventions=[], warnings=[], checks=[], alternatives=[], results={})
                for s in solutions]


def _in(text, lang: str) -> str:
    """A title-page field in the language: the same text for all, or {hr: …, en: …} (the other
    language's when this one is missing)."""
    if isinstance(text, dict):
        return text.get(lang) or next((t for t in text.values() if t), "")
    return text or ""
