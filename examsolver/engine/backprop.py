"""Matrix-level backpropagation through a declared layer chain, with symbolic sizes.

Why: exam questions like "write the gradients of all parameters of an MLP with D
inputs, H hidden ReLU units and K softmax outputs" ask for formulas such as
∂L/∂W₂ = (o − g)hᵀ (K×H), not numbers.  Each layer kind carries, side by side,
its forward rule and its backward (vector-Jacobian) rule in two forms: a formula
node for the solution and a sympy rule on explicit entries.  The general
formulas are then instantiated on a small concrete size (e.g. D = 3, H = 4,
K = 2) whose entries are symbols, and every entry is compared with sympy's own
derivative of the whole loss: the printed formulas are checked, not trusted.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field

from examsolver.errors import EngineError, SpecError
from examsolver.mathnodes import Call, Const, Deriv, Indicator, Neg, Op, Paren, Power, Subscript, Sum, Sym, Transpose
from examsolver.solution import Phrase, Step
from examsolver.spec.model import Strict

NAME = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,30}$")]
MAX_SIZE = 6            # concrete instance sizes: sympy's derivative of the whole loss must stay cheap
ACTIVATIONS = ("relu", "sigmoid", "tanh")
KINDS = ("linear",) + ACTIVATIONS + ("softmax",)


class LayerArgs(Strict):
    out: NAME                               # name of the layer's output (a, h, z, o)
    W: NAME | None = None                   # linear: weight matrix
    b: NAME | None = None                   # linear: bias vector (optional)
    size: NAME | None = None                # linear: symbolic output size (H, K)


class Backprop(Strict):
    input: NAME                             # the input vector, e.g. x
    size: NAME                              # its symbolic size, e.g. D
    layers: list[dict[Literal[KINDS], LayerArgs]] = Field(min_length=1, max_length=12)
    loss: Literal["nll", "mse"]
    target: NAME                            # the target vector g (a distribution for nll)
    instance: dict[NAME, Annotated[int, Field(ge=1, le=MAX_SIZE)]]
    check: bool = True


# ----- names --------------------------------------------------------------------
def node(name: str, bold: bool = True) -> Sym:
    """'W2' → W₂ (bold), 'b1' → b₁, 'z' → z."""
    match = re.fullmatch(r"([A-Za-z]+)_?(\d*)", name)
    if match:
        return Sym(match.group(1), sub=match.group(2), bold=bold)
    return Sym(name, bold=bold)


L = Sym("L")


def grad(name: str) -> Deriv:
    return Deriv(L, node(name))


def hadamard(a, b) -> Op:
    """a ⊙ b, with a matrix product on the left parenthesized: (W₂ᵀ(o − g)) ⊙ 𝟙[a > 0]."""
    return Op("odot", (Paren(a) if isinstance(a, Op) and a.op == "mul" else a, b))


def mul(*args) -> Op:
    return Op("mul", tuple(args))


def group(n):
    """Parenthesize a sum or a product before ⊙ or a transpose-product."""
    return Paren(n) if isinstance(n, Op) and n.op in ("+", "-", "odot") else n


# ----- the chain ----------------------------------------------------------------------
class Chain:
    """The layers with their sizes, entry symbols and forward expressions."""

    def __init__(self, task: Backprop, fail):
        import sympy as sp

        self.sp, self.task, self.fail = sp, task, fail
        self.sizes = dict(task.instance)
        self.layers = []                    # (kind, args, in_name, in_size)
        name, size = task.input, task.size
        self.need(size, ("size",))
        self.names = {name}
        for i, entry in enumerate(task.layers):
            if len(entry) != 1:
                fail(("layers", i), f"a layer is one of {', '.join(KINDS)} with its arguments")
            (kind, args), = entry.items()
            if args.out in self.names:
                fail(("layers", i, kind, "out"), f"the name {args.out!r} is already used")
            if kind == "linear":
                if not args.W or not args.size:
                    fail(("layers", i, kind), "linear needs W (weights) and size (symbolic output size)")
                self.need(args.size, ("layers", i, kind, "size"))
                for p in (args.W, args.b):
                    if p and p in self.names:
                        fail(("layers", i, kind), f"the name {p!r} is already used")
                    self.names.add(p)
            elif args.W or args.b or args.size:
                fail(("layers", i, kind), f"{kind} takes only out")
            if kind == "softmax" and i != len(task.layers) - 1:
                fail(("layers", i, kind), "softmax is supported as the last layer (fused with its loss)")
            self.layers.append((kind, args, name, size))
            self.names.add(args.out)
            name, size = args.out, (args.size if kind == "linear" else size)
        self.output, self.out_size = name, size
        if task.loss == "nll" and self.layers[-1][0] != "softmax":
            fail(("loss",), "nll is the negative log-likelihood of a softmax output: end the layers with softmax")

    def need(self, size: str, loc) -> None:
        if size not in self.sizes:
            self.fail(("instance",) if loc == ("size",) else loc, f"instance gives no value for the size {size!r}")

    def vector(self, name: str, size: str):
        return self.sp.Matrix([self.sp.Symbol(f"{name}{i}") for i in range(1, self.sizes[size] + 1)])

    def matrix(self, name: str, rows: str, cols: str):
        sp = self.sp
        return sp.Matrix(self.sizes[rows], self.sizes[cols], lambda i, j: sp.Symbol(f"{name}_{i + 1}{j + 1}"))


# ----- the derivation -------------------------------------------------------------------
class Derivation:
    """Forward formulas, backward formulas, results on the instance, and the check."""

    def __init__(self, solver, task: Backprop, loc):
        import sympy as sp

        self.sp, self.solver, self.task, self.loc = sp, solver, task, loc
        self.chain = Chain(task, self.fail)
        self.entries = {}                   # name → explicit Matrix of entry symbols (intermediates too)
        self.actual = {}                    # name → explicit Matrix of the forward expression (for the check)
        self.params = []                    # parameter names, in order of the layers
        self.masks = {}                     # relu input name → mask symbols m = 𝟙[a > 0]

    def fail(self, where, message):
        raise SpecError([self.solver.doc.problem(self.loc + tuple(where), message)])

    # forward -----------------------------------------------------------------------
    def forward(self):
        sp, c = self.sp, self.chain
        section = self.solver.solution.section("symbolic.section.backprop_forward")
        x = c.vector(self.task.input, self.task.size)
        self.entries[self.task.input] = self.actual[self.task.input] = x
        section.say("symbolic.backprop.input", x=node(self.task.input), shape=self.task.size)
        for kind, args, inp, in_size in c.layers:
            out_size = args.size if kind == "linear" else in_size
            a = self.actual[inp]
            if kind == "linear":
                W = c.matrix(args.W, args.size, in_size)
                b = c.vector(args.b, args.size) if args.b else sp.zeros(c.sizes[args.size], 1)
                self.entries[args.W], self.actual[args.W] = W, W
                self.params.append((args.W, f"{args.size} × {in_size}", inp, args))
                if args.b:
                    self.entries[args.b], self.actual[args.b] = b, b
                    self.params.append((args.b, args.size, inp, args))
                value = W * a + b
                form = mul(node(args.W), node(inp)) + node(args.b) if args.b else mul(node(args.W), node(inp))
            elif kind == "relu":
                value = a.applyfunc(lambda v: sp.Max(0, v))
                form = Call("relu", (node(inp),))
            elif kind == "sigmoid":
                value = a.applyfunc(lambda v: 1 / (1 + _exp()(-v)))
                form = Call("sigma", (node(inp),))
            elif kind == "tanh":
                value = a.applyfunc(sp.tanh)
                form = Call("tanh", (node(inp),))
            else:
                total = sum(_exp()(v) for v in a)
                value = a.applyfunc(lambda v: _exp()(v) / total)
                form = Call("softmax", (node(inp),))
            self.entries[args.out] = c.vector(args.out, out_size)
            self.actual[args.out] = value
            section.add(Step(lhs=node(args.out), extra_forms=[form],
                             text=Phrase("symbolic.backprop.shape", {"q": node(args.out), "shape": out_size})))
        o, g, K = node(c.output), node(self.task.target), Sym(c.out_size)
        if self.task.loss == "nll":
            loss = Neg(Sum("k", Const(1), K, mul(Subscript(g.scalar(), "k"), Call("ln", (Subscript(o.scalar(), "k"),)))))
            section.add(Step(lhs=L, extra_forms=[loss], text=Phrase("symbolic.backprop.loss_nll", {"g": g})))
        else:
            error = Op("-", (Subscript(o.scalar(), "k"), Subscript(g.scalar(), "k")))
            loss = Sum("k", Const(1), K, Power(Paren(error), Const(2)))
            section.add(Step(lhs=L, extra_forms=[loss], text=Phrase("symbolic.backprop.loss_mse", {"g": g})))

    # backward ------------------------------------------------------------------------
    def backward(self):
        sp, c, task = self.sp, self.chain, self.task
        section = self.solver.solution.section("symbolic.section.backprop_backward")
        o, g = self.entries[c.output], c.vector(task.target, c.out_size)
        self.entries[task.target] = g
        layers = list(c.layers)
        if task.loss == "nll":
            kind, args, inp, size = layers.pop()          # softmax fused with the loss
            delta, closed = o - g, Op("-", (node(c.output), node(task.target)))
            section.say("symbolic.backprop.softmax_nll", z=node(inp), o=node(c.output), g=node(task.target))
            self.show(section, inp, [closed], size)
        else:
            inp = c.output
            delta, closed = 2 * (o - g), mul(Const(2), Paren(Op("-", (node(c.output), node(task.target)))))
            section.say("symbolic.backprop.mse", o=node(c.output), g=node(task.target))
            self.show(section, inp, [closed], c.out_size)
        self.results = {inp: delta}
        closed_of = {inp: closed}
        for index in range(len(layers) - 1, -1, -1):
            kind, args, inp, in_size = layers[index]
            out = args.out
            d_out, n_out = self.results[out], closed_of[out]
            if kind == "linear":
                x = self.entries[inp]
                W = self.entries[args.W]
                self.results[args.W] = d_out * x.T
                self.show(section, args.W, [mul(grad(out), Transpose(node(inp))),
                                            mul(group(n_out), Transpose(node(inp)))], f"{args.size} × {in_size}")
                if args.b:
                    self.results[args.b] = d_out
                    self.show(section, args.b, [grad(out), n_out], args.size)
                if index == 0:
                    break
                self.results[inp] = W.T * d_out
                closed_of[inp] = mul(Transpose(node(args.W)), group(n_out))
                self.show(section, inp, [mul(Transpose(node(args.W)), grad(out)), closed_of[inp]], in_size)
                continue
            before = node(inp)
            if kind == "relu":
                m = self.sp.Matrix([sp.Symbol(f"m{s.name}") for s in self.entries[inp]])
                self.masks[inp] = m
                self.entries["m" + inp] = m
                factor, local = m, Indicator(before)
                section.say("symbolic.backprop.mask", m=Sym("m", sub=inp, bold=True), mask=Indicator(before),
                            entries=", ".join(s.name for s in m))
            elif kind == "sigmoid":
                h = self.entries[out]
                factor = h.applyfunc(lambda v: v * (1 - v))
                local = hadamard(node(out), Paren(Op("-", (Const(1), node(out)))))
            else:
                h = self.entries[out]
                factor = h.applyfunc(lambda v: 1 - v ** 2)
                local = Op("-", (Const(1), hadamard(node(out), node(out))))
            self.results[inp] = d_out.multiply_elementwise(factor)
            closed_of[inp] = hadamard(group(n_out), group(local))
            self.show(section, inp, [hadamard(grad(out), group(local)), closed_of[inp]], in_size)

    def show(self, section, name, forms, shape):
        section.add(Step(lhs=grad(name), extra_forms=forms,
                         text=Phrase("symbolic.backprop.shape", {"q": grad(name), "shape": shape})))

    # results and the check --------------------------------------------------------------
    def record(self):
        results = self.solver.solution.results
        for name, _, _, _ in self.params:
            results[f"dL/d{name}"] = self.sp.ImmutableMatrix(self.results[name])
        for name, value in self.results.items():
            results.setdefault(f"dL/d{name}", self.sp.ImmutableMatrix(value))

    def check(self):
        """Every entry of every parameter gradient against sympy's derivative of the whole loss."""
        sp, c, task = self.sp, self.chain, self.task
        g = self.entries[task.target]
        subs = {}
        for name, value in self.actual.items():
            if name in (task.input,) or name in {p for p, *_ in self.params}:
                continue
            subs.update(zip(self.entries[name], value))
        for inp, m in self.masks.items():
            subs.update(zip(m, self.actual[inp].applyfunc(lambda v: sp.Heaviside(v))))
        o = self.actual[c.output]
        if task.loss == "nll":
            loss = -sum(gk * sp.log(ok) for gk, ok in zip(g, o))
            subs[g[-1]] = 1 - sum(g[:-1])      # a distribution: Σg = 1
        else:
            loss = sum((ok - gk) ** 2 for gk, ok in zip(g, o))
        loss = loss.subs(subs)
        count = 0
        for name, *_ in self.params:
            formula = self.results[name].subs(subs)
            for symbol, entry in zip(self.entries[name], formula):
                if not _zero(sp, sp.diff(loss, symbol) - entry):
                    raise EngineError(f"backprop check failed for ∂L/∂{symbol}")
                count += 1
        sizes = ", ".join(f"{k} = {v}" for k, v in c.sizes.items())
        key = "symbolic.backprop.checked_nll" if task.loss == "nll" else "symbolic.backprop.checked"
        self.solver.solution.section("symbolic.section.backprop_check").say(key, sizes=sizes, count=count)


@lru_cache(maxsize=None)
def _exp():
    """exp as a function sympy does not merge (exp(a)·exp(b) stays a product): with exp(…), Max(…),
    Heaviside(…), tanh(…) as opaque atoms the check's differences are rational functions of symbols."""
    import sympy as sp

    class Exp(sp.Function):
        nargs = 1

        def fdiff(self, argindex=1):
            return self

    return Exp


def _zero(sp, d) -> bool:
    """d == 0, with exp(…), Max(…) and Heaviside(…) taken as opaque atoms: d is then a rational
    function of plain symbols, and cancelling it is fast (cancelling through the exponents is not)."""
    atoms = sorted(d.atoms(_exp(), sp.Max, sp.Heaviside, sp.tanh), key=sp.default_sort_key)
    opaque = {atom: sp.Dummy() for atom in atoms}
    d = d.xreplace(opaque)
    numerator, _ = sp.fraction(sp.together(d))
    return sp.expand(numerator) == 0


def run(solver, task: Backprop, loc) -> None:
    derivation = Derivation(solver, task, loc)
    derivation.forward()
    derivation.backward()
    derivation.record()
    if task.check:
        derivation.check()
