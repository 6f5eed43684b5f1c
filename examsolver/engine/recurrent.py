"""The recurrent problem kind: a cell unrolled over a sequence, step by step.

As on the 2022 slides (task 5): the general update equation, then every time
step with the matrices written out and the result; an optional output layer
o(t) = W_hy h(t) + b_y (with softmax); a loss at the last step or summed over the
steps and backpropagation through time for the plain RNN; a check that the
weights realise an intended behaviour (expected hidden states per step, from
explicit vectors or a small rule set over the previous state and the input); and
optionally parameter counts (the counting kind's architectures).
"""

from __future__ import annotations

import ast
from functools import cache
from typing import Any, Literal

import numpy as np
from pydantic import Field, PrivateAttr, create_model

from examsolver.engine.ops import LAYERS, LOSSES
from examsolver.engine.ops.base import Flow, NoParams, val
from examsolver.engine.ops.elementary import Activation, Rows
from examsolver.engine.ops.recurrent import Recurrent, as_sequence
from examsolver.engine.scalar import Exact
from examsolver.engine.tensor import zeros
from examsolver.errors import EngineError, ExprError, SpecError
from examsolver.mathnodes import Call, Const, Deriv, Op, Sum, Sym, Text, call, mul
from examsolver.solution import Phrase, Solution, Step, Table
from examsolver.spec.model import TITLE_PAGE, Conventions, Localized, Strict, Tensor, Text as TextField
from examsolver.spec.model import validate, validate_entries

MAX_RULE_LENGTH = 500


# ----- schema ------------------------------------------------------------------
class OutputLayer(Strict):
    W_hy: Tensor
    b_y: Tensor | None = None
    activation: Literal["softmax", "sigmoid", "identity"] = "softmax"


class Gradient(Strict):
    wrt: list[str] = Field(min_length=1, max_length=64)       # a stack has weights per layer and direction


class GradientTask(Strict):
    gradient: Gradient


class Rule(Strict):
    """The intended value of one hidden element, from the previous intended state h1… and the input x1…."""

    equals: str | None = Field(None, max_length=MAX_RULE_LENGTH)
    positive_iff: str | None = Field(None, max_length=MAX_RULE_LENGTH)
    meaning: Localized | None = None


class Case(Strict):
    inputs: Tensor
    h0: Tensor | None = None
    expected: Tensor | None = None           # T × H explicit intended states (instead of the rules)


class Behaviour(Strict):
    rules: list[Rule] | None = Field(None, max_length=100)
    sequences: list[Case] = Field(default_factory=list, max_length=50)
    check_given: bool = True                 # check the spec's own sequence first


@cache   # built once per process (see spec/model.py network_spec_model)
def recurrent_spec_model():
    from examsolver.engine.counting import Architecture

    return create_model(
        "RecurrentSpec", __base__=RecurrentBase,
        id=(TextField, ...),
        kind=(Literal["recurrent"], ...),
        source=(TextField, ""),
        document=TITLE_PAGE,
        title=(Localized, Localized()),
        statement=(Localized | None, None),
        cell=(Any, ...),
        output=(OutputLayer | None, None),
        inputs=(Tensor, ...),
        targets=(list[Tensor | None] | None, None),
        loss=(Any, None),
        loss_over=(Literal["last", "sum"], "last"),
        tasks=(list[Literal["forward"] | GradientTask], Field(default_factory=lambda: ["forward"], max_length=10)),
        behaviour=(Behaviour | None, None),
        count=(list[Architecture] | None, Field(None, max_length=20)),
        conventions=(Conventions, Field(default_factory=Conventions)),
        answers=(dict[str, Any], Field(default_factory=dict)),
    )


CELLS = ("rnn", "lstm", "gru")


class RecurrentBase(Strict):
    """The cell and the loss are validated against their own kinds' schemas (parse) and kept here."""

    _cell_entry: Any = PrivateAttr(None)
    _loss_entry: Any = PrivateAttr(None)

    @property
    def cell_entry(self):
        return self._cell_entry

    @property
    def loss_entry(self):
        return self._loss_entry


def parse(doc):
    """Validate the spec, then its cell and loss against their own schemas; every problem at once."""
    problems, spec = [], None
    try:
        spec = validate(doc, recurrent_spec_model())
    except SpecError as err:
        problems += err.problems
    data = doc.data if isinstance(doc.data, dict) else {}
    cells = {k: LAYERS[k] for k in CELLS}
    cell, found = validate_entries(doc, data.get("cell", {}), cells, ("cell",), "cell")
    problems += found
    if not cell and not found:
        problems.append(doc.problem(("cell",), f"expected one cell ({', '.join(CELLS)}) with its weights"))
    loss = []
    if data.get("loss") is not None:
        loss, found = validate_entries(doc, data["loss"], LOSSES, ("loss",), "loss")
        problems += found
    if problems:
        raise SpecError(problems)
    spec._cell_entry, spec._loss_entry = cell[0], (loss[0] if loss else None)
    return spec


# ----- symbols -------------------------------------------------------------------
def at(base: str, t, bold: bool = True) -> Sym:
    """x⁽ᵗ⁾, h⁽ᵗ⁻¹⁾ …"""
    return Sym(base, sup=f"({t})", bold=bold)


def weight(key: str) -> Sym:
    base, _, sub = key.partition("_")
    return Sym(base, sub, bold=True)


class Located:
    """EngineError inside the block → SpecError at a YAML location."""

    def __init__(self, doc, loc):
        self.doc, self.loc = doc, loc

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if kind is not None and issubclass(kind, (EngineError, ExprError)):
            raise SpecError([self.doc.problem(self.loc, str(error))]) from None
        return False


# ----- forward ---------------------------------------------------------------------
def rnn_steps(cell, xs, steps, x_syms=None) -> list:
    """h(t) = f(W_hh h(t−1) + W_xh x(t) + b_h) for every t the cell reads, numbers written out
    (b_ih + b_hh for PyTorch's two biases; h(t+1) for a unit reading backwards)."""
    W_hh, W_xh = cell.param_sym("W_hh"), cell.param_sym("W_xh")
    biases = [k for k in ("b_h", "b_ih", "b_hh") if k in cell.weights]
    shown = [k for k in biases if any(v.sign() for v in cell.weights[k])]
    fn = cell.f.fn_name
    h = cell.state_sym

    def x(_, t):
        if not x_syms:
            return at("x", t)
        return x_syms[0].replace(sup="(t)") if t == "t" else x_syms[t - 1]

    def form(t_prev, t):
        inner = Op("+", (mul(W_hh, h("h", t_prev)), mul(W_xh, x("x", t))) + tuple(cell.param_sym(k) for k in shown))
        return call(fn, inner) if fn else inner

    general = ("t+1" if cell.reverse else "t-1", "t")
    out = [Step(lhs=h("h", "t"), forms=[form(*general)], text=Phrase("recurrent.rnn_equation", {}))]
    for t in cell.order(len(xs)):
        s, prev = steps[t - 1], cell.previous(t)
        previous = cell.h0 if prev in (0, len(xs) + 1) else steps[prev - 1]["h"]
        bindings = {W_hh: val(cell.weights["W_hh"]), h("h", prev): val(previous), W_xh: val(cell.weights["W_xh"]),
                    x("x", t): val(xs[t - 1])}
        bindings.update({cell.param_sym(k): val(cell.weights[k]) for k in shown})
        extra = [call(fn, val(s["a"]))] if fn else []
        out.append(Step(lhs=h("h", t), forms=[form(prev, t)], bindings=bindings, extra_forms=extra,
                        result=s["h"], text=Phrase("recurrent.time_step", {"t": t})))
    return out


def _gate_form(cell, k: int, name: str, x_sym, h_sym, reset=None):
    """W_i· x + b_i· + W_h· h + b_h·  (with r ⊙ (…) around the hidden part for GRU's n); the biases
    the cell has (one per gate: b_·, or none)."""
    from examsolver.mathnodes import Paren

    def block(key):
        whole = cell.param_sym(key)
        return whole.replace(sub=whole.sub[:1] + name), val(cell.block(key, k))

    (Wi, Wi_v), (Wh, Wh_v) = block("W_ih"), block("W_hh")
    bindings = {Wi: Wi_v, Wh: Wh_v}
    bias = {}
    for key in ("b_ih", "b", "b_hh"):
        if key in cell.weights:
            sym, value = block(key)
            bias[key] = (sym,)
            bindings[sym] = value
    in_bias = bias.get("b_ih", ()) + bias.get("b", ())
    hidden = (mul(Wh, h_sym),) + bias.get("b_hh", ())
    if reset is not None:
        hidden = (Op("odot", (reset, Paren(Op("+", hidden)) if len(hidden) > 1 else hidden[0])),)
    return Op("+", (mul(Wi, x_sym),) + in_bias + hidden), bindings


def gated_steps(cell, xs, steps, x_syms=None) -> list:
    """Every gate of every step of an LSTM or GRU (PyTorch's equations), in the order the cell reads them."""
    out = []
    lstm = cell.has_cell_state
    S = cell.state_sym
    for t in cell.order(len(xs)):
        s, prev = steps[t - 1], cell.previous(t)
        state = cell.initial() if prev in (0, len(xs) + 1) else steps[prev - 1]
        x_sym, h_prev = x_syms[t - 1] if x_syms else at("x", t), S("h", prev)
        base = {x_sym: val(xs[t - 1]), h_prev: val(state["h"])}
        first = True
        for g, name in enumerate(cell.gate_names):
            reset = S("r", t) if (not lstm and name == "n") else None
            inner, bindings = _gate_form(cell, g, name, x_sym, h_prev, reset)
            fn = "tanh" if name in ("g", "n") else "sigma"
            bindings.update(base)
            if reset is not None:
                bindings[reset] = val(s["r"])
            out.append(Step(lhs=S(name, t), forms=[call(fn, inner)], bindings=bindings, result=s[name],
                            text=Phrase("recurrent.time_step", {"t": t}) if first else None))
            first = False
        if lstm:
            c_prev = S("c", prev)
            out.append(Step(lhs=S("c", t), forms=[Op("+", (Op("odot", (S("f", t), c_prev)),
                                                           Op("odot", (S("i", t), S("g", t)))))],
                            bindings={S("f", t): val(s["f"]), c_prev: val(state["c"]), S("i", t): val(s["i"]),
                                      S("g", t): val(s["g"])}, result=s["c"]))
            out.append(Step(lhs=S("h", t), forms=[Op("odot", (S("o", t), call("tanh", S("c", t))))],
                            bindings={S("o", t): val(s["o"]), S("c", t): val(s["c"])}, result=s["h"]))
        else:
            from examsolver.mathnodes import Paren

            one_minus = Op("-", (Const(1), S("z", t)))
            out.append(Step(lhs=S("h", t), forms=[Op("+", (Op("odot", (Paren(one_minus), S("n", t))),
                                                           Op("odot", (S("z", t), h_prev))))],
                            bindings={S("z", t): val(s["z"]), S("n", t): val(s["n"]), h_prev: val(state["h"])},
                            result=s["h"]))
    return out


def cell_steps(cell, xs, steps, x_syms=None) -> list:
    """The forward steps of one cell; x_syms: what its input is called at each step (x(t) by default)."""
    return (gated_steps if cell.gated else rnn_steps)(cell, xs, steps, x_syms)


class Output:
    """o(t) = W_hy h(t) + b_y, then the output activation."""

    def __init__(self, spec: OutputLayer, hidden: int, conventions):
        W = spec.W_hy if spec.W_hy.ndim == 2 else spec.W_hy.reshape(1, -1)
        if W.shape[1] != hidden:
            raise EngineError(f"W_hy has {W.shape[1]} columns, the cell's output has {hidden} entries")
        self.W = W
        self.b = spec.b_y.reshape(-1) if spec.b_y is not None else zeros((W.shape[0],))
        if self.b.shape != (W.shape[0],):
            raise EngineError(f"b_y has {self.b.size} entries, W_hy has {W.shape[0]} rows")
        self.kind = spec.activation
        self.act = None if self.kind == "identity" else LAYERS[self.kind](NoParams(), 0, conventions)

    def forward(self, h):
        o = np.asarray(self.W.dot(h) + self.b, dtype=object)
        if self.act is None:
            return o, o
        return o, self.act.forward_one(o)

    def steps(self, t, h, o, p) -> list:
        W, b = weight("W_hy"), weight("b_y")
        out = [Step(lhs=at("o", t), forms=[Op("+", (mul(W, at("h", t)), b))],
                    bindings={W: val(self.W), at("h", t): val(h), b: val(self.b)}, result=o,
                    text=Phrase("recurrent.output", {"t": t}))]
        if self.act is not None:
            out.append(Step(lhs=at("p", t), forms=[self.act.formula(at("o", t))], bindings={at("o", t): val(o)},
                            result=p))
        return out


# ----- the solver ---------------------------------------------------------------------
class Problem:
    def __init__(self, spec, doc):
        self.spec, self.doc = spec, doc
        kind, params = spec.cell_entry
        with Located(doc, ("cell", kind)):
            self.cell: Recurrent = LAYERS[kind](params, 0, spec.conventions)
            self.cell.name = params.name or kind
        with Located(doc, ("inputs",)):
            self.xs = as_sequence(spec.inputs, self.cell.input_size, "inputs")
        self.output = None
        if spec.output is not None:
            with Located(doc, ("output",)):
                self.output = Output(spec.output, self.cell.out_size, spec.conventions)
        self.loss = LOSSES[spec.loss_entry[0]](spec.loss_entry[1]) if spec.loss_entry else None

    @property
    def T(self) -> int:
        return len(self.xs)

    def forward(self, solution: Solution) -> list:
        section = solution.section("section.forward")
        self.graph, self.nodes = self.cell.unrolled(self.xs)
        steps = [{k: node.value for k, node in step.items()} for step in self.nodes]
        if self.cell.units:
            self._stack_forward(solution, section, steps)
        else:
            for block in cell_steps(self.cell, self.xs, steps):
                section.add(block)
        self.outputs = []
        for t, s in enumerate(steps, 1):
            if not self.cell.units:
                self._step_results(solution, "", s, t)
            if self.output is not None:
                o, p = self.output.forward(s["h"])
                self.outputs.append((o, p))
                for block in self.output.steps(t, s["h"], o, p):
                    section.add(block)
                solution.results[f"o{t}"] = o
                if self.output.act is not None:
                    solution.results[f"p{t}"] = p
        return steps

    def _step_results(self, solution, prefix: str, s: dict, t: int) -> None:
        """h, c and every gate: i2, f2, r1, … (a(t) of the RNN too); a stack's under its unit (layer1.h2)."""
        for name, value in s.items():
            clash = not prefix and self.output is not None and name in ("o", "p")   # the output layer's o(t), p(t)
            solution.results[f"{self.cell.name}.{name}{t}" if clash else f"{prefix}{name}{t}"] = value

    def _stack_forward(self, solution, section, steps) -> None:
        """Unit by unit in PyTorch's order, each reading the layer below's output (y_k(t) = [h→(t); h←(t)]
        of a bidirectional layer); the stack's output is h(t)."""
        for unit in self.cell.units:
            nodes, inputs = self.cell.unit_steps[unit.short], self.cell.unit_inputs[unit.short]
            values = [{k: node.value for k, node in s.items()} for s in nodes]
            section.say("recurrent.unit_reverse" if unit.reverse else "recurrent.unit", unit=unit.short,
                        layer=unit.tag.rstrip("r"), tag=unit.tag, T=self.T, after=self.T + 1)
            for block in cell_steps(unit, [x.value for x in inputs], values, [x.sym for x in inputs]):
                section.add(block)
            for t, s in enumerate(values, 1):
                self._step_results(solution, f"{unit.short}.", s, t)
            if unit.reverse:
                self._layer_output(solution, section, unit.tag.rstrip("r"))
        for t, s in enumerate(steps, 1):
            solution.results[f"h{t}"] = s["h"]

    def _layer_output(self, solution, section, layer: str) -> None:
        """y_k(t) = [h→(t); h←(t)] of a bidirectional layer, what the layer above (or the loss) reads."""
        for t in range(1, self.T + 1):
            top = int(layer) == self.cell.p.num_layers
            node = self.graph[f"h{t}" if top else f"layer{layer}.y{t}"]
            pieces = tuple(i.sym for i in node.inputs)
            section.add(Step(lhs=node.sym, forms=[Call("vector", pieces)],
                             bindings={p: val(i.value) for p, i in zip(pieces, node.inputs)}, result=node.value,
                             text=Phrase("recurrent.layer_output", {}) if t == 1 else None))
            if not top:
                solution.results[f"layer{layer}.y{t}"] = node.value

    # ----- loss and backpropagation through time -----
    def loss_steps(self) -> list[int]:
        return list(range(self.T)) if self.spec.loss_over == "sum" else [self.T - 1]

    def target(self, t: int):
        targets = self.spec.targets or []
        if t >= len(targets) or targets[t] is None:
            raise SpecError([self.doc.problem(("targets",), f"the loss needs a target for step {t + 1} "
                                                              f"(targets: one entry per step, null where unused)")])
        return targets[t]

    def loss_section(self, solution, steps) -> dict:
        """L(t) for the steps that carry a loss, and ∂L(t)/∂h(t) for each."""
        section = solution.section("section.loss")
        direct, total = {}, Exact(0)
        for t in self.loss_steps():
            y = self.target(t)
            n = t + 1
            if self.output is not None:
                o, p = self.outputs[t]
                out_sym = at("p", n) if self.output.act is not None else at("o", n)
                value_of = p
            else:
                out_sym, value_of = self.nodes[t]["h"].sym, steps[t]["h"]
            flow = Flow(n, out_sym, Sym("L").of_example(n), value_of, None)
            with Located(self.doc, ("targets", t)):
                self.loss.check_target(value_of, y)
                value = self.loss.value(value_of, y)
            solution.warnings.extend(self.loss.degeneracies([value_of], [y]))
            for block in self.loss.steps(flow, y, value):
                section.add(block)
            solution.results[f"loss({n})"] = value
            total = total + value
            direct[t] = self._grad_h(section, flow, n, value_of, y)
        if self.spec.loss_over == "sum" and self.T > 1:
            parts = tuple(Sym("L").of_example(t + 1) for t in self.loss_steps())
            section.add(Step(lhs=Sym("L"), forms=[Sum("t", Const(1), Const(self.T), Sym("L").of_example("t")),
                                                  Op("+", parts)], result=total, text=Phrase("recurrent.loss_sum", {})))
        solution.results["loss"] = total
        return direct

    def _grad_h(self, section, flow, n, value_of, y):
        """∂L(t)/∂h(t) through the output layer (if any)."""
        out = self.output
        if out is None:
            g = self.loss.grad(value_of, y)
            for block in self.loss.grad_steps(flow, None, y, g):
                section.add(block)
            return np.asarray(g, dtype=object)
        o_sym = at("o", n)
        if out.act is not None and self.loss.fuses_with == out.kind:
            g_o = self.loss.fused_grad(value_of, y)
            blocks = self.loss.grad_steps(flow, o_sym, y, g_o)
        else:
            g_p = self.loss.grad(value_of, y)
            blocks = self.loss.grad_steps(flow, None, y, g_p)
            g_o = g_p if out.act is None else out.act.vjp_one(self.outputs[n - 1][0], value_of, g_p)[0]
        for block in blocks:
            section.add(block)
        self.g_o[n - 1] = np.asarray(g_o, dtype=object)
        L = Sym("L").of_example(n)
        g_h = np.asarray(self.g_o[n - 1].dot(out.W), dtype=object)
        section.add(Step(lhs=Deriv(L, self.nodes[n - 1]["h"].sym), forms=[mul(Deriv(L, o_sym), weight("W_hy"))],
                         bindings={Deriv(L, o_sym): val(self.g_o[n - 1], "row"), weight("W_hy"): val(out.W)},
                         result=g_h, layout="row", text=Phrase("recurrent.grad_output", {"t": n})))
        return g_h

    def backward(self, direct: dict):
        """One reverse pass over the unrolled cell, seeded with ∂L(t)/∂h(t) of every loss."""
        return self.graph.backward({self.nodes[t]["h"]: g for t, g in direct.items()})

    def bptt_section(self, solution, steps, direct: dict, wanted: list) -> None:
        grads = self.backward(direct)
        section = solution.section("section.bptt")
        if self.cell.units:
            self._stack_bptt(solution, section, grads, direct, wanted)
        elif not self.cell.gated:       # the plain RNN as on the 2022 slides; gated cells from their graph
            self._rnn_steps(solution, section, steps, direct, grads, wanted)
        else:
            self._gated_steps(section, grads, direct)
            for key in wanted:
                if key in self.cell.weights:
                    section.blocks.extend(self._shared_sum_steps(key, grads))
                    solution.results[f"{key}.grad"] = grads.get(self.graph[key], zeros(self.cell.weights[key].shape))
        if self.output is not None:
            self._output_grads(solution, section, steps, wanted)
        prefixes = [f"{u.short}." for u in self.cell.units] or [""]
        for name in (f"{p}{k}0" for p in prefixes for k in ("h", "c")):
            if name in self.graph:
                solution.results[f"{name}.grad"] = grads.get(self.graph[name], zeros((self.cell.hidden,)))
        for key in wanted:
            if key in self.graph and key not in self.cell.weights:
                solution.results[f"{key}.grad"] = grads.get(self.graph[key], zeros(np.shape(self.graph[key].value)))

    def _stack_bptt(self, solution, section, grads, direct: dict, wanted: list) -> None:
        """A stack: the outputs y(t), then each unit from the top layer down, every named node from the step
        read last back to the first, each through the nodes that read it; then every parameter's sum."""
        from examsolver.engine.present import gradient_step

        L, stacked_output = Sym("L"), self.cell.p.bidirectional     # else the top unit's h(t) is the output
        for t in range(self.T, 0, -1):
            node = self.nodes[t - 1]["h"]
            if stacked_output and grads[node] is not None:
                seed = (Deriv(L.of_example(t), node.sym), direct[t - 1]) if t - 1 in direct else None
                section.add(gradient_step(self.graph, node, grads, L, seed))
        for unit in reversed(self.cell.units):
            section.say("recurrent.unit_bptt", unit=unit.short)
            nodes = self.cell.unit_steps[unit.short]
            for t in reversed(unit.order(self.T)):
                first = True
                for name in reversed(list(nodes[t - 1])):
                    node = nodes[t - 1][name]
                    if grads[node] is None:
                        continue
                    outputs = not stacked_output and unit is self.cell.units[-1] and name == "h" and t - 1 in direct
                    seed = (Deriv(L.of_example(t), node.sym), direct[t - 1]) if outputs else None
                    step = gradient_step(self.graph, node, grads, L, seed)
                    if first:
                        step.text = Phrase("recurrent.bptt_step", {"t": t})
                        first = False
                    section.add(step)
            for key in unit.weights:
                full = f"{unit.short}.{key}"
                if full in wanted:
                    section.blocks.extend(self._shared_sum_steps(full, grads))
                    solution.results[f"{full}.grad"] = grads.get(self.graph[full], zeros(unit.weights[key].shape))
        for key in wanted:                  # an input x(t): through the first layer's units that read it
            if key in self.graph and self.graph[key].role == "input" and grads[self.graph[key]] is not None:
                section.add(gradient_step(self.graph, self.graph[key], grads, L))

    def _shared_sum_steps(self, key: str, grads) -> list:
        """A stacked weight's gradient: each gate's block summed over the time steps that read it, then
        the blocks stacked (W_ih = [W_ii; W_if; W_ig; W_io])."""
        from examsolver.engine.present import formula

        L, leaf = Sym("L"), self.graph[key]
        steps = [Step(text=Phrase("recurrent.grad_param", {"name": key}))]
        if not all(isinstance(c.op, Rows) for c in self.graph.consumers(leaf)):     # read whole at every step
            parts = [part for _, part in grads.parts.get(leaf, [])]
            form = [Op("+", tuple(val(p, "row" if p.ndim == 1 else "col") for p in parts))] if len(parts) > 1 else []
            return [Step(lhs=Deriv(L, leaf.sym), forms=form, result=grads.get(leaf, zeros(leaf.value.shape)),
                         layout="row" if leaf.value.ndim == 1 else "col",
                         text=Phrase("recurrent.grad_param", {"name": key}))]
        for block in self.graph.consumers(leaf):
            parts = [part for _, part in grads.parts.get(block, [])]
            if not parts:
                continue
            form = Op("+", tuple(val(p, "row" if p.ndim == 1 else "col") for p in parts)) if len(parts) > 1 else None
            steps.append(Step(lhs=Deriv(L, formula(block)), forms=[form] if form is not None else [],
                              result=grads[block], layout="row" if grads[block].ndim == 1 else "col"))
        steps.append(Step(lhs=Deriv(L, leaf.sym), forms=[], result=grads.get(leaf, zeros(leaf.value.shape)),
                          layout="row" if leaf.value.ndim == 1 else "col"))
        steps[1].text, steps = steps[0].text, steps[1:]
        return steps

    def _gated_steps(self, section, grads, direct: dict) -> None:
        """∂L/∂(every named node) from the last step back: each through the nodes that read it."""
        from examsolver.engine.present import gradient_step

        for t in range(self.T, 0, -1):
            first = True
            for name in reversed(list(self.nodes[t - 1])):
                node = self.nodes[t - 1][name]
                if grads[node] is None:
                    continue
                seed = (Deriv(Sym("L").of_example(t), node.sym), direct[t - 1]) \
                    if name == "h" and t - 1 in direct else None
                step = gradient_step(self.graph, node, grads, Sym("L"), seed)
                if first:
                    step.text = Phrase("recurrent.bptt_step", {"t": t})
                    first = False
                section.add(step)

    def _rnn_steps(self, solution, section, steps, direct, grads, wanted) -> None:
        """The plain RNN as on the 2022 slides: ∂L/∂h(t), ∂L/∂a(t) per step, then the parameter sums."""
        cell = self.cell
        zero = zeros((cell.hidden,))
        gh = [grads.get(s["h"], zero) for s in self.nodes]
        ga = [grads.get(s["a"], zero) for s in self.nodes]
        L = Sym("L")
        W_hh = weight("W_hh")
        for t in range(self.T - 1, -1, -1):
            n = t + 1
            terms, bindings = [], {}
            if t in direct:
                local = Deriv(L.of_example(n), at("h", n))
                terms.append(local)
                bindings[local] = val(direct[t], "row")
            if t < self.T - 1:
                da_next = Deriv(L, at("a", n + 1))
                terms.append(mul(da_next, W_hh))
                bindings[da_next] = val(ga[t + 1], "row")
                bindings[W_hh] = val(cell.weights["W_hh"])
            form = terms[0] if len(terms) == 1 else Op("+", tuple(terms))
            section.add(Step(lhs=Deriv(L, at("h", n)), forms=[form], bindings=bindings, result=gh[t],
                             layout="row", text=Phrase("recurrent.bptt_step", {"t": n})))
            section.add(self._through_activation(n, gh[t], ga[t], steps[t]))
        previous = [cell.h0] + [s["h"] for s in steps[:-1]]
        sources = {"W_hh": ("h", previous, -1), "W_xh": ("x", list(self.xs), 0)}
        for key in wanted:
            if key in sources:
                base, values, shift = sources[key]
                terms, bindings = [], {}
                for t in range(self.T):
                    D = Deriv(L, at("a", t + 1))
                    v = at(base, t + 1 + shift)
                    terms.append(mul(D.T, v.T))
                    bindings[D] = val(ga[t], "row")
                    bindings[v] = val(values[t])
                general = Sum("t", Const(1), Const(self.T), mul(Deriv(L, at("a", "t")).T, at(base, "t-1" if shift else "t").T))
            elif key in ("b_h", "b_ih", "b_hh") and key in cell.weights:      # every bias is added to a(t)
                terms = [Deriv(L, at("a", t + 1)) for t in range(self.T)]
                bindings = {D: val(ga[t], "row") for t, D in enumerate(terms)}
                general = Sum("t", Const(1), Const(self.T), Deriv(L, at("a", "t")))
            else:
                continue
            result = grads.get(self.graph[key], zeros(cell.weights[key].shape))
            form = terms[0] if len(terms) == 1 else Op("+", tuple(terms))
            section.add(Step(lhs=Deriv(L, weight(key)), forms=[general, form], bindings=bindings, result=result,
                             layout="row" if key.startswith("b") else "col", text=Phrase("recurrent.grad_param", {"name": key})))
            solution.results[f"{key}.grad"] = result

    def _through_activation(self, n, gh, ga, s) -> Step:
        L = Sym("L")
        h_bar = Deriv(L, at("h", n))
        local = Activation(self.cell.f).factor(at("a", n), at("h", n))
        if local is None:
            return Step(lhs=Deriv(L, at("a", n)), forms=[h_bar], bindings={h_bar: val(gh, "row")}, result=ga,
                        layout="row")
        mask = self.cell.local_derivative(s["a"], s["h"])
        return Step(lhs=Deriv(L, at("a", n)), forms=[Op("odot", (h_bar, local))],
                    bindings={h_bar: val(gh, "row"), local: val(mask, "row")}, result=ga, layout="row")

    def _output_grads(self, solution, section, steps, wanted) -> None:
        for key in ("W_hy", "b_y"):
            if key not in wanted:
                continue
            terms, bindings, total = [], {}, None
            for t in sorted(self.g_o):
                L = Sym("L").of_example(t + 1)
                D = Deriv(L, at("o", t + 1))
                g = self.g_o[t] if key == "b_y" else np.multiply.outer(self.g_o[t], steps[t]["h"])
                total = g if total is None else total + g
                if key == "b_y":
                    terms.append(D)
                else:
                    h = self.nodes[t]["h"].sym
                    terms.append(mul(D.T, h.T))
                    bindings[h] = val(steps[t]["h"])
                bindings[D] = val(self.g_o[t], "row")
            form = terms[0] if len(terms) == 1 else Op("+", tuple(terms))
            section.add(Step(lhs=Deriv(Sym("L"), weight(key)), forms=[form], bindings=bindings, result=total,
                             layout="row" if key == "b_y" else "col", text=Phrase("recurrent.grad_param", {"name": key})))
            solution.results[f"{key}.grad"] = total


# ----- intended behaviour ------------------------------------------------------------
def _rule_interpreter():
    from examsolver.spec import expr

    class RuleInterpreter(expr._Interpreter):
        """The number interpreter plus variable names and one comparison."""

        def __init__(self, source, variables):
            super().__init__(source)
            self.variables = variables

        def visit_Name(self, node, depth):
            if node.id in self.variables:
                value = self.variables[node.id]
                if value is None:
                    raise ExprError(f"{node.id} is only constrained (positive_iff), it has no intended value")
                return value
            if node.id in expr.CONSTANTS:
                return expr.CONSTANTS[node.id]
            raise ExprError(f"unknown name {node.id!r} (known: {', '.join(self.variables)})")

        def visit_Compare(self, node, depth):
            if len(node.ops) != 1:
                raise ExprError("one comparison at a time (a < b, not a < b < c)")
            left, right = self.visit(node.left, depth), self.visit(node.comparators[0], depth)
            if isinstance(left, list) or isinstance(right, list):
                raise ExprError("comparisons are between numbers")
            sign = (left - right).sign()
            ops = {ast.Gt: sign > 0, ast.GtE: sign >= 0, ast.Lt: sign < 0, ast.LtE: sign <= 0,
                   ast.Eq: sign == 0, ast.NotEq: sign != 0}
            if type(node.ops[0]) not in ops:
                raise ExprError("comparison must be one of > >= < <= == !=")
            return ops[type(node.ops[0])]

    return RuleInterpreter


def evaluate_rule(text: str, variables: dict, condition: bool):
    from examsolver.spec import expr

    source = text.strip().replace("−", "-")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError):
        raise ExprError(f"malformed rule {text!r}") from None
    expr._check_size(tree)
    try:
        value = _rule_interpreter()(source, variables).visit(tree.body, 0)
    except ZeroDivisionError:
        raise ExprError(f"rule {text!r} divides by zero here") from None
    if condition != isinstance(value, bool):
        raise ExprError(f"rule {text!r} must be " + ("a comparison (e.g. h1 - h2 > 0)" if condition
                                                        else "a number, not a comparison"))
    return value


def intended_states(rules: list, h0, xs) -> list:
    """Per step: a list of ('=', value) or ('>0', bool) per hidden element."""
    H = len(rules)
    previous = list(h0)
    out = []
    for x in xs:
        variables = {f"h{j + 1}": previous[j] for j in range(H)}
        variables.update({f"x{j + 1}": x[j] for j in range(len(x))})
        state = []
        for rule in rules:
            if (rule.equals is None) == (rule.positive_iff is None):
                raise ExprError("each rule has exactly one of equals / positive_iff")
            if rule.equals is not None:
                state.append(("=", evaluate_rule(rule.equals, variables, False)))
            else:
                state.append((">0", evaluate_rule(rule.positive_iff, variables, True)))
        out.append(state)
        previous = [v if kind == "=" else None for kind, v in state]
    return out


def _meets(value: Exact, want) -> bool:
    kind, target = want
    if kind == "=":
        return value == target
    return (value.sign() > 0) == target


def _want_node(state) -> Call:
    parts = []
    for kind, target in state:
        if kind == "=":
            parts.append(Const(target))
        else:
            parts.append(Text({"hr": "> 0", "en": "> 0"}) if target else Const(Exact(0)))
    return Call("vector", tuple(parts))


def behaviour_section(problem: Problem, solution: Solution) -> None:
    spec, cell = problem.spec.behaviour, problem.cell
    if cell.units:
        raise SpecError([problem.doc.problem(("behaviour",), "the intended behaviour is checked for one cell, "
                                                            "not a stacked or bidirectional one")])
    cases = ([(problem.xs, cell.h0, None, ("inputs",))] if spec.check_given else [])
    for k, case in enumerate(spec.sequences):
        loc = ("behaviour", "sequences", k)
        with Located(problem.doc, loc + ("inputs",)):
            xs = as_sequence(case.inputs, cell.input_size, "inputs")
        h0 = cell.h0 if case.h0 is None else case.h0.reshape(-1)
        if h0.shape != (cell.hidden,):
            raise SpecError([problem.doc.problem(loc + ("h0",), f"h0 must have {cell.hidden} entries")])
        cases.append((xs, h0, case.expected, loc))
    section = solution.section("section.behaviour")
    if spec.rules:
        section.say("behaviour.rules_intro")
        for j, rule in enumerate(spec.rules):
            key = "behaviour.rule_equals" if rule.equals is not None else "behaviour.rule_positive"
            meaning = rule.meaning.model_dump() if rule.meaning else {"hr": "", "en": ""}
            section.say(key, element=j + 1, rule=rule.equals or rule.positive_iff, meaning=meaning)
    failures = 0
    for k, (xs, h0, expected, loc) in enumerate(cases, 1):
        with Located(problem.doc, loc):
            wants = _wanted(spec, expected, h0, xs, cell.hidden)
        saved = cell.h0
        cell.h0 = h0
        steps = cell.unroll(xs)
        cell.h0 = saved
        rows, first = [], 0
        for t, (x, s, want) in enumerate(zip(xs, steps, wants), 1):
            bad = [j + 1 for j, w in enumerate(want) if not _meets(s["h"][j], w)]
            rows.append([Const(t), val(x, "colT"), val(s["h"], "colT"), _want_node(want),
                         Phrase("behaviour.ok" if not bad else "behaviour.broken",
                                {"elements": ", ".join(map(str, bad))})])
            if bad and not first:
                first = t
                break
        section.add(Phrase("behaviour.sequence", {"k": k, "h0": val(h0, "colT")}))
        section.add(Table(header=[Phrase("behaviour.label.step"), Phrase("behaviour.label.input"), Phrase("behaviour.label.hidden"),
                                  Phrase("behaviour.label.intended"), Phrase("behaviour.label.status")], rows=rows))
        if first:
            failures += 1
            section.add(Phrase("behaviour.fails_at", {"k": k, "t": first}))
        else:
            section.add(Phrase("behaviour.holds", {"k": k, "steps": len(xs)}))
        solution.results[f"behaviour.seq{k}.first_failure"] = Exact(first)
    solution.results["behaviour.failures"] = Exact(failures)
    section.add(Phrase("behaviour.summary_ok" if not failures else "behaviour.summary_broken",
                       {"n": len(cases), "failures": failures}))


def _wanted(spec: Behaviour, expected, h0, xs, hidden: int) -> list:
    if expected is not None:
        if expected.shape != (len(xs), hidden):
            raise EngineError(f"expected must be {len(xs)} × {hidden} (one intended state per step)")
        return [[("=", v) for v in row] for row in expected]
    if not spec.rules:
        raise EngineError("give `expected` states for this sequence or `rules` for the behaviour")
    if len(spec.rules) != hidden:
        raise EngineError(f"{len(spec.rules)} rules for a hidden state of {hidden} entries")
    return intended_states(spec.rules, h0, xs)


# ----- entry point ------------------------------------------------------------------------
def solve(spec, doc) -> Solution:
    problem = Problem(spec, doc)
    solution = Solution(problem_id=spec.id, title=spec.title.model_dump(), source=spec.source,
                        statement=spec.statement.model_dump() if spec.statement else None)
    steps = problem.forward(solution)
    wanted = [w for task in spec.tasks if not isinstance(task, str) for w in task.gradient.wrt]
    known = list(problem.cell.weights) + (["W_hy", "b_y"] if problem.output is not None else [])
    known += [n for n in problem.graph.by_name
              if not n.rpartition(".")[2].startswith("_") and "[" not in n and n not in known]
    for j, name in enumerate(wanted):
        if name not in known:
            raise SpecError([doc.problem(("tasks",), f"unknown parameter {name!r} (expected one of: {', '.join(known)})")])
    problem.g_o = {}
    if wanted:
        if problem.loss is None:
            raise SpecError([doc.problem(("tasks",), "gradients need a loss: add `loss:` and `targets:`")])
        direct = problem.loss_section(solution, steps)
        problem.bptt_section(solution, steps, direct, wanted)
    elif problem.loss is not None:
        problem.loss_section(solution, steps)
    if spec.behaviour is not None:
        behaviour_section(problem, solution)
    if spec.count:
        from examsolver.engine.counting import count_section

        for i, arch in enumerate(spec.count):
            count_section(solution, arch, doc, ("count", i))
    solution.conventions = _conventions(problem, wanted)
    solution.number_equations()
    return solution


def _conventions(problem: Problem, wanted) -> list:
    phrases = list(problem.cell.conventions_used())
    if wanted:                  # gradients through the activation: ReLU′(0) is a convention
        phrases.extend(problem.cell.activation_conventions())
    if problem.loss is not None:
        phrases.extend(problem.loss.conventions_used())
        phrases.append(Phrase(f"convention.loss_over_{problem.spec.loss_over}", {}))
    return phrases
