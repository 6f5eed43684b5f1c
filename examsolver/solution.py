"""The contract between the engine and the renderers.

The engine produces a Solution: sections of steps, each step a sentence (a
phrase key with arguments, never text) and an equation (left side, generic
forms, values to substitute, result).  Renderers turn it into text; they never
compute.  Everything is language-neutral.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from examsolver.mathnodes import Node


@dataclass(frozen=True)
class Phrase:
    """A sentence from the phrase catalogs: key plus format arguments.

    Arguments are strings, numbers, formula nodes (printed inline as math),
    other Phrases (translated), or per-language dicts {"hr": …, "en": …}.
    """

    key: str
    args: dict = field(default_factory=dict)


@dataclass
class Step:
    """One numbered equation: lhs = forms[0] = … = forms[-1]|values = result."""

    lhs: Node | None = None
    forms: list[Node] = field(default_factory=list)
    bindings: dict = field(default_factory=dict)   # node → value, shown in the last form
    result: object = None                          # a value (Exact / ndarray) or a Node
    layout: str = "col"                            # how a vector result is laid out
    text: Phrase | None = None                     # sentence before the equation
    number: int | None = None
    approx: bool = True                            # show decimals beside irrational results
    extra_forms: list[Node] = field(default_factory=list)  # forms after the substitution


def unique_phrases(phrases: list) -> list:
    """Each phrase key once, first occurrence kept (a convention stated by several layers)."""
    seen, out = set(), []
    for phrase in phrases:
        if phrase.key not in seen:
            seen.add(phrase.key)
            out.append(phrase)
    return out


@dataclass
class Table:
    """A table: header phrases and rows of cells (values, nodes, strings)."""

    header: list
    rows: list[list]
    caption: Phrase | None = None


@dataclass
class Figure:
    """A figure drawn by render/plots.py from data (never a file path)."""

    kind: str                 # a key of the plot registry
    data: dict
    caption: Phrase | None = None


@dataclass
class Code:
    """Source code the solution presents (e.g. a generated Layer class)."""

    language: str
    source: str
    caption: Phrase | None = None


Block = Step | Phrase | Table | Figure | Code


@dataclass
class Section:
    title: Phrase
    blocks: list[Block] = field(default_factory=list)

    def add(self, block: Block) -> Block:
        self.blocks.append(block)
        return block

    def say(self, key: str, **args) -> None:
        self.blocks.append(Phrase(key, args))


def literal_text(literal) -> str:
    """An answer-key entry as written, without Python's quotes: [[1.25, 0.25], …]; 0.67 ± 0.01."""
    if isinstance(literal, dict):
        text = literal_text(literal.get("value", ""))
        if "tol" in literal or "atol" in literal:
            text += f" ± {literal_text(literal.get('atol', literal.get('tol')))}"
        if "rtol" in literal:
            text += f" (rtol {literal_text(literal['rtol'])})"
        return text
    if isinstance(literal, list):
        return "[" + ", ".join(literal_text(v) for v in literal) + "]"
    return str(literal)


@dataclass
class AnswerCheck:
    """One answer-key entry compared with the computed result."""

    name: str
    expected: str
    computed: object
    status: str                     # "match", "mismatch", "missing"
    detail: Phrase | None = None


@dataclass
class Solution:
    problem_id: str
    title: dict                     # {"hr": …, "en": …}
    source: str = ""
    statement: dict | None = None   # per language, optional
    conventions: list[Phrase] = field(default_factory=list)
    warnings: list[Phrase] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    results: dict = field(default_factory=dict)   # result name → value
    checks: list[AnswerCheck] = field(default_factory=list)
    alternatives: list = field(default_factory=list)   # verify.Alternative: results under another convention
    document: object = field(default=None, repr=False, compare=False)   # the spec it solves (exporters rebuild from it)
    title_page: dict = field(default_factory=dict, repr=False)          # course, author, date from the spec's `document:`
    lang: str = field(default="hr", repr=False, compare=False)          # the language it displays itself in
    # results under other conventions {field: value} computed by the engine from what this solve built,
    # or None where it cannot (diagnose/ then solves the document again); set by kinds that can
    under: object = field(default=None, repr=False, compare=False)

    def __getitem__(self, name: str):
        """A result by its name (as in the JSON and the answer keys): solution["conv1.W.grad"]."""
        if name not in self.results:
            raise KeyError(f"no result {name!r} (known: {', '.join(self.results)})")
        return self.results[name]

    def _repr_markdown_(self) -> str:
        """Jupyter: the worked solution as Markdown with math."""
        from examsolver.render.output import render_document

        return render_document([self], "md", self.lang)

    def _repr_html_(self) -> str:
        """Jupyter: the worked solution as HTML with MathML (self-contained)."""
        from examsolver.render.output import render_document

        return render_document([self], "html", self.lang)

    def section(self, key: str, **args) -> Section:
        section = Section(Phrase(key, args))
        self.sections.append(section)
        return section

    def number_equations(self) -> None:
        n = 0
        for section in self.sections:
            for block in section.blocks:
                if isinstance(block, Step) and block.lhs is not None:
                    n += 1
                    block.number = n
