"""The counting problem kind: tensor shapes and parameter counts of architectures.

Architectures are given by layer kinds and sizes only (no weights).  What a
layer's parameters are lives in its op class (`param_shapes(sizes)`, and
`buffer_shapes` for stored statistics); this module only asks and presents.

The formula per layer is written with letters and then with numbers
(c_out·c_in·k·k + c_out = 32·32·3·3 + 32 = 9248).  The letters are recovered by
probing: the op's param_shapes is called with a distinct large prime for every
size, so each dimension factors into a constant times the sizes it is made of;
a second probe with other primes must give the same structure, otherwise the
formula is shown with numbers only.  Sizes may be names (`C`): the count is then
a sympy expression (2·C), built from Symbols, never from parsed text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from itertools import groupby
from math import gcd
from typing import Any, Literal

import numpy as np
from pydantic import Field, create_model

from examsolver.engine.ops import LAYERS
from examsolver.engine.scalar import Exact
from examsolver.errors import EngineError, SpecError
from examsolver.mathnodes import Call, Const, Expr, Op, Paren, Sym, mul
from examsolver.solution import Figure, Phrase, Solution, Step, Table
from examsolver.spec.model import TITLE_PAGE, Conventions, Localized, Strict, Text

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,15}$")
PROBES = ([1009, 1013, 1019, 1021, 1031, 1033, 1039, 1049, 1051, 1061, 1063, 1069, 1087, 1091, 1093, 1097],
          [2003, 2011, 2017, 2027, 2029, 2039, 2053, 2063, 2069, 2081, 2083, 2087, 2089, 2099, 2111, 2113])
MAX_SIZE = 10**9
# letters for PyTorch's argument names; a spec may set its own with `symbols:`
LETTERS = {"in_channels": "c_in", "out_channels": "c_out", "kernel_size": "k", "num_features": "C",
           "in_features": "n_in", "out_features": "n_out"}


# ----- schema --------------------------------------------------------------------
class Architecture(Strict):
    name: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9_]{0,40}$")
    title: Localized | None = None
    layers: list[Any] = Field(min_length=1, max_length=100)
    largest: bool = False          # which weight matrix has the most entries
    formula: bool = False          # the output as one formula (chains of affine layers and activations)
    diagram: bool = False          # nodes and edges of a chain of fully connected layers
    receptive_field: bool = False  # how much of the input one position of each layer sees


class CountingConventions(Strict):
    """What a count depends on: the layout of the weight matrices, as in the network kind (any other
    convention changes no shape and is refused, not ignored)."""

    weights: Conventions.model_fields["weights"].annotation = "out_in"


class AnchorCandidates(Strict):
    classes: int | str
    per_class: int | str


@cache   # built once per process (see spec/model.py network_spec_model)
def counting_spec_model():
    return create_model(
        "CountingSpec", __base__=Strict,
        id=(Text, ...),
        kind=(Literal["counting"], ...),
        source=(Text, ""),
        document=TITLE_PAGE,
        title=(Localized, Localized()),
        statement=(Localized | None, None),
        architectures=(list[Architecture], Field(default_factory=list, max_length=20)),
        anchor_candidates=(AnchorCandidates | None, None),
        conventions=(CountingConventions, Field(default_factory=CountingConventions)),
        answers=(dict[str, Any], Field(default_factory=dict)),
    )


# ----- sizes ------------------------------------------------------------------------
def _sympy():
    import sympy

    return sympy


def _symbol(name: str):
    """A sympy Symbol from a checked name (the constructor does not parse)."""
    if not NAME.match(name):
        raise EngineError(f"{name!r} is not a size: use a number or a name such as C or d_h")
    return _sympy().Symbol(name)


MAX_SIZE_TEXT = 100


def _size_expression(text: str):
    """A size written with letters (n, d_h, n**2, 2*d + 1): a polynomial in them with integer
    coefficients, built by the project's allow-listed parser (spec/expr.parse_symbolic) with every
    name it contains declared a Symbol; sympy never parses the text."""
    import ast

    from examsolver.errors import ExprError
    from examsolver.spec.expr import parse_symbolic

    refusal = f"{text[:40]!r} is not a size: use a number, a name such as C or d_h, or a product of names (n**2)"
    if len(text) > MAX_SIZE_TEXT:
        raise EngineError(refusal)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise EngineError(refusal) from None
    names = sorted({node.id for node in ast.walk(tree) if isinstance(node, ast.Name)})
    if not names or not all(NAME.match(n) for n in names):
        raise EngineError(refusal)
    symbols = {n: _sympy().Symbol(n) for n in names}
    try:
        size = parse_symbolic(text, symbols)
    except ExprError as err:
        raise EngineError(f"{refusal} ({err})") from None
    sympy = _sympy()
    if not getattr(size, "free_symbols", None) or not size.is_polynomial(*size.free_symbols) \
            or not all(c.is_Integer for c in sympy.Poly(size, *sorted(size.free_symbols, key=str)).coeffs()):
        raise EngineError(refusal)
    return size


@dataclass
class Dim:
    """One dimension: const · Π size^exponent, in the order the sizes appear."""

    const: int
    sizes: list = field(default_factory=list)     # size keys, repeated by exponent


@dataclass
class Counted:
    """One layer's parameters, buffers and activations, counted."""

    name: str
    kind: str
    params: dict            # tensor → shape (tuple of int or sympy)
    buffers: dict
    io: dict
    formula: Any            # mathnode (letters) or None
    bindings: dict
    count: Any              # Exact or sympy
    buffer_count: Any
    window: Any = ()        # what one output position sees of the input: Layer.window, None (all of it),
                            # or "letters" (sizes given as letters: not computed)
    io_role: str = "counting.role.io"       # how the table calls the io rows (Layer.io_role)


def _split_sizes(cls, raw: dict, where: str) -> tuple[dict, list, dict]:
    """(sizes passed to the op, keys that are sizes, letter of each size key)."""
    options = set(cls.count_options)
    letters = dict(raw.pop("symbols", None) or {})
    sizes, keys = {}, []
    for key, value in raw.items():
        if key in options or value is None:
            sizes[key] = value
        elif isinstance(value, list) and value and all(_is_size(v) for v in value):   # kernel_size: [3, 3]
            sizes[key] = value
        elif isinstance(value, (bool, list)):
            raise EngineError(f"{where}: size {key} must be a number between 1 and {MAX_SIZE} or a name")
        elif isinstance(value, int):
            if not 0 < value <= MAX_SIZE:
                raise EngineError(f"{where}: size {key} = {value} must be between 1 and {MAX_SIZE}")
            sizes[key] = value
            keys.append(key)
        elif isinstance(value, str):
            sizes[key] = _size_expression(value)
            keys.append(key)
            if NAME.match(value.strip()):              # a size given as a letter is written with it
                letters.setdefault(key, value.strip())
        else:
            raise EngineError(f"{where}: size {key} must be a number or a name")
    for key in keys:
        letters.setdefault(key, cls.size_symbols.get(key) or LETTERS.get(key) or key)
    return sizes, keys, letters


def _is_size(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_SIZE


def _factor(value, primes: dict) -> Dim | None:
    value = int(value)
    dim = Dim(1)
    for key, p in primes.items():
        while value % p == 0:
            value //= p
            dim.sizes.append(key)
    dim.const = value
    return dim


def _probe(fn, sizes: dict, keys: list):
    """The structure of fn's shapes in the sizes, or None when it is not a product of them."""
    runs = []
    for probes in PROBES:
        if len(keys) > len(probes):
            return None
        primes = dict(zip(keys, probes))
        try:
            shapes = fn({**sizes, **primes})
        except Exception:          # an op that cannot take the probe values: numbers only
            return None
        runs.append({name: [_factor(d, primes) for d in shape] for name, shape in shapes.items()})
    return runs[0] if runs[0] == runs[1] else None


def _sym(letter: str) -> Sym:
    base, _, sub = letter.partition("_")
    return Sym(base, sub)


def _dim_value(dim: Dim, sizes: dict):
    value = dim.const
    for key in dim.sizes:
        value = value * sizes[key]
    return value


def _tensor_node(dims: list, letters: dict, drop: int):
    """c_out·c_in·k·k for one tensor, with the common factor `drop` taken out."""
    factors = []
    for dim in dims:
        const = dim.const
        g = gcd(const, drop)
        const, drop = const // g, drop // g
        if const != 1:
            factors.append(Const(Exact(const)))
        factors.extend(_sym(letters[k]) for k in dim.sizes)
    if not factors:
        return Const(Exact(1))
    return factors[0] if len(factors) == 1 else Op("dot", tuple(factors))


def _formula(structure: dict, letters: dict):
    """Σ over tensors of their products; a factor shared by all (4 for LSTM) goes in front."""
    consts = [int(np.prod([d.const for d in dims])) for dims in structure.values()]
    g = 0
    for c in consts:
        g = gcd(g, c)
    g = g if g > 1 and len(consts) > 1 else 1
    terms = []
    for times, names in _unit_groups(structure):
        nodes = tuple(_tensor_node(structure[n], letters, g) for n in names)
        if times == 1:
            terms.extend(nodes)
        else:
            terms.append(Op("dot", (Const(Exact(times)), Paren(nodes[0] if len(nodes) == 1 else Op("+", nodes)))))
    total = terms[0] if len(terms) == 1 else Op("+", tuple(terms))
    return Op("dot", (Const(Exact(g)), Paren(total))) if g > 1 else total


def _unit_groups(structure: dict) -> list:
    """(times, tensor names): the tensors of consecutive units of one layer (layer1.W_ih, layer1.b_ih,
    layer1_reverse.W_ih, …) with the same shapes written once with their number, 2·(…); others one by one."""
    groups: list = []
    for unit, names in groupby(structure, key=lambda name: name.rpartition(".")[0]):
        names = list(names)
        shape = [[(d.const, d.sizes) for d in structure[n]] for n in names]
        if unit and groups and groups[-1][2] == shape:
            groups[-1][0] += 1
        elif unit:
            groups.append([1, names, shape])
        else:
            groups.extend([1, [n], None] for n in names)
    return [(times, names) for times, names, _ in groups]


def _number_formula(shapes: dict):
    terms = tuple(Op("dot", tuple(Const(Exact(int(d))) for d in s)) if len(s) > 1 else Const(Exact(int(s[0])))
                  for s in shapes.values() if s)
    return terms[0] if len(terms) == 1 else Op("+", terms) if terms else None


def _size_count(shape):
    total = 1
    for d in shape:
        total = total * d
    return total


def _as_value(number):
    """An int → Exact; a sympy number → Exact when it is an integer; else the sympy expression."""
    if isinstance(number, int):
        return Exact(number)
    if getattr(number, "is_Integer", False):
        return Exact(int(number))
    return number


def laid_out(cls, shapes: dict, layout: str) -> dict:
    """The op's shapes (PyTorch's out × in) in the problem's layout: in × out transposes its weight
    matrices (layout_weights; a stack's layer1.W_ih is a W_ih)."""
    if layout != "in_out":
        return shapes
    return {key: tuple(reversed(shape)) if key.rpartition(".")[2] in cls.layout_weights and len(shape) == 2
            else shape for key, shape in shapes.items()}


def count_layer(kind: str, raw: dict, position: int, where: str, layout: str = "out_in") -> Counted:
    if kind not in LAYERS:
        raise EngineError(f"unknown layer {kind!r} (expected one of: {', '.join(LAYERS)})")
    cls = LAYERS[kind]
    raw = dict(raw or {})
    name = raw.pop("name", None) or f"{kind}{position + 1}"
    if not isinstance(name, str) or not NAME.match(name):
        raise EngineError(f"{where}: name must be a word such as conv1 (letters, digits, _)")
    sizes, keys, letters = _split_sizes(cls, raw, where)
    if cls.is_activation:
        return Counted(name, kind, {}, {}, {}, None, {}, Exact(0), Exact(0))
    read = _Reads(sizes)

    def param_shapes(sizes):
        return laid_out(cls, cls.param_shapes(sizes), layout)

    try:
        shapes = {k: tuple(s) for k, s in param_shapes(read).items()}
        buffers = {k: tuple(s) for k, s in cls.buffer_shapes(read).items()}
        io = cls.io_shapes(read)
        window = cls.window(read) if all(_whole_numbers(v) for v in sizes.values()) else "letters"
    except KeyError as err:
        raise EngineError(f"{where}: {kind} needs the size {err.args[0]}") from None
    except TypeError as err:
        raise EngineError(f"{where}: {kind} cannot be counted with symbolic sizes ({err})") from None
    if any(d is None or isinstance(d, (list, tuple)) for shape in (*shapes.values(), *buffers.values()) for d in shape):
        raise EngineError(f"{where}: {kind} takes one number (or name) per size here, not a list or nothing")
    _refuse_unread(kind, cls, raw, read.keys_read, where)
    if not shapes and not buffers:
        return Counted(name, kind, {}, {}, io, None, {}, Exact(0), Exact(0), window, cls.io_role)
    structure = _probe(param_shapes, sizes, keys)
    bindings = {_sym(letters[k]): _node(sizes[k]) for k in keys
                if isinstance(sizes[k], int) or str(sizes[k]) != letters[k]}     # not n = n
    if structure is not None and structure.keys() == shapes.keys():
        formula = _formula(structure, letters)
    else:
        if any(not isinstance(sizes[k], int) for k in keys):
            raise EngineError(f"{where}: {kind}'s parameter shapes are not products of its sizes; "
                              f"give numbers, not names")
        formula, bindings = _number_formula(shapes), {}
    count = sum((_size_count(s) for s in shapes.values()), 0)
    buffer_count = sum((_size_count(s) for s in buffers.values()), 0)
    return Counted(name, kind, shapes, buffers, io, formula, bindings, _as_value(count), _as_value(buffer_count),
                   window, cls.io_role)


def _whole_numbers(value) -> bool:
    """A size given as numbers (3, or [3, 1] per axis, or an option such as bias: false), not letters."""
    return isinstance(value, (int, bool)) or isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value)


class _Reads(dict):
    """The sizes, recording which keys a shape rule reads (the rest would be silently ignored)."""

    def __init__(self, sizes: dict):
        super().__init__(sizes)
        self.keys_read: set = set()

    def __getitem__(self, key):
        self.keys_read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.keys_read.add(key)
        return super().get(key, default)

    def __contains__(self, key):
        self.keys_read.add(key)
        return super().__contains__(key)


def _refuse_unread(kind: str, cls, raw: dict, read: set, where: str) -> None:
    """An option neither the shape rule reads nor the layer's own spec knows changes nothing: refuse it,
    so that `groups: 2` or `bidirectional: true` never yields a count that silently ignores it."""
    known = read | set(cls.Params.model_fields) | set(cls.count_options)
    known -= {"name", "out", "inputs"}
    for key in raw:
        if key not in known:
            expected = ", ".join(sorted(known)) or "none"
            raise EngineError(f"{where}: {kind} has no option {key!r} for counting (it reads: {expected})")


# ----- presentation ------------------------------------------------------------------
def _node(value):
    return Expr(value) if type(value).__module__.startswith("sympy") else Const(_as_value(value))


def shape_node(shape: tuple):
    if not shape:
        return Const(Exact(1))
    return Op("times", tuple(_node(d) for d in shape)) if len(shape) > 1 else _node(shape[0])


def _shape_result(shape):
    """A shape as a result: exact numbers, or with letters a sympy column (a key reads "[64, d]" as one)."""
    if _numeric(shape):
        return np.array([Exact(d) for d in shape], dtype=object)
    import sympy

    return sympy.ImmutableMatrix([sympy.Integer(d) if isinstance(d, int) else d for d in shape])


def _numeric(shape) -> bool:
    return all(isinstance(d, int) for d in shape)


def _affine_chain(layers: list) -> bool:
    return all(c.kind in LAYERS and (LAYERS[c.kind].is_activation or set(c.params) <= {"W", "b"} and "W" in c.params)
               for c in layers)


def count_section(solution: Solution, arch: Architecture, doc, loc: tuple, layout: str = "out_in") -> list:
    """Count one architecture into its own section; results under `<name>.` when it is named; weight
    matrices in `layout` (out × in as PyTorch, or in × out)."""
    prefix = f"{arch.name}." if arch.name else ""
    counted = []
    for i, entry in enumerate(arch.layers):
        here = loc + ("layers", i)
        kind, raw = _entry(entry, doc, here)
        try:
            counted.append(count_layer(kind, raw, i, f"layer {i + 1}", layout))
        except EngineError as err:
            raise SpecError([doc.problem(here, str(err))]) from None
    title = arch.title.model_dump() if arch.title else {"hr": arch.name or "", "en": arch.name or ""}
    section = solution.section("section.counting", name=title)
    rows = []
    for c in counted:
        for role, tensors, stored in (("counting.role.param", c.params, True),
                                      ("counting.role.buffer", c.buffers, True), (c.io_role, c.io, False)):
            for tensor, shape in tensors.items():
                count = _node(_size_count(shape)) if stored else ""
                rows.append([c.name, _tensor_sym(tensor), Phrase(role), shape_node(shape), count])
                if stored:
                    solution.results[f"{prefix}shape.{c.name}.{tensor}"] = _shape_result(shape)
    section.add(Table(header=[Phrase("counting.label.layer"), Phrase("counting.label.tensor"),
                              Phrase("counting.label.role"), Phrase("counting.label.shape"),
                              Phrase("counting.label.count")], rows=rows,
                      caption=Phrase("counting.table_caption", {})))
    total = Exact(0)
    for c in counted:
        if c.formula is None:
            continue
        section.add(Step(lhs=Sym("N", c.name.replace("_", "")), forms=[c.formula], bindings=c.bindings,
                         result=c.count,
                         text=Phrase("counting.layer", {"layer": c.name, "kind": c.kind})))
        solution.results[f"{prefix}params.{c.name}"] = c.count
        total = total + c.count
        if c.buffers:
            section.add(Phrase("counting.buffers", {"layer": c.name, "count": _node(c.buffer_count),
                                                    "names": ", ".join(c.buffers)}))
            solution.results[f"{prefix}buffers.{c.name}"] = c.buffer_count
    with_params = [c for c in counted if c.formula is not None]
    if len(with_params) > 1:
        parts = tuple(Sym("N", c.name.replace("_", "")) for c in with_params)
        section.add(Step(lhs=Sym("N"), forms=[Op("+", parts)],
                         bindings={p: _node(c.count) for p, c in zip(parts, with_params)},
                         result=total,
                         text=Phrase("counting.total", {})))
    solution.results[f"{prefix}params.total"] = total
    buffers = [c for c in counted if c.buffers]
    if buffers:
        solution.results[f"{prefix}buffers.total"] = sum((c.buffer_count for c in buffers), Exact(0))
    if arch.largest:
        _largest(solution, section, counted, prefix)
    if arch.formula or arch.diagram:
        _chain(solution, section, counted, arch, doc, loc, layout)
    if arch.receptive_field:
        if any(c.window == "letters" for c in counted):
            raise SpecError([doc.problem(loc + ("receptive_field",), "receptive fields are computed from "
                                                                     "numbers: give the layers' sizes as numbers")])
        _receptive_field(solution, section, counted, prefix)
    return counted


def _receptive_field(solution, section, counted, prefix) -> None:
    """r = r′ + (k − 1)·j′ and j = j′·s, layer by layer from r₀ = j₀ = 1, per spatial axis (one line when
    the axes agree); a layer whose outputs see the whole input ends the walk."""
    section.say("counting.receptive_intro")
    r = j = None
    previous = "0"
    for c in counted:
        if c.window is None:
            section.say("counting.receptive_whole", layer=c.name)
            return
        if not c.window:
            continue
        spans, strides = [w[0] for w in c.window], [w[1] for w in c.window]
        r = r or [1] * len(spans)
        j = j or [1] * len(spans)
        if len(spans) != len(r):
            section.say("counting.receptive_whole", layer=c.name)
            return
        new_r = [ri + (k - 1) * ji for ri, k, ji in zip(r, spans, j)]
        axes = [None] if len(set(zip(spans, strides, r, j))) == 1 else range(len(spans))
        for a in axes:
            at = 0 if a is None else a
            tag = c.name.replace("_", "") + ("" if a is None else f",{'hw'[a] if len(spans) == 2 else a + 1}")
            before = previous + ("" if a is None else tag[tag.index(","):])
            rs, js, k = Sym("r", tag), Sym("j", before), Sym("k", tag)
            section.add(Step(lhs=rs, forms=[Op("+", (Sym("r", before), mul(Paren(Op("-", (k, Const(Exact(1))))), js)))],
                             bindings={Sym("r", before): _node(r[at]), k: _node(spans[at]), js: _node(j[at])},
                             result=Exact(new_r[at]), approx=False,
                             text=Phrase("counting.receptive_layer", {"layer": c.name, "k": spans[at],
                                                                      "s": strides[at]})))
        r, j = new_r, [ji * s for ji, s in zip(j, strides)]
        previous = c.name.replace("_", "")
        value = Exact(r[0]) if len(set(r)) == 1 else np.array([Exact(v) for v in r], dtype=object)
        solution.results[f"{prefix}receptive_field.{c.name}"] = value


def _tensor_sym(name: str):
    unit, dot, name = name.rpartition(".")
    if dot:                    # one unit's tensor in a stacked cell (layer2_reverse.W_ih): W_ih^[2r]
        from examsolver.engine.ops.recurrent import unit_tag

        return _tensor_sym(name).replace(sup=f"[{unit_tag(unit)}]")
    base, _, sub = name.partition("_")
    if base in ("gamma", "beta") or not sub or len(base) > 2:
        return Sym(name.replace("_", " ") if len(base) > 2 else base, "" if len(base) > 2 else sub, bold=False)
    return Sym(base, sub, bold=True)


def _entry(entry, doc, here):
    if isinstance(entry, str):
        return entry, {}
    if isinstance(entry, dict) and len(entry) == 1:
        (kind, raw), = entry.items()
        if raw is None or isinstance(raw, dict):
            return kind, raw or {}
    raise SpecError([doc.problem(here, "expected `kind: {sizes}` (e.g. conv2d: {in_channels: 32, …})")])


def _largest(solution, section, counted, prefix) -> None:
    matrices = [(c.name, t, s) for c in counted for t, s in c.params.items() if len(s) >= 2]
    if not matrices:
        return
    if not all(_numeric(s) for _, _, s in matrices):
        raise EngineError("the largest matrix is found for numeric sizes only")
    best = max(_size_count(s) for _, _, s in matrices)
    winners = [(n, t, s) for n, t, s in matrices if _size_count(s) == best]
    qualified = len(counted) > 1
    names = ", ".join(f"{n}.{t}" if qualified else t for n, t, _ in winners)
    section.add(Phrase("counting.largest", {"names": names, "shape": shape_node(winners[0][2]), "count": Exact(best)}))
    solution.results[f"{prefix}largest"] = names
    solution.results[f"{prefix}largest.count"] = Exact(best)


def _chain(solution, section, counted, arch, doc, loc, layout: str) -> None:
    """y = W₃(W₂(W₁x + b₁) + b₂) + b₃ and the node diagram, for chains of affine layers (W₁ᵀx in × out)."""
    transposed = layout == "in_out"
    if not _affine_chain(counted) or not all(_numeric(s) for c in counted for s in c.params.values()):
        raise SpecError([doc.problem(loc + ("formula",), "the output formula and the diagram are for chains of "
                                                         "fully connected layers and activations with numeric sizes")])
    x = Sym("x", bold=True)
    node, k = x, 0
    widths = []
    for c in counted:
        if LAYERS[c.kind].is_activation:
            node = Call(LAYERS[c.kind].fn_name or c.kind, (node,))
            continue
        k += 1
        W, b = Sym("W", str(k), bold=True), Sym("b", str(k), bold=True)
        out, inp = reversed(c.params["W"]) if transposed else c.params["W"]
        if not widths:
            widths.append(inp)
        elif widths[-1] != inp:
            raise SpecError([doc.problem(loc, f"{c.name} takes {inp} inputs but the layer before gives {widths[-1]}")])
        widths.append(out)
        inner = Paren(node) if isinstance(node, Op) else node
        node = mul(W.T if transposed else W, inner)
        if "b" in c.params:
            node = Op("+", (node, b))
    if arch.formula:
        section.add(Step(lhs=Sym("y", bold=True), forms=[node], text=Phrase("counting.formula", {})))
        section.add(Phrase("counting.formula_shapes", {"x": Const(Exact(widths[0])), "y": Const(Exact(widths[-1]))}))
    if arch.diagram:
        labels = ["x"] + [f"h{i}" for i in range(1, len(widths) - 1)] + ["y"]
        section.add(Figure(kind="layers", data={"layers": [{"size": w, "label": l} for w, l in zip(widths, labels)],
                                                "size": (1.6 * len(widths) + 1, 3.5)},
                           caption=Phrase("counting.diagram", {})))
        solution.results[f"{arch.name + '.' if arch.name else ''}widths"] = np.array([Exact(w) for w in widths],
                                                                                    dtype=object)


# ----- anchors for metric learning --------------------------------------------------------
def anchor_section(solution: Solution, spec: AnchorCandidates, doc) -> None:
    """With K classes of M examples: M − 1 positives and (K − 1)·M negatives for one anchor."""
    K, M = Sym("K"), Sym("M")
    values = {}
    for sym, key, value in ((K, "classes", spec.classes), (M, "per_class", spec.per_class)):
        if isinstance(value, str):
            try:
                values[sym] = _symbol(value)
            except EngineError as err:
                raise SpecError([doc.problem(("anchor_candidates", key), str(err))]) from None
        elif value < 1 or value > MAX_SIZE:
            raise SpecError([doc.problem(("anchor_candidates", key), f"must be between 1 and {MAX_SIZE}")])
        else:
            values[sym] = Exact(value)
    symbolic = any(not isinstance(v, Exact) for v in values.values())
    k, m = values[K], values[M]
    positive = (m - 1) if not symbolic else _sym_value(m) - 1
    negative = (k - 1) * m if not symbolic else (_sym_value(k) - 1) * _sym_value(m)
    bindings = {s: (Const(v) if isinstance(v, Exact) else Expr(v)) for s, v in values.items()}
    section = solution.section("section.anchor_candidates")
    section.add(Step(lhs=Sym("N", "+"), forms=[Op("-", (M, Const(Exact(1))))], bindings=bindings,
                     result=positive,
                     text=Phrase("counting.positives", {})))
    section.add(Step(lhs=Sym("N", "-"), forms=[Op("dot", (Paren(Op("-", (K, Const(Exact(1))))), M))],
                     bindings=bindings, result=negative,
                     text=Phrase("counting.negatives", {})))
    solution.results["candidates.positive"] = positive
    solution.results["candidates.negative"] = negative


def _sym_value(v):
    return _sympy().Integer(int(v)) if isinstance(v, Exact) else v


# ----- entry point ----------------------------------------------------------------------
def solve(spec, doc) -> Solution:
    solution = Solution(problem_id=spec.id, title=spec.title.model_dump(), source=spec.source,
                        statement=spec.statement.model_dump() if spec.statement else None)
    if not spec.architectures and spec.anchor_candidates is None:
        raise SpecError([doc.problem((), "nothing to count: give `architectures:` or `anchor_candidates:`")])
    for i, arch in enumerate(spec.architectures):
        count_section(solution, arch, doc, ("architectures", i), spec.conventions.weights)
    if spec.anchor_candidates is not None:
        anchor_section(solution, spec.anchor_candidates, doc)
    solution.conventions = [Phrase("convention.counting_trainable", {})]
    if spec.conventions.weights == "in_out":
        solution.conventions.append(Phrase("convention.counting_in_out", {}))
    solution.number_equations()
    return solution
