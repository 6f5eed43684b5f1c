"""Text from a spec in generated Python source, safely: the one place that knows how.

A spec comes from a stranger, and its names, ids and titles can hold any character: quotes, triple
quotes, backslashes, newlines, NUL, U+2028, `#`, braces.  Generated code (the PyTorch check script,
the numpy code of symbolic problems) writes such text only

- as a string literal made by `literal` (a value, never code),
- escaped (`escaped`) inside a literal or docstring of its own, or as a `comment`,

and names its variables with `identifier`, a fresh ASCII identifier made of any text.

Escaped text is one line of printable characters without a raw backslash (and without a quote, but in
a comment): it cannot end the literal, docstring or comment it stands in, and a listing's line breaker
(which finds a literal's end by its quotes) reads a literal as one string.
"""

from __future__ import annotations

import builtins
import keyword
import re

# names the statements of generated code read: a variable by one of these names would change what they do
BUILTINS = frozenset(dir(builtins))
QUOTES = "'\""
_ESCAPES = {"\\": "\\\\", "'": "\\x27", '"': "\\x22"}
MAX_IDENTIFIER = 40


def escaped(text, keep: str = "") -> str:
    """text as the body of a Python string literal: printable characters as they are (č, θ, ²), quotes and
    the backslash as escapes (the quotes in keep as they are), every other character (line ends, NUL,
    U+2028, direction marks) as repr writes it."""
    return "".join(ch if ch in keep else _ESCAPES.get(ch) or (ch if ch.isprintable() else repr(ch)[1:-1])
                   for ch in str(text))


def literal(text) -> str:
    """A Python string literal whose value is text."""
    return f'"{escaped(text)}"'


def comment(text) -> str:
    """A comment saying text, on one line whatever text holds."""
    return f"# {escaped(text, keep=QUOTES)}"


def identifier(text, taken: set) -> str:
    """An ASCII identifier for text, not a keyword, a builtin or a name in taken (to which it is added): the
    text's letters, digits and _ (others become _), v_ in front unless it starts with a letter."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", str(text))[:MAX_IDENTIFIER]
    if not base[:1].isalpha() or keyword.iskeyword(base) or keyword.issoftkeyword(base):
        base = f"v_{base}"
    name = base
    while name in taken or name in BUILTINS:
        name += "_"
    taken.add(name)
    return name


def is_plain_name(name) -> bool:
    """A name that may stand in code as it is: ASCII letters, digits and _, a letter first, not a keyword."""
    return (isinstance(name, str) and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name) is not None
            and not keyword.iskeyword(name) and not keyword.issoftkeyword(name))
