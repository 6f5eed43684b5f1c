"""Sequential models: forward pass, loss, backward pass and SGD update as steps.

The presentation follows the 2022 solution slides: the forward pass layer by
layer (every example of the minibatch in turn), batch statistics where a layer
needs them, then one backward pass per example (∂L⁽ⁿ⁾/∂θ), then the update
with the averaged gradient.  Every value comes from the layers' own forward and
vector-Jacobian products; the steps only show them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import numpy as np

from examsolver.engine.graph import Graph
from examsolver.engine.ops import LAYERS, LOSSES
from examsolver.engine.ops.base import BatchLoss, Flow, LayerOp, LossOp, val
from examsolver.engine.scalar import Exact
from examsolver.errors import EngineError, SpecError
from examsolver.mathnodes import Const, Deriv, Frac, Op, Paren, Sym, Through, mul
from examsolver.solution import Phrase, Solution, Step, unique_phrases


@dataclass
class Pass:
    """Everything the forward pass produced: the graph's nodes in model order.

    nodes[0] is the input x, nodes[i + 1] the output of layer i; ins[i] are the
    nodes layer i reads (the layer before it unless it names its inputs).
    """

    nodes: list = field(default_factory=list)
    ins: list = field(default_factory=list)
    syms: list = field(default_factory=list)     # syms[j]: symbol of nodes[j]

    @property
    def acts(self) -> list:
        return [node.value for node in self.nodes]

    def index(self, node) -> int:
        return self.nodes.index(node)


class WatchedConventions:
    """A layer's view of the problem's conventions that notes which of them the layer reads, so
    that another convention is recomputed from the layers that read it only (Rerun)."""

    def __init__(self, conventions):
        self.conventions, self.read = conventions, set()

    def use(self, conventions) -> None:
        """Read these conventions from now on (what was read stays noted)."""
        self.__dict__ = {"conventions": conventions, "read": self.read}

    def __getattr__(self, name: str):          # a convention's first read (then it is an attribute here)
        if name.startswith("__") or name in ("conventions", "read"):    # copy/pickle probing a bare instance
            raise AttributeError(name)
        self.read.add(name)
        value = getattr(self.conventions, name)
        setattr(self, name, value)             # ReLU′ reads its convention once per entry: keep that cheap
        return value


class Network:
    """The network builder: the layer chain (or graph) over the whole minibatch, losses, batch loss."""

    def __init__(self, spec, doc):
        self.spec, self.doc = spec, doc
        self.conventions = spec.conventions
        self.layers, self.views = [], []
        for i, (kind, params) in enumerate(spec.layers):
            with self.located(("model", i)):
                self.views.append(WatchedConventions(self.conventions))
                self.layers.append(LAYERS[kind](params, i, self.views[-1]))
        self.loss = None
        if spec.loss_entry is not None:
            kind, params = spec.loss_entry
            self.loss = LOSSES[kind](params)
        examples = spec.data if isinstance(spec.data, list) else [spec.data]
        self.xs = [e.x for e in examples]
        self.ys = [e.y for e in examples]
        self.batched = isinstance(spec.data, list)
        self.graph = Graph()
        self.params: dict = {}          # (layer index, key) → parameter node

    def located(self, loc):
        return _Located(self.doc, loc)

    def example_numbers(self):
        return [n + 1 if self.batched else None for n in range(len(self.xs))]

    # ----- forward ------------------------------------------------------------
    def forward(self) -> Pass:
        """The graph of the whole minibatch, built once (later calls return the same pass)."""
        if self.graph.nodes:
            return self._fwd
        shapes = {x.shape for x in self.xs}
        if len(shapes) != 1:
            raise SpecError([self.doc.problem(("data",), "examples of the minibatch have different shapes")])
        x = self.graph.leaf("x", self.xs, role="input")
        result = Pass([x], [], [Sym("x", bold=self.xs[0].ndim > 0)])
        named = {"x": x}
        counter = 0
        for i, layer in enumerate(self.layers):
            with self.located(("model", i)):
                sources = self._sources(layer, i, result, named)
                if layer.arity == 1:
                    for value in sources[0].value:
                        layer.check_input(value)
                node = self._apply(layer, i, sources)
            first = result.index(sources[0])
            sym, counter = layer.output_symbol(result.syms[first], counter, node.value[0])
            result.nodes.append(node)
            result.ins.append(sources)
            result.syms.append(sym)
            named[layer.name] = node
        self._name_outputs(result)
        for node, sym in zip(result.nodes, result.syms):
            node.sym = sym
        self._fwd = result
        return result

    def _sources(self, layer, i: int, fwd: Pass, named: dict) -> list:
        """The nodes a layer reads: those it names (`inputs:`), else the layer before it."""
        names = layer.p.inputs
        if not names:
            if layer.arity != 1:
                raise EngineError(f"{layer.name}: {layer.kind} combines several nodes: name them in `inputs:`")
            return [fwd.nodes[-1]]
        unknown = [n for n in names if n not in named]
        if unknown:
            raise EngineError(f"{layer.name}: unknown input {unknown[0]!r} (expected one of: {', '.join(named)})")
        if len(names) < 2 if layer.arity == 0 else len(names) != layer.arity:
            want = {0: "at least two inputs", 1: "one input"}.get(layer.arity, f"{layer.arity} inputs")
            raise EngineError(f"{layer.name}: {layer.kind} reads {want}, got {len(names)}")
        return [named[n] for n in names]

    def _apply(self, layer, i: int, sources: list):
        """Parameter leaves for the layer's weights, then the layer applied to its inputs."""
        if layer.name in self.graph:
            raise EngineError(f"two nodes are named {layer.name!r}: give the layers different names")
        keys = tuple(layer.weights)
        params = []
        for key in keys:
            leaf = self.graph.leaf(f"{layer.name}.{key}", layer.weights[key], role="param")
            self.params[(i, key)] = leaf
            params.append(leaf)
        op = LayerOp(layer, keys, len(sources))
        return self.graph.apply(op, sources + params, layer.name)

    def set_weight(self, i: int, key: str, value) -> None:
        """A parameter's value as every later pass reads it."""
        self.graph.set_leaf(self.params[(i, key)], value)
        self.layers[i].weights[key] = value

    def _name_outputs(self, fwd: Pass) -> None:
        """The final activation's output is p and its input s, as on the slides."""
        last = self.layers[-1]
        if last.is_activation and len(self.layers) > 1 and not last.p.out:
            fwd.syms[-1] = Sym("p", bold=fwd.acts[-1][0].ndim > 0)
            below = fwd.index(fwd.ins[-1][0]) - 1
            if below >= 0 and not self.layers[below].p.out and not self.layers[below].is_activation:
                fwd.syms[below + 1] = Sym("s", bold=fwd.acts[below + 1][0].ndim > 0)
        elif not last.p.out and not last.is_activation and self.loss is not None:
            fwd.syms[-1] = Sym(self.loss.output_name, bold=fwd.acts[-1][0].ndim > 0)

    def flow(self, fwd: Pass, i: int, m: int) -> Flow:
        n = self.example_numbers()[m]
        first, *others = [fwd.index(node) for node in fwd.ins[i]]
        more = tuple((fwd.syms[j].of_example(n), fwd.acts[j][m]) for j in others)
        return Flow(n, fwd.syms[first].of_example(n), fwd.syms[i + 1].of_example(n), fwd.acts[first][m],
                    fwd.acts[i + 1][m], more=more)

    def output_flow(self, fwd: Pass, m: int) -> Flow:
        """The model output p of example m, as the loss sees it."""
        n = self.example_numbers()[m]
        return Flow(n, fwd.syms[-1].of_example(n), Sym("L").of_example(n), fwd.acts[-1][m], None)

    def forward_section(self, solution: Solution, fwd: Pass) -> None:
        section = solution.section("section.forward")
        for i, layer in enumerate(self.layers):
            first = fwd.index(fwd.ins[i][0])
            inputs = [fwd.syms[first].of_example(n) for n in self.example_numbers()]
            for step in layer.batch_steps(fwd.acts[first], inputs):
                section.add(step)
            for m in range(len(self.xs)):
                for step in layer.forward_steps(self.flow(fwd, i, m)):
                    if m > 0:
                        step.text = None      # the sentence was said for the first example
                    section.add(step)

    # ----- loss ---------------------------------------------------------------
    @property
    def fused(self) -> bool:
        """Cross-entropy on softmax (BCE on sigmoid): the gradient p − y flows to s directly."""
        return self.loss.fuses_with == self.layers[-1].kind and len(self.layers) > 1

    def losses(self, fwd: Pass) -> list:
        """The examples' losses as a graph node (built once), their values returned."""
        if "loss" not in self.graph:
            for m, (p, y) in enumerate(zip(fwd.acts[-1], self.ys)):
                with self.located(("data",) + ((m,) if self.batched else ()) + ("y",)):
                    self.loss.check_target(p, y)
            inputs = [fwd.nodes[-1]] + ([fwd.ins[-1][0]] if self.fused else [])
            with self.located(("loss",)):
                per = self.graph.apply(LossOp(self.loss, self.ys, self.fused), inputs, "losses")
            self.graph.apply(BatchLoss("mean"), [per], "loss")
        return self.graph["losses"].value

    def loss_section(self, solution: Solution, fwd: Pass, values: list, reduction: str) -> Exact:
        section = solution.section("section.loss")
        for m, value in enumerate(values):
            for step in self.loss.steps(self.output_flow(fwd, m), self.ys[m], value):
                section.add(step)
        if not self.batched or len(values) == 1:      # one example: its loss is the loss (no 1/1 · (L⁽¹⁾))
            return values[0]
        n = len(values)
        parts = tuple(Sym("L").of_example(k + 1) for k in range(n))
        summed = Op("+", parts)
        total = sum(values, Exact(0))
        mean = total / n if reduction == "mean" else total
        form = mul(Frac(Const(1), Const(n)), Paren(summed)) if reduction == "mean" else summed
        section.add(Step(lhs=Sym("L"), forms=[form], bindings={s: val(v) for s, v in zip(parts, values)},
                         result=mean, text=Phrase(f"loss.batch_{reduction}", {})))
        return mean

    # ----- backward -----------------------------------------------------------
    def parameter_names(self) -> dict:
        """'conv1.W' → (layer index, weight key), plus aliases such as conv1.kernels."""
        names = {}
        for i, layer in enumerate(self.layers):
            for key in layer.weights:
                names[f"{layer.name}.{key}"] = (i, key)
                for alias in layer.weight_aliases.get(key, ()):
                    names[f"{layer.name}.{alias}"] = (i, key)
        return names

    def node_names(self, fwd: Pass) -> dict:
        """Nodes whose gradient a task may ask for: layers by name, their outputs by symbol (s, p, h2), x."""
        names = {result_name(sym): node for sym, node in zip(fwd.syms, fwd.nodes)}
        return {**names, **{node.name: node for node in fwd.nodes}}

    def backward(self, fwd: Pass, rows: list, loss: Sym, scale, wanted: set, want_x: bool, section,
                 nodes: tuple = ()) -> dict:
        """Backpropagate `loss` = scale · Σ_{m in rows} L⁽ᵐ⁾; add the steps to section (None: no steps).

        rows = [m] is the slides' per-example pass (∂L⁽ᵐ⁾/∂θ); all rows with scale 1/N is
        the backward pass of the minibatch loss at once.  One reverse pass over the graph
        computes every gradient; the steps then show them layer by layer.
        Returns {(i, key): gradient} (and ("x", None), ("node", name) for inputs and nodes asked).
        """
        self.losses(fwd)
        seed = [scale if m in rows else None for m in range(len(self.xs))]
        start = fwd.index(fwd.ins[-1][0]) - 1 if self.fused else len(self.layers) - 1
        targets = self._targets(fwd, wanted, want_x, nodes)
        grads = self.graph.backward({self.graph["losses"]: seed}, wanted=targets)
        for m in rows if section is not None else ():
            self._seed_steps(fwd, m, loss, scale, grads, section)
        return self._present(fwd, grads, rows, start, loss, wanted, want_x, nodes, section)

    def backward_from(self, fwd: Pass, upstream: dict, loss: Sym, tasks, section) -> dict:
        """Given ∂L/∂(node) for some nodes (an exam's "given the upstream gradient G"), backpropagate."""
        targets = self._targets(fwd, tasks.wanted, tasks.want_x, tasks.nodes)
        grads = self.graph.backward(upstream, wanted=targets)
        rows = list(range(len(self.xs)))
        for node, G in upstream.items() if section is not None else ():
            j = fwd.index(node)
            for m in rows:
                section.add(Step(lhs=Deriv(loss, fwd.syms[j].of_example(self.example_numbers()[m])), forms=[],
                                 result=G[m], layout="row", text=Phrase("backward.given", {}) if m == 0 else None))
        start = max(fwd.index(node) for node in upstream) - 1
        out = self._present(fwd, grads, rows, start, loss, tasks.wanted, tasks.want_x, tasks.nodes, section)
        return out

    def propagate(self, fwd: Pass, G: list, rows: list, start: int, loss: Sym, wanted: set, want_x: bool,
                  section) -> dict:
        """Backpropagate upstream gradients G[m] (None where zero) of layer `start`'s output.

        Other problem kinds (siamese) seed the gradients of the model outputs themselves.
        """
        targets = self._targets(fwd, wanted, want_x, ())
        grads = self.graph.backward({fwd.nodes[start + 1]: G}, wanted=targets)
        return self._present(fwd, grads, rows, start, loss, wanted, want_x, (), section)

    def _targets(self, fwd: Pass, wanted: set, want_x: bool, nodes: tuple) -> list:
        targets = [self.params[key] for key in wanted] + [self.node_names(fwd)[name] for name in nodes]
        return targets + [fwd.nodes[0]] if want_x else targets

    def _present(self, fwd: Pass, grads, rows: list, start: int, loss: Sym, wanted: set, want_x: bool,
                 nodes: tuple, section) -> dict:
        """The gradients asked for; the steps of the reverse pass, layer by layer from `start` down,
        into section (None: no steps, for results only)."""
        needs = self.graph._needs(self._targets(fwd, wanted, want_x, nodes))
        out = {}
        for i in range(start, -1, -1):
            node = fwd.nodes[i + 1]
            if node not in needs or grads[node] is None:
                continue
            keys = sorted(k for (j, k) in wanted if j == i)    # sorted: results in a fixed order
            if section is not None:
                self._layer_steps(fwd, grads, i, rows, loss, keys, needs, section)
            for key in keys:
                out[(i, key)] = grads[self.params[(i, key)]]
        if want_x:
            if section is not None:
                self._sum_steps(fwd, grads, fwd.nodes[0], 0, rows, loss, section)
            G = grads.get(fwd.nodes[0], [None] * len(self.xs))
            out[("x", None)] = [G[m] for m in rows] if len(rows) > 1 else G[rows[0]]
        for name in nodes:
            G = grads.get(self.node_names(fwd)[name], [None] * len(self.xs))
            out[("node", name)] = [G[m] for m in rows] if len(rows) > 1 else G[rows[0]]
        return out

    def _layer_steps(self, fwd: Pass, grads, i: int, rows: list, loss: Sym, keys: list, needs: set,
                     section) -> None:
        """Layer i's steps of the reverse pass: per example, then its parameters' sums over the rows."""
        node, layer = fwd.nodes[i + 1], self.layers[i]
        G = grads[node]
        self._sum_steps(fwd, grads, node, i + 1, rows, loss, section)
        contributions = [grads.through(inp, node) for inp in fwd.ins[i]]
        want_inputs = [inp in needs for inp in fwd.ins[i]]
        shares = []
        for k in range(len(self.xs)):
            if G[k] is None:
                continue
            flow = self.flow(fwd, i, k)
            flow.loss, flow.gys, flow.via = loss, G, fwd.syms[i + 1]
            flow.shared = frozenset(fwd.syms[fwd.index(inp)].of_example(flow.n) for inp in fwd.ins[i]
                                    if len(grads.parts.get(inp, [])) > 1)
            if len(rows) > 1:   # parameter gradients are summed over the rows below
                shares.append(self._row_grads(layer, fwd, i, k, G, keys))
                shown = {}
            else:
                shown = {key: grads[self.params[(i, key)]] for key in keys}
            gx = [c[k] if c is not None else None for c in contributions]
            if layer.arity == 1:
                gx, want = gx[0], want_inputs[0]
            else:
                want = want_inputs
            for n_step, step in enumerate(layer.backward_steps(flow, G[k], gx, shown, want)):
                if shares and len(shares) > 1 and n_step == 0:
                    step.text = None      # said for the first example
                section.add(step)
        for key in keys if len(rows) > 1 else ():
            parts = tuple(val(share[key], layer.weight_layout(key)) for share in shares)
            section.add(Step(lhs=Deriv(loss, layer.weight_sym(key)), forms=[Op("+", parts)],
                             result=grads[self.params[(i, key)]], layout=layer.weight_layout(key),
                             text=Phrase("backward.parameter_sum", {"name": f"{layer.name}.{key}"})))

    def _sum_steps(self, fwd: Pass, grads, node, j: int, rows: list, loss: Sym, section) -> None:
        """A node read by several layers: its gradient is the sum of what flows back through each."""
        parts = grads.parts.get(node, [])
        if len(parts) < 2:
            return
        for m in rows:
            n = self.example_numbers()[m]
            sym = fwd.syms[j].of_example(n)
            shares = {Through(Deriv(loss, sym), fwd.syms[fwd.index(by)]): val(g[m], "row")
                      for by, g in parts if g[m] is not None}
            section.add(Step(lhs=Deriv(loss, sym), forms=[Op("+", tuple(shares))], bindings=shares,
                             result=grads[node][m], layout="row",
                             text=Phrase("backward.node_sum", {"count": len(shares)})))

    def _seed_steps(self, fwd: Pass, m: int, loss: Sym, scale, grads, section) -> None:
        """∂loss/∂(s or p) of example m: the steps of the loss's own gradient."""
        y = self.ys[m]
        flow = self.output_flow(fwd, m)
        flow.loss = loss
        if self.fused:
            s_node = fwd.ins[-1][0]
            g = grads[s_node][m]
            steps = self.loss.grad_steps(flow, fwd.syms[fwd.index(s_node)].of_example(flow.n), y, g)
        else:
            g = grads[fwd.nodes[-1]][m]
            steps = self.loss.grad_steps(flow, None, y, g)
        for step in steps:
            if scale != 1:
                step.forms = [mul(Const(scale), Paren(form)) for form in step.forms]
            section.add(step)

    def _row_grads(self, layer, fwd: Pass, i: int, k: int, G: list, keys) -> dict:
        """This example's share of the parameter gradients (for showing it)."""
        if not keys:
            return {}
        only = [g if m == k else None for m, g in enumerate(G)]
        node = fwd.nodes[i + 1]
        parts = node.op.vjp([inp.value for inp in node.inputs], node.value, only,
                            [False] * len(fwd.ins[i]) + [True] * len(node.op.keys))
        grads = dict(zip(node.op.keys, parts[len(fwd.ins[i]):]))
        return {key: grads[key] for key in keys if grads.get(key) is not None}

    # ----- update ---------------------------------------------------------------
    def update_section(self, solution: Solution, per_example: list, labels: list, lr, reduction: str) -> dict:
        """θ − η·(reduced gradients); per_example[k] holds ∂L^(labels[k])/∂θ."""
        section = solution.section("section.update", lr=lr)
        n = len(per_example)
        updated = {}
        eta = Sym("eta")
        for (i, key) in sorted(k for k in per_example[0] if isinstance(k[0], int)):
            layer = self.layers[i]
            w = layer.weight_sym(key)
            grads = [g[(i, key)] for g in per_example]
            total = grads[0]
            for g in grads[1:]:
                total = total + g
            step_grad = total / n if reduction == "mean" and n > 1 else total     # one example: no x/1 per entry
            new = layer.weights[key] - step_grad * lr
            updated[(i, key)] = (step_grad, new)
            derivs = tuple(Sym("L").of_example(label) for label in labels)
            parts = tuple(Deriv(d, w) for d in derivs)
            summed = Paren(Op("+", parts)) if n > 1 else parts[0]
            scale = (eta, Frac(Const(1), Const(n))) if reduction == "mean" and n > 1 else (eta,)
            form = Op("-", (w, mul(*scale, summed)))
            layout = layer.weight_layout(key)
            bindings = {w: val(layer.weights[key], layout), eta: val(lr)}
            bindings.update({d: val(g, layout) for d, g in zip(parts, grads)})
            section.add(Step(lhs=w.with_sup("UPD"),
                             forms=[form], bindings=bindings, result=new, layout=layout,
                             text=Phrase(_update_phrase(n, reduction), {"name": f"{layer.name}.{key}"})))
        return updated


def _update_phrase(n: int, reduction: str) -> str:
    """One gradient is no average; a sum over the minibatch is no average either."""
    return "update.parameter" if n > 1 and reduction == "mean" else \
        "update.parameter_summed" if n > 1 else "update.parameter_single"


class _Located:
    """Turns EngineError inside the block into a SpecError at a YAML location."""

    def __init__(self, doc, loc):
        self.doc, self.loc = doc, loc

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if kind is not None and issubclass(kind, EngineError):
            raise SpecError([self.doc.problem(self.loc, str(error))]) from None
        return False


# ----- the problem kind ------------------------------------------------------------
def result_name(sym: Sym) -> str:
    """ASCII name of a symbol for result maps: h11, hhat1, p."""
    name = sym.base + sym.sub.replace(",", "")
    return name.replace(sym.base, sym.base + "hat", 1) if sym.hat else name


@dataclass
class Tasks:
    """What the spec's tasks ask of the reverse pass."""

    wanted: set = field(default_factory=set)       # (layer index, weight key)
    want_x: bool = False
    nodes: tuple = ()                              # names of other nodes whose gradient is asked
    train: object = None
    method: str = "per_example"                    # per_example (the slides) or batch (one pass of L)
    reduction: str = "mean"
    upstream: dict = field(default_factory=dict)   # node name → given ∂L/∂(node) (the loss is then unused)
    training: object = None                        # `train:` an optimizer over steps (engine/optim)
    where: tuple = ("tasks",)

    @property
    def any(self) -> bool:
        return bool(self.wanted or self.want_x or self.nodes)


def _tasks(spec, net: Network, fwd: Pass) -> Tasks:
    """The gradients and updates the tasks ask for, every name checked against the model."""
    names, nodes = net.parameter_names(), net.node_names(fwd)
    out = Tasks()
    for t, task in enumerate(spec.tasks):
        gradient = getattr(task, "gradient", None)
        if gradient is not None:
            for j, name in enumerate(gradient.wrt):
                if name == "x":
                    out.want_x = True
                elif name in names:
                    out.wanted.add(names[name])
                elif name in nodes:
                    out.nodes += (name,) if name not in out.nodes else ()
                else:
                    expected = ", ".join(list(names) + list(nodes))
                    raise SpecError([net.doc.problem(("tasks", t, "gradient", "wrt", j),
                                                     f"unknown parameter {name!r} (expected a parameter, x or a layer's "
                                                     f"name: {expected})")])
            out.method, out.reduction = gradient.method, gradient.reduction
            out.upstream = _upstream(net, fwd, gradient.upstream, ("tasks", t, "gradient", "upstream"))
            out.where = ("tasks", t)
        elif getattr(task, "train", None) is not None:
            if out.train is not None or out.training is not None:
                raise SpecError([net.doc.problem(("tasks", t), "only one training task per problem")])
            out.training = _training(net.doc, task.train, ("tasks", t, "train"))
            out.method, out.reduction, out.where = "batch", out.training.reduction, ("tasks", t)
            out.wanted |= {(i, key) for i, layer in enumerate(net.layers) for key in layer.weights}
        elif getattr(task, "train_step", None) is not None:
            if out.train is not None or out.training is not None:
                raise SpecError([net.doc.problem(("tasks", t), "only one train_step task per problem")])
            out.train = task.train_step
            out.method, out.reduction = task.train_step.method, task.train_step.reduction
            out.wanted |= {(i, key) for i, layer in enumerate(net.layers) for key in layer.weights}
    _loss_reduction(spec, net, out)
    if out.any and net.loss is None and not out.upstream:
        raise SpecError([net.doc.problem(("tasks",), "gradients need a loss: add `loss:` to the spec "
                                                     "(or give the upstream gradient: gradient: {upstream: …})")])
    if out.upstream and (out.train is not None or out.training is not None):
        raise SpecError([net.doc.problem(out.where, "a given upstream gradient and a train_step exclude each "
                                                    "other (the update needs the loss)")])
    return out


def _loss_reduction(spec, net: Network, tasks: Tasks) -> None:
    """The loss's own `reduction` (PyTorch's option) is the minibatch reduction, unless a task says
    another, which is refused where it is written."""
    given = getattr(net.loss.p, "reduction", None) if net.loss is not None else None
    if given is None:
        return
    for t, task in enumerate(spec.tasks):
        options = getattr(task, "gradient", None) or getattr(task, "train_step", None)
        said = getattr(options, "reduction", None) if options is not None and "reduction" in options.model_fields_set \
            else (task.train.get("reduction") if getattr(task, "train", None) is not None else None)
        if said is not None and said != given:
            raise SpecError([net.doc.problem(("tasks", t), f"reduction {said!r} here, but the loss says {given!r}")])
    tasks.reduction = given
    if tasks.training is not None:
        tasks.training.reduction = given


@lru_cache(maxsize=None)
def _training_model():
    """An optimizer over steps on the minibatch loss (mean or sum); the first step's backward pass is
    shown for the batch loss at once (its gradient is the optimizer's first; `train_step` keeps the
    slides' per-example passes for one SGD step).  Built on first use: engine/optim is imported only
    by specs that train."""
    from examsolver.engine import optim

    class NetworkTraining(optim.Training):
        reduction: Literal["mean", "sum"] = "mean"

    return NetworkTraining


def _training(doc, raw: dict, where: tuple):
    from examsolver.spec.model import validate

    return validate(doc, _training_model(), raw, where)


def _optimize(net: Network, solution: Solution, tasks: Tasks) -> None:
    """`steps` optimizer steps; each step's gradient is one reverse pass of the minibatch loss at the
    parameters it starts from (the graph recomputed), its state and the parameters after it shown."""
    from examsolver.engine import optim

    training = tasks.training
    names = {f"{net.layers[i].name}.{key}": (i, key) for (i, key) in sorted(net.params)}
    seed = [Exact(1) / len(net.xs) if training.reduction == "mean" else Exact(1)] * len(net.xs)
    losses = net.graph["losses"]

    def grad_fn(params: dict) -> dict:
        for name, value in params.items():
            net.set_weight(*names[name], value)
        net.graph.recompute()
        grads = net.graph.backward({losses: seed}, wanted=[net.params[k] for k in names.values()])
        return {name: grads.get(net.params[key], np.zeros_like(net.params[key].value)) for name, key in names.items()}

    start = {name: net.params[key].value for name, key in names.items()}
    symbols = {name: net.layers[i].weight_sym(key) for name, (i, key) in names.items()}
    layouts = {name: net.layers[i].weight_layout(key) for name, (i, key) in names.items()}
    with net.located(tasks.where):
        optimizer = optim.build(training)
        records = optim.run(optimizer, start, grad_fn, training.steps, clip_grad_norm=training.clip_grad_norm,
                            clip_grad_value=training.clip_grad_value, symbols=symbols, layouts=layouts)
    optim.add_sections(solution, records, optimizer)
    solution.results.update(optim.results(records))
    solution.conventions = unique_phrases(solution.conventions + optim.conventions_used(optimizer, training))
    for name, value in start.items():          # the problem's own parameters stay what the spec gave
        net.set_weight(*names[name], value)
    net.graph.recompute()


def _upstream(net: Network, fwd: Pass, given: dict, where: tuple) -> dict:
    """{node: per-example gradients} from `upstream: {name: G}`; G has the node's shape (a leading
    axis over the examples of a minibatch)."""
    nodes = net.node_names(fwd)
    out = {}
    for name, G in (given or {}).items():
        if name not in nodes or name == "x":
            expected = ", ".join(n for n in nodes if n != "x")
            raise SpecError([net.doc.problem(where + (name,), f"unknown node {name!r} (expected one of: {expected})")])
        node = nodes[name]
        rows = list(G) if net.batched else [G]
        shapes_ok = len(rows) == len(net.xs) and all(np.shape(g) == np.shape(v) for g, v in zip(rows, node.value))
        if not shapes_ok:
            want = "(" + ", ".join(str(d) for d in ((len(net.xs),) if net.batched else ()) + np.shape(node.value[0])) + ")"
            raise SpecError([net.doc.problem(where + (name,), f"the gradient of {name} must have shape {want}, "
                                                              f"got {np.shape(G)}")])
        out[node] = [np.asarray(g, dtype=object) for g in rows]
    return out


def solve(spec, doc) -> Solution:
    net = Network(spec, doc)
    solution = Solution(problem_id=spec.id, title=spec.title.model_dump(), source=spec.source,
                        statement=spec.statement.model_dump() if spec.statement else None)
    from examsolver.engine.shapes import prepare_inputs

    prepare_inputs(spec, net, solution)     # sparse inputs, inferred image size (task infer_input_size)
    built = [set(view.read) for view in net.views]
    fwd = net.forward()             # first: layers may learn their shapes here (batchnorm γ, β)
    forward = [set(view.read) for view in net.views]
    tasks = _tasks(spec, net, fwd)
    net.forward_section(solution, fwd)
    _record_forward(solution.results, net, fwd)
    for i, layer in enumerate(net.layers):
        solution.warnings.extend(layer.degeneracies(fwd.acts[fwd.index(fwd.ins[i][0])]))
    _after_forward(spec, net, fwd, tasks, solution)
    solution.number_equations()
    solution.under = Rerun(spec, net, fwd, tasks, solution.results, built, forward)
    return solution


class Rerun:
    """The results under other conventions, from this solve's own graph (Solution.under).

    The layers that read a changed convention are the nodes it touches.  Forward values are
    recomputed from the first that read it in the forward pass (none do for ReLU′(0) or max-pool
    ties: those rules act in the reverse pass only); each reverse pass takes what lies above the
    last touched or recomputed node from this solve's passes and computes the rest.  The steps are
    built into a scratch solution and dropped.  None where a convention shaped a layer before its
    forward pass (or it is a deliberate mistake, which has its own code paths): solve again then.
    """

    def __init__(self, spec, net: Network, fwd: Pass, tasks: Tasks, results: dict, built: list, forward: list):
        self.spec, self.net, self.fwd, self.tasks, self.results = spec, net, fwd, tasks, results
        self.built, self.forward = built, forward         # per layer: conventions read before / in the forward pass
        self.passes = list(net.graph.passes)

    def __call__(self, raw_conventions) -> dict | None:
        """The results with `conventions:` as written (a mapping), or None when they cannot be had here."""
        from pydantic import ValidationError

        old = self.spec.conventions
        try:
            new = type(old).model_validate(raw_conventions or {})
        except ValidationError:
            return None
        changed = {name for name in type(old).model_fields if getattr(new, name) != getattr(old, name)}
        if "mistakes" in changed or any(read & changed for read in self.built):
            return None
        net, graph = self.net, self.net.graph
        touched = [self.fwd.nodes[i + 1] for i, view in enumerate(net.views) if view.read & changed]
        if not touched:
            return dict(self.results)
        in_forward = [self.fwd.nodes[i + 1] for i, read in enumerate(self.forward) if read & changed]
        kept = [(node, node.value, getattr(node.op, "state", None)) for node in graph.nodes if node.op is not None]
        for view in net.views:
            view.use(new)
        try:
            redone = graph.recompute(since=in_forward[0]) if in_forward else []
            scratch = Solution(problem_id=self.spec.id, title={})
            if redone:
                _record_forward(scratch.results, net, self.fwd)
            with graph.replaying(self.passes, max(touched + redone, key=graph.nodes.index)):
                _after_forward(self.spec, net, self.fwd, self.tasks, scratch, steps=False)
            return {**self.results, **scratch.results}
        finally:
            for view in net.views:
                view.use(old)
            for node, value, state in kept:
                node.value = value
                if state is not None:
                    node.op.state = state


def _record_forward(results: dict, net: Network, fwd: Pass) -> None:
    """The forward pass's results: activations and layer statistics."""
    for sym, acts in zip(fwd.syms, fwd.acts):
        _record(results, result_name(sym), acts, net.batched)
    for i, layer in enumerate(net.layers):
        if layer.p.name and layer.p.name not in results:     # a layer named in the spec: its output by that name
            _record(results, layer.p.name, fwd.acts[i + 1], net.batched)
        for key, value in fwd.nodes[i + 1].op.state.get("stats", {}).items():   # this node's, not the layer's last
            if key in ("mean", "var", "std", "running_mean", "running_var"):
                results[f"{layer.name}.{key}"] = value
            elif key == "xhat":
                _record(results, f"{layer.name}.xhat", value, net.batched)


def _after_forward(spec, net: Network, fwd: Pass, tasks: Tasks, solution: Solution, steps: bool = True) -> None:
    """The loss, the reverse passes, the update and the optimizer's steps, with their results (steps=False:
    the reverse passes' results without their steps)."""
    results, numbers = solution.results, net.example_numbers()
    reduction, train = tasks.reduction, tasks.train
    if net.loss is not None and not tasks.upstream:
        values = net.losses(fwd)
        solution.warnings.extend(net.loss.degeneracies(fwd.acts[-1], net.ys))
        results["loss"] = net.loss_section(solution, fwd, values, reduction)
        if net.batched:
            for n, v in zip(numbers, values):
                results[f"loss({n})"] = v
    per_example, labels = [], []
    if tasks.upstream:
        section = solution.section("section.backward") if steps else None
        grads = net.backward_from(fwd, tasks.upstream, Sym("L"), tasks, section)
        _record_grads(results, net, _whole_batch(net, grads), None, fwd)
    elif tasks.any and tasks.method == "batch" and net.batched:
        scale = Exact(1) / len(numbers) if reduction == "mean" else Exact(1)
        section = solution.section("section.backward_batch") if steps else None
        grads = net.backward(fwd, list(range(len(numbers))), Sym("L"), scale, tasks.wanted, tasks.want_x, section,
                             tasks.nodes)
        per_example, labels = [grads], [None]
        _record_grads(results, net, {k: g for k, g in _whole_batch(net, grads).items() if k[0] in ("x", "node")}, None,
                      fwd)
        reduction = "sum"       # the batch loss already carries the 1/N
    elif tasks.any:
        for m, n in enumerate(numbers):
            section = solution.section("section.backward_example" if n else "section.backward", n=n) if steps else None
            grads = net.backward(fwd, [m], Sym("L").of_example(n), Exact(1), tasks.wanted, tasks.want_x, section,
                                 tasks.nodes)
            per_example.append(grads)
            labels.append(n)
            _record_grads(results, net, grads, n, fwd)
    if train is not None and "updated_weights_in_backward" in getattr(spec.conventions, "mistakes", ()):
        per_example = _mistaken_backward(net, fwd, tasks, reduction, per_example, labels)
    if train is not None:
        updates = net.update_section(solution, per_example, labels, train.lr, reduction)
        for (i, key), (step_grad, new) in updates.items():
            results[f"{net.layers[i].name}.{key}.grad"] = step_grad
            results[f"{net.layers[i].name}.{key}.updated"] = new
    elif per_example and (net.batched or labels == [None]):
        for key in per_example[0]:
            if key[0] not in ("x", "node"):
                total = sum((g[key] for g in per_example[1:]), per_example[0][key])
                results[f"{net.layers[key[0]].name}.{key[1]}.grad"] = total / len(per_example) \
                    if reduction == "mean" else total
    solution.conventions = _conventions(net, train, tasks)
    if tasks.training is not None:
        _optimize(net, solution, tasks)


def _record_grads(results: dict, net: Network, grads: dict, n, fwd: Pass) -> None:
    """`<name>.grad` (per example: `<name>.grad(n)`) for every gradient of one reverse pass."""
    for (i, key), g in grads.items():
        name = "x" if i == "x" else key if i == "node" else f"{net.layers[i].name}.{key}"
        if isinstance(g, list):        # per example; the values' shapes for the examples nothing flowed into
            values = net.xs if i == "x" else fwd.acts[fwd.index(net.node_names(fwd)[key])]
            g = _stacked(g, values)
        results[f"{name}.grad" + (f"({n})" if n else "")] = g


def _whole_batch(net: Network, grads: dict) -> dict:
    """Gradients of a pass over the whole minibatch: inputs' and nodes' per example (also for one)."""
    return {k: [g] if net.batched and k[0] in ("x", "node") and not isinstance(g, list) else g
            for k, g in grads.items()}


def _stacked(rows: list, values: list):
    """Per-example gradients of a minibatch as one tensor (zeros, in the value's shape, where none flowed)."""
    from examsolver.engine.tensor import zeros

    return np.stack([r if r is not None else zeros(np.shape(v)) for r, v in zip(rows, values)])


def _record(results: dict, name: str, values: list, batched: bool) -> None:
    if batched:
        for n, v in enumerate(values, 1):
            results[f"{name}({n})"] = v
    else:
        results[name] = values[0]


def _conventions(net: Network, train, tasks: Tasks) -> list:
    phrases = []
    for layer in net.layers:
        phrases.extend(layer.conventions_used())
    if net.loss is not None:
        phrases.extend(net.loss.conventions_used())
        if net.fused:        # softmax (sigmoid) right before its loss: ∂L/∂s = p − y
            phrases.extend(net.loss.fused_conventions())
    if net.batched and (train is not None or tasks.any and tasks.method == "batch"):
        phrases.append(Phrase(f"convention.minibatch_{tasks.reduction}", {}))
    if net.batched and train is not None:
        phrases.append(Phrase("convention.sgd", {"lr": train.lr}))
    return unique_phrases(phrases)


def _mistaken_backward(net, fwd, tasks: Tasks, reduction, per_example, labels) -> list:
    """The deliberate mistake `updated_weights_in_backward`, only for diagnose/ (never in a solution).

    Each layer's already updated weights carry the gradient on to the layers
    below.  A layer's update depends only on the layers above it, so repeating
    the backward pass once per layer, each time with the latest updates, settles
    every layer from the top down.
    """
    originals = {key: node.value for key, node in net.params.items()}
    batch = labels == [None]
    rows = [list(range(len(net.xs)))] if batch else [[m] for m in range(len(net.xs))]
    scale = Exact(1) / len(net.xs) if batch and tasks.reduction == "mean" else Exact(1)
    try:
        for _ in net.layers:
            per_example = [net.backward(fwd, r, Sym("L"), scale, tasks.wanted, tasks.want_x,
                                        None) for r in rows]
            for (i, key) in per_example[0]:
                if i in ("x", "node"):
                    continue
                total = sum((g[(i, key)] for g in per_example[1:]), per_example[0][(i, key)])
                step = total / len(per_example) if reduction == "mean" else total
                net.set_weight(i, key, originals[(i, key)] - step * tasks.train.lr)
    finally:
        for (i, key), value in originals.items():
            net.set_weight(i, key, value)
    return per_example
