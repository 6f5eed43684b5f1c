"""Matrix-level backpropagation through a declared layer chain, with symbolic sizes.

Why: exam questions like "write the gradients of all parameters of an MLP with D
inputs, H hidden ReLU units and K softmax outputs" ask for formulas such as
∂L/∂W₂ = (o − g)hᵀ (K×H), not numbers.  Each op writes its own rules (engine/ops:
Layer.matrix_forward and matrix_backward, the Loss's matrix_loss, matrix_grad and
matrix_fused_grad), in two forms side by side: a formula node for the solution and
a sympy rule on explicit entries.  This module only walks the chain: the general
formulas are instantiated on a small concrete size (e.g. D = 3, H = 4, K = 2)
whose entries are symbols, and every entry is compared with sympy's own
derivative of the whole loss: the printed formulas are checked, not trusted.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated

from pydantic import Field

from examsolver.errors import EngineError, SpecError
from examsolver.mathnodes import Deriv, Sym
from examsolver.solution import Phrase, Step
from examsolver.spec.model import Strict

NAME = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,30}$")]
MAX_SIZE = 6            # concrete instance sizes: sympy's derivative of the whole loss must stay cheap


class Backprop(Strict):
    input: NAME                             # the input vector, e.g. x
    size: NAME                              # its symbolic size, e.g. D
    layers: list[dict[str, dict | None]] = Field(min_length=1, max_length=12)   # op: {out, its own keys}
    loss: NAME                              # a registered loss with a symbolic rule (cross_entropy, mse)
    target: NAME                            # the target vector g (a distribution for cross_entropy)
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


def _entries(**named) -> dict:
    """Entries of named vectors in a phrase's own formula, e.g. zj=("z", "j") → z_{j}, ("o2", "k") → o_{2,k}
    (a name with another character — allowed in derivations — keeps the letters z, o, g)."""
    out = {}
    for key, (name, index) in named.items():
        match = re.fullmatch(r"([A-Za-z]+)(\d*)", name)
        base, sub = match.groups() if match else (key[0], "")
        out[key] = f"{base}_{{{sub + ',' if sub else ''}{index}}}"
    return out


def grad(name: str) -> Deriv:
    return Deriv(L, node(name))


# ----- one layer's view, handed to its op's rules ------------------------------------------
class View:
    """What an op's matrix rules read and the calls by which they declare parameters and give
    gradients.  Forward: args, x_name, x_node, x_size, x (the input's entries as expressions).
    Backward adds the upstream gradient ∂L/∂y as grad_out (its name), n_out (its closed form) and
    d_out (its entries), the output's y_node and y_entries, and wants_input (not the network input)."""

    def __init__(self, d: Derivation, index: int, kind: str, args, x_name: str, x_size: str):
        self.d, self.sp, self.exp = d, d.sp, _exp()
        self.position, self.kind, self.args, self.loc = index, kind, args, ("layers", index, kind)
        self.x_name, self.x_size, self.x_node = x_name, x_size, node(x_name)
        self.out_size = x_size              # a rule with an output size of its own sets it (linear)
        self.value = None                   # the output's entries as expressions (set by matrix_forward)

    @staticmethod
    def node(name: str) -> Sym:
        return node(name)

    # forward ----------------------------------------------------------------------
    @property
    def x(self):
        """The input's entries as expressions of the network's input and parameters."""
        return self.d.actual[self.x_name]

    def param(self, name: str, rows: str, cols: str | None = None):
        """Declare a parameter (a rows × cols matrix or a rows vector): its Matrix of entry symbols."""
        d = self.d
        for size in (rows, cols):
            if size is not None and size not in d.sizes:
                self.refuse(f"instance gives no value for the size {size!r}")
        if name in d.entries:
            self.refuse(f"the name {name!r} is already used")
        value = d.matrix(name, rows, cols) if cols else d.vector(name, rows)
        d.entries[name] = d.actual[name] = value
        d.params.append((name, f"{rows} × {cols}" if cols else rows))
        return value

    def refuse(self, message: str):
        self.d.fail(self.loc, message)

    # backward ---------------------------------------------------------------------
    def entries(self, name: str):
        return self.d.entries[name]

    @property
    def x_entries(self):
        return self.d.entries[self.x_name]

    def named(self, base: str, values: list):
        """Symbols standing for values the results keep by name (ReLU's mask m = 𝟙[a > 0]: ma1, ma2, …)."""
        symbols = self.sp.Matrix([self.sp.Symbol(f"{base}{s.name}") for s in self.x_entries])
        self.d.named[base + self.x_name] = symbols
        self.d.subs.update(zip(symbols, values))
        return symbols

    def say(self, key: str, **params) -> None:
        self.d.section.say(key, **params)

    def param_gradient(self, name: str, general, closed, entries) -> None:
        shape = dict(self.d.params)[name]
        self.d.show(name, [general, closed], entries, shape)

    def input_gradient(self, general, closed, entries) -> None:
        self.d.show(self.x_name, [general, closed], entries, self.x_size)


class LossView:
    """The loss's view: output o and target g as entries and nodes, the output size K."""

    def __init__(self, d: Derivation, o_name: str, z_name: str | None):
        self.sp, self.K = d.sp, Sym(d.out_size)
        self.o, self.g = d.entries[o_name], d.entries[d.task.target]
        self.o_node, self.g_node = node(o_name), node(d.task.target)
        self.z_node = node(z_name) if z_name else None


# ----- the derivation -------------------------------------------------------------------
class Derivation:
    """Forward formulas, backward formulas, results on the instance, and the check."""

    def __init__(self, solver, task: Backprop, loc):
        import sympy as sp

        from examsolver.engine.ops import LAYERS, LOSSES
        from examsolver.engine.ops.base import DERIVATION_ONLY

        self.sp, self.solver, self.task, self.loc = sp, solver, task, loc
        self.sizes = dict(task.instance)
        self.entries = {}                   # name → explicit Matrix of entry symbols (intermediates too)
        self.actual = {}                    # name → explicit Matrix of the forward expression (for the check)
        self.params = []                    # (parameter name, shape in the sizes), in order of the layers
        self.named = {}                     # name → symbols standing for values (ReLU's mask)
        self.subs = {}                      # those symbols → their values, for the check
        self.results = {}
        if task.size not in self.sizes:
            self.fail(("instance",), f"instance gives no value for the size {task.size!r}")
        if task.loss not in LOSSES:
            self.fail(("loss",), f"unknown loss {task.loss!r} (expected one of: {', '.join(LOSSES)})")
        self.loss = LOSSES[task.loss].with_defaults()
        if self.loss is None:
            self.fail(("loss",), f"the loss {task.loss!r} needs options a derivation does not give")
        self.layers = [self.layer(i, entry, {**LAYERS, **DERIVATION_ONLY}) for i, entry in enumerate(task.layers)]

    def layer(self, i: int, entry: dict, registry: dict):
        """(op class, its validated args) of one entry of the layer list."""
        from examsolver.spec.model import validate

        if len(entry) != 1:
            self.fail(("layers", i), "a layer is one op with its arguments (linear: {W: W1, out: a, size: H})")
        (kind, raw), = entry.items()
        if kind not in registry:
            self.fail(("layers", i), f"unknown layer {kind!r} (expected one of: {', '.join(registry)})")
        args = validate(self.solver.doc, registry[kind].MatrixArgs, raw or {}, self.loc + ("layers", i, kind))
        return registry[kind], args

    def fail(self, where, message):
        raise SpecError([self.solver.doc.problem(self.loc + tuple(where), message)])

    def vector(self, name: str, size: str):
        return self.sp.Matrix([self.sp.Symbol(f"{name}{i}") for i in range(1, self.sizes[size] + 1)])

    def matrix(self, name: str, rows: str, cols: str):
        sp = self.sp
        return sp.Matrix(self.sizes[rows], self.sizes[cols], lambda i, j: sp.Symbol(f"{name}_{i + 1}{j + 1}"))

    # forward -----------------------------------------------------------------------
    def forward(self):
        task = self.task
        self.section = self.solver.solution.section("symbolic.section.backprop_forward")
        name, size = task.input, task.size
        self.entries[name] = self.actual[name] = self.vector(name, size)
        self.size_of = {name: size}
        self.section.say("symbolic.backprop.input", x=node(name), shape=size)
        self.views = []
        for i, (op, args) in enumerate(self.layers):
            view = View(self, i, op.kind, args, name, size)
            if args.out in self.entries:
                view.refuse(f"the name {args.out!r} is already used")
            form = op.matrix_forward(view)
            name, size = args.out, view.out_size
            self.size_of[name] = size
            self.entries[name], self.actual[name] = self.vector(name, size), view.value
            self.section.add(Step(lhs=node(name), extra_forms=[form],
                                  text=Phrase("symbolic.backprop.shape", {"q": node(name), "shape": size})))
            self.views.append(view)
        self.output, self.out_size = name, size
        if task.target in self.entries:
            self.fail(("target",), f"the name {task.target!r} is already used")
        self.entries[task.target] = self.vector(task.target, size)
        loss = self.loss.matrix_loss(LossView(self, name, None))
        if loss is None:
            from examsolver.engine.ops import LOSSES
            from examsolver.engine.ops.base import Loss

            written = ", ".join(k for k, cls in LOSSES.items() if cls.matrix_loss is not Loss.matrix_loss)
            self.fail(("loss",), f"the loss {task.loss!r} has no symbolic (matrix-calculus) form "
                                 f"(losses with one: {written})")
        self.section.add(Step(lhs=L, extra_forms=[loss], text=Phrase(f"symbolic.backprop.loss.{task.loss}",
                                                                       {"g": node(task.target)})))

    # backward ------------------------------------------------------------------------
    def backward(self):
        """The loss's gradient (fused with the last layer when the loss says so), then each layer's rule."""
        task, views = self.task, list(self.views)
        self.section = self.solver.solution.section("symbolic.section.backprop_backward")
        o, g = node(self.output), node(task.target)
        start = self.output
        fused = self.layers[-1][0].kind == self.loss.fuses_with and \
            self.loss.matrix_fused_grad(LossView(self, self.output, views[-1].x_name))
        if fused:
            start = views.pop().x_name
            self.section.say(f"symbolic.backprop.fused.{task.loss}", z=node(start), o=o, g=g,
                             **_entries(zj=(start, "j"), oj=(self.output, "j"), gj=(task.target, "j"),
                                        gk=(task.target, "k")))
            closed, delta = fused
        else:
            gradient = self.loss.matrix_grad(LossView(self, self.output, None))
            if not gradient:
                through = f" (only through {self.loss.fuses_with} as the last layer)" if self.loss.fuses_with else ""
                self.fail(("loss",), f"the loss {task.loss!r} has no symbolic gradient{through}")
            self.section.say(f"symbolic.backprop.grad.{task.loss}", o=o, g=g)
            closed, delta = gradient
        self.closed = {}
        self.show(start, [closed], delta, self.size_of[start])
        for view in reversed(views):
            out = view.args.out
            view.grad_out, view.n_out, view.d_out = grad(out), self.closed[out], self.results[out]
            view.y_node, view.y_entries = node(out), self.entries[out]
            view.wants_input = view.position > 0
            self.layers[view.position][0].matrix_backward(view)

    def show(self, name, forms, entries, shape):
        self.results[name], self.closed[name] = entries, forms[-1]
        self.section.add(Step(lhs=grad(name), extra_forms=forms,
                              text=Phrase("symbolic.backprop.shape", {"q": grad(name), "shape": shape})))

    # results and the check --------------------------------------------------------------
    def record(self):
        results = self.solver.solution.results
        for name, _ in self.params:
            results[f"dL/d{name}"] = self.sp.ImmutableMatrix(self.results[name])
        for name, value in self.results.items():
            results.setdefault(f"dL/d{name}", self.sp.ImmutableMatrix(value))

    def check(self):
        """Every entry of every parameter gradient against sympy's derivative of the whole loss."""
        sp, task = self.sp, self.task
        g = self.entries[task.target]
        params = {p for p, _ in self.params}
        subs = dict(self.subs)
        for name, value in self.actual.items():
            if name != task.input and name not in params:
                subs.update(zip(self.entries[name], value))
        o = self.actual[self.output]
        distribution = self.loss.target_is_distribution
        if distribution:
            subs[g[-1]] = 1 - sum(g[:-1])      # a distribution: Σg = 1
        # the values are in the input, the parameters and g only (a View's x is the forward expression),
        # so one structural replacement is the substitution, without subs's repeated tree walks; the log of a
        # quotient is written as a difference of logs (the same derivative, found in half the time)
        loss = sp.expand_log(self.loss.sympy_value(o, g).xreplace(subs), force=True)
        count = 0
        for name, _ in self.params:
            formula = self.results[name].xreplace(subs)
            for symbol, entry in zip(self.entries[name], formula):
                if not _zero(sp, sp.diff(loss, symbol) - entry):
                    raise EngineError(f"backprop check failed for ∂L/∂{symbol}")
                count += 1
        sizes = ", ".join(f"{k} = {v}" for k, v in self.sizes.items())
        key = "symbolic.backprop.checked_distribution" if distribution else "symbolic.backprop.checked"
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
    """d == 0: proved in sparse polynomials over its atoms (engine/identity.py), else with exp(…), Max(…)
    and Heaviside(…) taken as opaque atoms: d is then a rational function of plain symbols, and
    cancelling it is fast (cancelling through the exponents is not)."""
    from sympy.core.function import AppliedUndef

    from examsolver.engine.identity import proves_zero

    if proves_zero(d):
        return True
    atoms = sorted(d.atoms(_exp(), sp.Max, sp.Heaviside, sp.tanh, AppliedUndef), key=sp.default_sort_key)
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
