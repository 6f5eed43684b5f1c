"""Safe YAML with source positions, for files written by strangers.

We compose the node graph with PyYAML's safe loader (libyaml's C parser when
PyYAML was built with it: the same nodes, marks and tags, ten times faster) and build plain Python values
ourselves, so that (1) every value's line and column is known for error
messages, (2) a decimal like 1.3 keeps its text and stays exact (13/10, not the
float 1.3), and (3) anchors, aliases and merge keys are refused: they are never
needed in an exam problem and are the door to "billion laughs" expansion.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from examsolver.errors import Problem, SpecError

MAX_BYTES = 1_000_000
MAX_NODES = 200_000
MAX_DEPTH = 64
_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DecimalText(str):
    """A plain YAML scalar that looks like a decimal; kept as text to stay exact."""


@dataclass
class Document:
    path: str
    data: object
    positions: dict          # path tuple → (line, col), 1-based

    def where(self, loc: tuple) -> tuple[int | None, int | None]:
        """Position of the deepest existing prefix of loc."""
        for end in range(len(loc), -1, -1):
            if tuple(loc[:end]) in self.positions:
                return self.positions[tuple(loc[:end])]
        return None, None

    def problem(self, loc: tuple, message: str) -> Problem:
        line, col = self.where(loc)
        return Problem(self.path, line, col, message)


def load_file(path: str | Path) -> Document:
    return load_text(read_input(path), str(path))


def read_input(path: str | Path) -> bytes:
    """A regular file's bytes, at most MAX_BYTES + 1 of them: a FIFO, a device or /dev/zero is refused
    before reading (it could block or never end), and a huge file is not read whole."""
    import os
    import stat

    name = str(path)
    try:
        # O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise SpecError([Problem(name, None, None, f"cannot read file ({err.strerror})")]) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise SpecError([Problem(name, None, None, f"cannot read file ({what})")])
        chunks, left = [], MAX_BYTES + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError as err:
        raise SpecError([Problem(name, None, None, f"cannot read file ({err.strerror})")]) from None
    finally:
        os.close(fd)


def load_text(raw: bytes | str, name: str = "<string>") -> Document:
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if len(raw) > MAX_BYTES:
        line = raw.count(b"\n", 0, MAX_BYTES) + 1
        raise SpecError([Problem(name, line, 1, f"file larger than {MAX_BYTES} bytes")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line, col = _line_col(raw, err.start)
        raise SpecError([Problem(name, line, col, f"not UTF-8 text (byte {err.start})")]) from None
    if "\0" in text:
        line, col = _line_col(raw, raw.index(b"\0"))
        raise SpecError([Problem(name, line, col, "NUL byte in the file (not a text file)")])
    try:
        node = yaml.compose(text, Loader=_SAFE_LOADER)
    except yaml.MarkedYAMLError as err:
        deep = _too_deep(text) if "nesting depth" in str(err.problem) else None
        if deep is not None:        # newer libyaml stops at its own depth (1000): say ours, where it is passed
            raise SpecError([Problem(name, *deep, f"nested deeper than {MAX_DEPTH} levels")]) from None
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise SpecError([Problem(name, line, col, f"invalid YAML: {err.problem or err.context}")]) from None
    except yaml.YAMLError as err:
        raise SpecError([Problem(name, None, None, f"invalid YAML: {err}")]) from None
    if node is None:
        raise SpecError([Problem(name, 1, 1, "empty file (expected a YAML mapping)")])
    builder = _Builder(name, text)
    data = builder.build(node, (), 0)
    return Document(name, data, builder.positions)


def _too_deep(text: str) -> tuple[int, int] | None:
    """(line, column) of the flow collection ([ or {) that opens level MAX_DEPTH + 1, quoted text and
    comments skipped; None when the flow brackets never go that deep."""
    depth, quote, line, start = 0, None, 1, 0
    for i, ch in enumerate(text):
        if ch == "\n":
            line, start, quote = line + 1, i + 1, None if quote == "#" else quote
        elif quote is not None:
            if ch == quote and quote != "#":
                quote = None
        elif ch in "'\"" or ch == "#" and (i == start or text[i - 1] in " \t"):
            quote = ch
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line, i - start + 1
        elif ch in "]}":
            depth -= 1
    return None


def _line_col(raw: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of a byte offset."""
    start = raw.rfind(b"\n", 0, offset) + 1
    return raw.count(b"\n", 0, offset) + 1, len(raw[start:offset].decode("utf-8", "replace")) + 1


class _Builder:
    def __init__(self, name: str, text: str):
        self.name, self.text = name, text
        self.positions: dict = {}
        self.seen: set = set()
        self.count = 0
        self.constructor = yaml.constructor.SafeConstructor()

    def fail(self, node, message: str):
        mark = node.start_mark
        raise SpecError([Problem(self.name, mark.line + 1, mark.column + 1, message)])

    def build(self, node, path: tuple, depth: int):
        if id(node) in self.seen:
            self.fail(node, "YAML anchors and aliases are not allowed (write the value out)")
        self.seen.add(id(node))
        self.count += 1
        if self.count > MAX_NODES:
            self.fail(node, f"more than {MAX_NODES} YAML nodes")
        if depth > MAX_DEPTH:
            self.fail(node, f"nested deeper than {MAX_DEPTH} levels")
        self.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _COLLECTION_TAGS:
            self.fail(node, f"unsupported YAML tag {node.tag}")     # e.g. !!python/object on a list
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return self.sequence(node, path, depth)
        return self.scalar(node)

    def sequence(self, node, path: tuple, depth: int) -> list:
        """build() of every item; a plain scalar item (a tensor's entry: most nodes of a large spec)
        is checked and placed inline, with build()'s rules."""
        out, positions, seen = [], self.positions, self.seen
        inline = depth + 1 <= MAX_DEPTH
        for i, item in enumerate(node.value):
            if not (inline and type(item) is yaml.ScalarNode) or id(item) in seen:
                out.append(self.build(item, path + (i,), depth + 1))
                continue
            seen.add(id(item))
            self.count += 1
            if self.count > MAX_NODES:
                self.fail(item, f"more than {MAX_NODES} YAML nodes")
            mark = item.start_mark
            positions[path + (i,)] = (mark.line + 1, mark.column + 1)
            out.append(self.scalar(item))
        return out

    def mapping(self, node, path: tuple, depth: int) -> dict:
        out: dict = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.fail(key_node, "YAML merge keys (<<) are not allowed")
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, "mapping keys must be plain names")
            key = key_node.value
            if key in out:
                self.fail(key_node, f"duplicate key {key!r}")
            out[key] = self.build(value_node, path + (key,), depth + 1)
        return out

    def scalar(self, node):
        tag = node.tag
        if tag == "tag:yaml.org,2002:float":
            return DecimalText(node.value)
        if tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"):
            try:
                return self.constructor.construct_object(node)
            except (ValueError, KeyError):
                # libyaml resolves some multi-line plain text as int ("0x10 A layer …"): text it is;
                # an explicit tag on a wrong value (`!!int abc`, `!!bool maybe`) is refused
                if not self.text.startswith("!", node.start_mark.index):
                    return node.value
                self.fail(node, f"{node.value[:40]!r} is not a valid {tag.rpartition(':')[2]}")
        if tag == "tag:yaml.org,2002:str" or tag == "tag:yaml.org,2002:timestamp":
            return node.value
        self.fail(node, f"unsupported YAML tag {tag}")
