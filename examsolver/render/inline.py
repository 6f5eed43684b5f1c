"""Inline mathematics in text: `$…$` in problem statements and in the phrase catalogs.

(And `` `…` `` for a name from code, typeset as code.)

The text between dollars is a small, closed subset of LaTeX (what a TA writes on a
slide: `$\\mathbf{W}_1 = \\mathbf{I}$`, `$x^{(1)} = [1, 1]^T$`, `$h^{(t)}$`).  It is
read token by token against an allow-list, never passed through as it stands: the
LaTeX that reaches a document is rebuilt from the tokens, and the terminal gets the
same formula in Unicode.  So a statement cannot inject TeX, and no raw `_`, `^` or
brace reaches prose in any format.  A dollar sign in prose is written `\\$`.
"""

from __future__ import annotations

import re
import string

from examsolver.errors import ExamsolverError

# Unicode that pdfLaTeX cannot typeset in text, as math (also read inside `$…$`).
UNICODE_MATH = {
    "−": "-", "⋆": "\\star", "⊙": "\\odot", "⊘": "\\oslash", "∗": "\\ast", "∂": "\\partial", "≈": "\\approx",
    "≤": "\\leq", "≥": "\\geq", "≠": "\\neq", "←": "\\leftarrow", "→": "\\rightarrow", "⇒": "\\Rightarrow",
    "↦": "\\mapsto", "∈": "\\in", "∑": "\\sum", "∏": "\\prod", "√": "\\surd", "∞": "\\infty", "⋅": "\\cdot",
    "∘": "\\circ", "‖": "\\|", "∇": "\\nabla", "ℓ": "\\ell", "∀": "\\forall", "∃": "\\exists", "∝": "\\propto",
    "⌈": "\\lceil", "⌉": "\\rceil", "⌊": "\\lfloor", "⌋": "\\rfloor", "⟨": "\\langle", "⟩": "\\rangle",
    "𝟙": "\\mathbf{1}", "′": "'", "″": "''", "∣": "\\mid", "⊤": "\\top", "≡": "\\equiv", "∼": "\\sim",
    "⊗": "\\otimes", "⊕": "\\oplus", "∩": "\\cap", "∪": "\\cup", "⊂": "\\subset", "∅": "\\emptyset",
    "ϵ": "\\epsilon", "ϑ": "\\vartheta", "ϕ": "\\phi", "ℝ": "\\mathbb{R}", "ℕ": "\\mathbb{N}",
}
_GREEK = "αβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΥΦΨΩ"
_GREEK_NAMES = ("alpha beta gamma delta varepsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau "
                "upsilon varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega").split()
UNICODE_MATH.update({g: "\\" + name for g, name in zip(_GREEK, _GREEK_NAMES)})
UNICODE_MATH["ς"] = "\\varsigma"
# Latin-1 signs that text fonts typeset, but inside a formula are operators
_LATIN_MATH = {"·": "\\cdot", "×": "\\times", "±": "\\pm", "½": "\\tfrac{1}{2}"}
SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵀᵁᴾᴰⁿⁱˣʸᵏᵗᵐᵈᶦ", "0123456789+-=()TUPDnixyktmdi"))
SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ", "0123456789+-=()aehijklmnoprstuvx"))
_TO_SUP = {v: k for k, v in SUPERSCRIPTS.items() if k != "ᶦ"} | {"−": "⁻", "i": "ⁱ"}
_TO_SUB = {v: k for k, v in SUBSCRIPTS.items()} | {"−": "₋", ",": ","}

_GREEK_OF = {name: g for g, name in zip(_GREEK, _GREEK_NAMES)} | {"epsilon": "ε", "phi": "ϕ", "varsigma": "ς"}
_FUNCTIONS = {"ln", "log", "exp", "max", "min", "tanh", "sin", "cos", "arg", "det", "sup", "inf", "lim"}
_SYMBOLS = {"cdot": "·", "times": "×", "star": "⋆", "odot": "⊙", "oslash": "⊘", "ast": "∗", "partial": "∂",
            "sum": "Σ", "prod": "∏", "in": "∈", "notin": "∉", "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥",
            "ne": "≠", "neq": "≠", "approx": "≈", "to": "→", "rightarrow": "→", "leftarrow": "←", "mapsto": "↦",
            "Rightarrow": "⇒", "infty": "∞", "dots": "…", "ldots": "…", "cdots": "⋯", "vdots": "⋮", "lVert": "‖",
            "rVert": "‖", "|": "‖", "mid": "|", "vert": "|", "pm": "±", "mp": "∓", "top": "⊤", "nabla": "∇",
            "ell": "ℓ", "circ": "∘", "langle": "⟨", "rangle": "⟩", "lfloor": "⌊", "rfloor": "⌋", "lceil": "⌈",
            "rceil": "⌉", "surd": "√", "sim": "∼", "equiv": "≡", "propto": "∝", "forall": "∀", "exists": "∃",
            "quad": "  ", "qquad": "    ", ",": " ", ";": " ", ":": " ", "!": "", " ": " ", "{": "{", "}": "}",
            "cup": "∪", "cap": "∩", "subset": "⊂", "emptyset": "∅"}
_BINARY = {"cdot", "times", "star", "odot", "oslash", "ast", "in", "notin", "le", "leq", "ge", "geq", "ne", "neq",
           "approx", "to", "rightarrow", "leftarrow", "mapsto", "Rightarrow", "pm", "mp", "equiv", "sim", "propto",
           "mid", "circ", "cup", "cap", "subset"}
_ONE_ARG = {"mathbf", "boldsymbol", "mathrm", "text", "hat", "bar", "tilde", "sqrt", "mathbb", "operatorname",
            "mathit", "vec", "tfrac", "frac", "dfrac"}
_SIZING = {"left", "right", "big", "Big", "bigl", "bigr", "Bigl", "Bigr", "displaystyle"}
_ENVIRONMENTS = {"bmatrix", "pmatrix", "matrix", "vmatrix"}
COMMANDS = set(_GREEK_OF) | _FUNCTIONS | set(_SYMBOLS) | _ONE_ARG | _SIZING | {"begin", "end", "\\"}
_TOKEN = re.compile(r"\\([A-Za-z]+|.)|(.)", re.S)
# Outside \\text{…}, a formula holds ASCII letters and digits, these signs (they mean in TeX what they
# mean on paper), the Unicode above, and `{ } ^ _ &` only where the grammar of _Latex places them.
_MATH_SIGNS = set(string.ascii_letters + string.digits + " +-=*/()[]<>|.,;:!?'{}^_&")
_UNICODE = set(UNICODE_MATH) | set(_LATIN_MATH) | set(SUPERSCRIPTS) | set(SUBSCRIPTS)
# \\text{…} holds printable text without TeX's (and MathJax's) special characters
_NOT_IN_TEXT = set("\\{}$%#&~^_")
_DELIMITERS = set("()[]|./<>⟨⟩⌈⌉⌊⌋‖") | {"\\" + c for c in ("{", "}", "|", "langle", "rangle", "lfloor", "rfloor",
                                                        "lceil", "rceil", "lVert", "rVert", "vert")}
_PRIMES = {"'": "'", "′": "'", "″": "''"}
_SCRIPT_STARTS = set(_PRIMES) | set(SUPERSCRIPTS) | set(SUBSCRIPTS) | {"^", "_"}
_NO_ARGUMENT = {None, "}", "&", "\\\\", "\\end", "\\left", "\\right"} | _SCRIPT_STARTS
_UNCLOSED = {"}": "unbalanced braces", "\\end": "\\begin without \\end", "]": "\\sqrt[ without ]"}
MAX_DEPTH = 20              # groups and arguments inside each other (TeX allows 255, Python's stack less)
MATRIX_COLUMNS = 100        # the documents' MaxMatrixCols (templates/preamble.tex.j2)


class InlineMathError(ExamsolverError):
    """Inline math that is not in the allowed subset (an unknown command, an unbalanced brace)."""


def _refuse(what: str) -> InlineMathError:
    return InlineMathError(f"inline math: {what}")


def _shown(char: str) -> str:
    """A character of a refusal, visible whatever it is."""
    return repr(char) if char.isprintable() and char != " " else f"U+{ord(char):04X}"


def allowed_commands() -> str:
    """The allow-list, as a refusal states it."""
    def commands(names) -> str:
        return " ".join("\\" + n for n in sorted(names))

    return (f"Greek letters; {commands(_FUNCTIONS)}; {commands(_ONE_ARG)}; {commands(_SIZING)}; "
            f"\\begin{{{'|'.join(sorted(_ENVIRONMENTS))}}}; symbols such as \\cdot \\times \\leq \\to \\infty "
            f"\\partial \\sum")


TEXT, MATH, CODE = "text", "math", "code"
_CLOSE = {"$": MATH, "`": CODE}


def split(text: str) -> list[tuple[str, str]]:
    """[(kind, piece)]: `$…$` formulas, `` `…` `` names from code, and the prose between them
    (`\\$` is a dollar in prose; an unclosed dollar or backtick stands for itself)."""
    pieces, buf, mark, i = [], "", None, 0
    while i < len(text):
        ch = text[i]
        if text.startswith("\\$", i) and mark is None:
            buf += "$"
            i += 2
            continue
        if ch in _CLOSE and mark in (None, ch):
            if buf:
                pieces.append((_CLOSE[mark] if mark else TEXT, buf))
            buf, mark = "", None if mark else ch
        else:
            buf += ch
        i += 1
    if mark:
        buf = mark + buf
    if buf:
        pieces.append((TEXT, buf))
    return pieces


def has_math(text: str) -> bool:
    return any(kind == MATH for kind, _ in split(text))


def check_text(text: str) -> None:
    """InlineMathError for the first `$…$` formula of text outside the allowed subset (a spec's text, read)."""
    for kind, piece in split(text):
        if kind == MATH:
            to_latex(piece)


def tokens(latex: str) -> list[str]:
    """The formula's tokens: commands of the allow-list, allowed characters (whitespace as a space), and
    the text of `\\text{…}` as one token; anything else is an InlineMathError."""
    out, pos = [], 0
    while pos < len(latex):
        match = _TOKEN.match(latex, pos)
        command, char = match.groups()
        pos = match.end()
        if command is not None:
            if command not in COMMANDS:
                shown = command[:30] if command.isalpha() else _shown(command)
                raise _refuse(f"unknown command \\{shown} (allowed: {allowed_commands()})")
            out.append("\\" + command)
            if command == "text":
                text, pos = _text_argument(latex, pos)
                out += ["{", text, "}"] if text else ["{", "}"]
        elif char.isspace():
            out.append(" ")
        elif char in _MATH_SIGNS or char in _UNICODE:
            out.append(char)
        else:
            hint = " (write words as \\text{…})" if char.isalpha() else ""
            raise _refuse(f"{_shown(char)} is not allowed in a formula{hint}")
    return out


def _text_argument(latex: str, pos: int) -> tuple[str, int]:
    """The text of `\\text{…}` starting at pos (spaces before its brace allowed), and the position after it."""
    while pos < len(latex) and latex[pos].isspace():
        pos += 1
    if not latex.startswith("{", pos):
        raise _refuse("\\text needs its text in braces, \\text{…}")
    end = pos + 1
    while end < len(latex) and latex[end] != "}":
        ch = latex[end]
        if ch in _NOT_IN_TEXT or not (ch.isprintable() or ch.isspace()):
            raise _refuse(f"{_shown(ch)} cannot be in \\text{{…}} (plain text only)")
        end += 1
    if end == len(latex):
        raise _refuse("unbalanced braces")
    return re.sub(r"\s", " ", latex[pos + 1:end]), end + 1


class _Reader:
    def __init__(self, toks: list[str], separator: str):
        self.toks, self.i, self.sep = toks, 0, separator

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        self.i += 1
        return self.toks[self.i - 1]

    def skip_spaces(self) -> None:
        while self.peek() == " ":
            self.take()


# ----- LaTeX: rebuilt from the tokens -------------------------------------------------
def to_latex(latex: str, separator: str = ".", text=None) -> str:
    """The formula as LaTeX for a document, written anew from its tokens by a small grammar: every
    brace, script, \\left/\\right and environment closed, every command given its arguments, so the
    result compiles and holds only what the grammar writes.  Unicode as commands, `0,5` as `0{,}5`
    (decimal comma); text(words) writes the words of `\\text{…}` (a LaTeX document: its text escape)."""
    out = _Latex(tokens(latex), separator, text or str).formula()
    if "^^" in out:             # TeX reads ^^5c as a backslash: the grammar never writes two carets together
        raise _refuse("two carets together")
    return out


class _Latex(_Reader):
    """Reads the tokens by the grammar of a formula and writes each piece as LaTeX."""

    def __init__(self, toks: list[str], separator: str, text):
        super().__init__(toks, separator)
        self.text, self.depth = text, 0

    def formula(self) -> str:
        """The whole formula, without its outer spaces (tokens: a control space `\\ ` stays whole)."""
        while self.toks and self.toks[-1] == " ":
            self.toks.pop()
        self.skip_spaces()
        return self.group(None)

    def group(self, stop: str | None, matrix: bool = False) -> str:
        """Atoms and their scripts up to the token stop (left for the caller); `&` and `\\\\` only in a
        matrix's body."""
        out, marks, lefts, columns = [], [], 0, 1
        while (tok := self.peek()) != stop:
            if tok is None or tok in ("}", "\\end"):
                raise _refuse(_UNCLOSED[stop] if tok is None else "\\end without \\begin" if tok == "\\end" and
                              stop != "}" else "unbalanced braces")
            if tok == " ":
                out.append(self.take())
            elif tok in ("&", "\\\\"):
                if not matrix:
                    raise _refuse(f"{tok} only between the cells of a matrix")
                columns = columns + 1 if tok == "&" else 1
                if lefts or columns > MATRIX_COLUMNS:
                    raise _refuse("\\left without \\right" if lefts else f"more than {MATRIX_COLUMNS} matrix columns")
                out.append(self.take() + ("{}" if self.next_is("[", "*") else ""))   # not \\[…] or \\*
                marks = []
            elif tok in _SCRIPT_STARTS:
                out.append(self.script(marks))
            else:
                if tok == "\\right" and not lefts:
                    raise _refuse("\\right without \\left")
                lefts += {"\\left": 1, "\\right": -1}.get(tok, 0)
                marks = []
                out.append(self.atom())
        if lefts:
            raise _refuse("\\left without \\right")
        return "".join(out)

    def next_is(self, *toks: str) -> bool:
        j = self.i
        while j < len(self.toks) and self.toks[j] == " ":
            j += 1
        return j < len(self.toks) and self.toks[j] in toks

    def atom(self) -> str:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _refuse(f"nested deeper than {MAX_DEPTH} levels")
        tok = self.take()
        if tok == "{":
            out = "{" + self.group("}") + self.take()
        elif tok.startswith("\\") and len(tok) > 1:
            out = self.command(tok[1:])
        else:
            out = self.char(tok)
        self.depth -= 1
        return out

    def char(self, tok: str) -> str:
        if tok == "," and self.sep == "," and self.i >= 2 and self.toks[self.i - 2].isdigit() \
                and (self.peek() or "").isdigit():
            return "{,}"
        if tok in UNICODE_MATH or tok in _LATIN_MATH:
            command = UNICODE_MATH.get(tok) or _LATIN_MATH[tok]
            return command + (" " if command[-1].isalpha() else "")
        return tok

    def script(self, marks: list) -> str:
        """A superscript, a subscript or primes; TeX's double superscript is refused here."""
        tok = self.peek()
        if tok in _PRIMES:
            out = ""
            while self.peek() in _PRIMES:
                out += _PRIMES[self.take()]
            if "^" in marks:
                raise _refuse("double superscript")
            marks.append("^")
            if self.next_is("^") or self.next_is(*SUPERSCRIPTS):    # x'^2: TeX's prime takes it in
                self.skip_spaces()
                out += self.raised()
            return out
        if tok in SUBSCRIPTS or tok == "_":
            mark, out = "_", self.lowered()
        else:
            mark, out = "^", self.raised()
        if mark in marks:
            raise _refuse("double " + ("subscript" if mark == "_" else "superscript"))
        marks.append(mark)
        return out

    def raised(self) -> str:
        return self.scripted("^", SUPERSCRIPTS)

    def lowered(self) -> str:
        return self.scripted("_", SUBSCRIPTS)

    def scripted(self, mark: str, table: dict) -> str:
        if self.peek() in table:          # x⁽¹⁾: a run of script characters is one script
            run = ""
            while self.peek() in table:
                run += table[self.take()]
            return mark + "{" + run + "}"
        self.take()
        if mark == self.peek() == "^":
            raise _refuse("^^ is not allowed (TeX reads ^^ and what follows as another character)")
        return mark + self.argument("a " + ("superscript" if mark == "^" else "subscript"))

    def argument(self, owner: str) -> str:
        """The argument of a script or a command, braced (a single letter or digit stays as it is)."""
        self.skip_spaces()
        tok = self.peek()
        if tok in _NO_ARGUMENT:
            raise _refuse(f"{owner} needs an argument")
        out = self.atom()
        return out if tok == "{" or len(out) == 1 and out.isalnum() else "{" + out + "}"

    def command(self, name: str) -> str:
        if name == "text":
            self.take()
            words = self.take() if self.peek() != "}" else ""
            return "\\text{" + self.text(words) + self.take()
        if name in ("frac", "tfrac", "dfrac"):
            return f"\\{name}" + self.braced(f"\\{name}") + self.braced(f"\\{name}")
        if name == "sqrt":
            index = ""
            if self.next_is("["):          # its argument braced: a ] inside cannot end it
                self.skip_spaces()
                self.take()
                index = "[{" + self.group("]") + "}" + self.take()
            return "\\sqrt" + index + self.braced("\\sqrt")
        if name in _ONE_ARG:
            return f"\\{name}" + self.braced(f"\\{name}")
        if name == "begin":
            return self.matrix()
        if name in _SIZING and name != "displaystyle":
            self.skip_spaces()
            tok = self.take() if self.peek() is not None else None
            if tok not in _DELIMITERS:
                raise _refuse(f"\\{name} needs a delimiter such as ( ) [ ] | . \\{{ \\}} \\langle")
            return f"\\{name}" + self.char(tok)
        return "\\" + name

    def braced(self, owner: str) -> str:
        arg = self.argument(owner)
        return arg if arg.startswith("{") else "{" + arg + "}"

    def matrix(self) -> str:
        env = self.environment("\\begin")
        body = self.group("\\end", matrix=True)
        self.take()
        if self.environment("\\end") != env:
            raise _refuse(f"\\begin{{{env}}} ended by another \\end")
        return f"\\begin{{{env}}}{body}\\end{{{env}}}"

    def environment(self, owner: str) -> str:
        """The name in braces after \\begin or \\end: a matrix."""
        name = ""
        if self.peek() == "{":
            self.take()
            while self.peek() not in (None, "}") and len(name) < 20:
                name += self.take()
            self.take() if self.peek() == "}" else None
        if name not in _ENVIRONMENTS:
            allowed = ", ".join(sorted(_ENVIRONMENTS))
            raise _refuse(f"unknown environment {name[:20]!r} after {owner} (allowed: {allowed})")
        return name


# ----- Unicode: the same formula for the terminal --------------------------------------
class _Plain(_Reader):
    """A small recursive reader of the token list that writes Unicode (of a formula _Latex accepted)."""

    def group(self, stop: str | None = None) -> str:
        out = ""
        while self.peek() is not None and self.peek() != stop:
            if stop is None and self.peek() == "}":
                self.take()
                continue
            out += self.atom()
        if stop is not None and self.peek() == stop:
            self.take()
        return out

    def argument(self) -> str:
        while self.peek() == " ":
            self.take()
        if self.peek() == "{":
            self.take()
            return self.group("}")
        return self.atom() if self.peek() is not None else ""

    def raw_argument(self) -> str:
        """The letters of `{…}` after \\begin / \\end."""
        if self.peek() != "{":
            return ""
        self.take()
        name = ""
        while self.peek() not in (None, "}"):
            name += self.take()
        self.take() if self.peek() == "}" else None
        return name

    def atom(self) -> str:
        tok = self.take()
        if tok == "{":
            text = self.group("}")
        elif tok.startswith("\\") and len(tok) > 1:
            text = self.command(tok[1:])
        else:
            text = "−" if tok == "-" else tok
        return text + self.scripts()

    def scripts(self) -> str:
        out = ""
        while self.peek() in ("_", "^"):
            mark = self.take()
            arg = self.argument()
            table = _TO_SUB if mark == "_" else _TO_SUP
            word = mark == "_" and sum(ch.isalpha() for ch in arg) > 1    # W_in, as the equations write it
            if all(ch in table for ch in arg) and not word:
                out += "".join(table[ch] for ch in arg)
            else:
                plain = len(arg) == 1 or word and arg.isalnum()
                out += ("_" if mark == "_" else "^") + (arg if plain else f"({arg})")
        return out

    def command(self, name: str) -> str:
        if name in _BINARY:
            return f" {_SYMBOLS[name]} "
        if name in ("partial", "nabla", "surd"):
            if self.peek() == " ":          # a prefix: ∂L, not ∂ L
                self.take()
            return _SYMBOLS[name]
        if name in _GREEK_OF:
            return _GREEK_OF[name]
        if name in _FUNCTIONS:
            return name + " "
        if name in _SYMBOLS:
            return _SYMBOLS[name]
        if name in _SIZING:
            return ""
        if name in ("frac", "tfrac", "dfrac"):
            num, den = self.argument(), self.argument()
            return f"{_wrap(num)}/{_wrap(den)}"
        if name == "sqrt":
            index = ""
            self.skip_spaces()
            if self.peek() == "[":
                self.take()
                index = self.group("]")
            raised = "".join(_TO_SUP.get(ch, "") for ch in index)
            return (raised if len(raised) == len(index) else f"({index})") + "√" + _wrap(self.argument())
        if name == "hat":
            return self.argument() + "\u0302"
        if name in ("bar", "tilde", "vec"):
            return self.argument() + {"bar": "\u0304", "tilde": "\u0303", "vec": "\u20d7"}[name]
        if name == "mathbb":
            arg = self.argument()
            return {"R": "ℝ", "N": "ℕ", "Z": "ℤ", "E": "𝔼"}.get(arg, arg)
        if name == "begin":
            return self.matrix(self.raw_argument())
        if name in ("end", "\\"):
            self.raw_argument() if name == "end" else None
            return ""
        return self.argument()       # \mathbf, \mathrm, \text, \operatorname …: the letters themselves

    def matrix(self, env: str) -> str:
        if env not in _ENVIRONMENTS:
            raise InlineMathError(f"inline math: unknown environment {env}")
        rows, cells, cell = [], [], ""
        while self.peek() is not None:
            if self.peek() == "\\end":
                self.take()
                self.raw_argument()
                break
            tok = self.peek()
            if tok == "&":
                self.take()
                cells.append(cell.strip())
                cell = ""
            elif tok == "\\\\":
                self.take()
                rows.append(cells + [cell.strip()])
                cells, cell = [], ""
            else:
                cell += self.atom()
        if cell.strip() or cells:
            rows.append(cells + [cell.strip()])
        item = "; " if self.sep == "," else ", "
        inner = [item.join(r) for r in rows]
        return "[" + "".join(inner) + "]" if len(inner) <= 1 else "[" + item.join(f"[{r}]" for r in inner) + "]"


def _wrap(text: str) -> str:
    return f"({text})" if re.search(r"[-+−·/ ]", text.strip()) else text


def to_plain(latex: str, separator: str = ".") -> str:
    """The formula in Unicode (the terminal, JSON messages): only what a document could show."""
    to_latex(latex, separator)
    text = _Plain(tokens(latex), separator).group()
    return re.sub(r" {2,}", " ", text).strip()


def plain_text(text: str, separator: str = ".") -> str:
    """Text with its `$…$` spans written in Unicode."""
    return "".join(to_plain(piece, separator) if kind == MATH else piece for kind, piece in split(text))
