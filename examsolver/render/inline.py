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
            "cup": "∪", "cap": "∩", "subset": "⊂", "emptyset": "∅", "Rightarrow ": "⇒"}
_BINARY = {"cdot", "times", "star", "odot", "oslash", "ast", "in", "notin", "le", "leq", "ge", "geq", "ne", "neq",
           "approx", "to", "rightarrow", "leftarrow", "mapsto", "Rightarrow", "pm", "mp", "equiv", "sim", "propto",
           "mid", "circ", "cup", "cap", "subset"}
_ONE_ARG = {"mathbf", "boldsymbol", "mathrm", "text", "hat", "bar", "tilde", "sqrt", "mathbb", "operatorname",
            "mathit", "vec", "tfrac", "frac", "dfrac"}
_SIZING = {"left", "right", "big", "Big", "bigl", "bigr", "Bigl", "Bigr", "displaystyle"}
_ENVIRONMENTS = {"bmatrix", "pmatrix", "matrix", "vmatrix"}
COMMANDS = set(_GREEK_OF) | _FUNCTIONS | set(_SYMBOLS) | _ONE_ARG | _SIZING | {"begin", "end", "\\"}
_TOKEN = re.compile(r"\\([A-Za-z]+|.)|(.)", re.S)
_FORBIDDEN = set("%#~$\x00")


class InlineMathError(ExamsolverError):
    """Inline math that is not in the allowed subset (an unknown command, an unbalanced brace)."""


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


def tokens(latex: str) -> list[str]:
    """The formula's tokens; anything outside the allow-list is an InlineMathError."""
    out, depth = [], 0
    for match in _TOKEN.finditer(latex):
        command, char = match.groups()
        if command is not None:
            if command not in COMMANDS:
                raise InlineMathError(f"inline math: unknown command \\{command} in ${latex}$")
            out.append("\\" + command)
            continue
        if char in _FORBIDDEN:
            raise InlineMathError(f"inline math: {char!r} is not allowed in ${latex}$")
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            raise InlineMathError(f"inline math: unbalanced braces in ${latex}$")
        out.append(char)
    if depth:
        raise InlineMathError(f"inline math: unbalanced braces in ${latex}$")
    for env in re.findall(r"\\(?:begin|end)\{([^}]*)\}", latex):
        if env not in _ENVIRONMENTS:
            raise InlineMathError(f"inline math: unknown environment {env} in ${latex}$")
    return out


# ----- LaTeX: rebuilt from the tokens -------------------------------------------------
def to_latex(latex: str, separator: str = ".") -> str:
    """The formula as LaTeX for a document: Unicode as commands, `0,5` as `0{,}5` (decimal comma)."""
    toks = tokens(latex)
    out, i = [], 0
    while i < len(toks):
        tok = toks[i]
        for table, mark in ((SUPERSCRIPTS, "^"), (SUBSCRIPTS, "_")):
            if tok in table:        # x⁽¹⁾: a run of script characters is one script
                j = i
                while j < len(toks) and toks[j] in table:
                    j += 1
                out.append(mark + "{" + "".join(table[t] for t in toks[i:j]) + "}")
                i = j
                break
        else:
            if tok == "," and separator == "," and 0 < i < len(toks) - 1 and toks[i - 1].isdigit() \
                    and toks[i + 1].isdigit():
                out.append("{,}")
            elif tok in UNICODE_MATH or tok in _LATIN_MATH:
                command = UNICODE_MATH.get(tok) or _LATIN_MATH[tok]
                out.append(command + (" " if command[-1].isalpha() else ""))
            else:
                out.append(tok)
            i += 1
    return "".join(out).strip()


# ----- Unicode: the same formula for the terminal --------------------------------------
class _Plain:
    """A small recursive reader of the token list that writes Unicode."""

    def __init__(self, toks: list[str], separator: str):
        self.toks, self.i, self.sep = toks, 0, separator

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        self.i += 1
        return self.toks[self.i - 1]

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
            return "√" + _wrap(self.argument())
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
        return "[" + inner[0] + "]" if len(inner) == 1 else "[" + item.join(f"[{r}]" for r in inner) + "]"


def _wrap(text: str) -> str:
    return f"({text})" if re.search(r"[-+−·/ ]", text.strip()) else text


def to_plain(latex: str, separator: str = ".") -> str:
    """The formula in Unicode (the terminal, JSON messages)."""
    text = _Plain(tokens(latex), separator).group()
    return re.sub(r" {2,}", " ", text).strip()


def plain_text(text: str, separator: str = ".") -> str:
    """Text with its `$…$` spans written in Unicode."""
    return "".join(to_plain(piece, separator) if kind == MATH else piece for kind, piece in split(text))
