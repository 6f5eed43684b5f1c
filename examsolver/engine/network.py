"""Sequential models: forward pass, loss, backward pass and SGD update as steps.

The presentation follows the 2022 solution slides: the forward pass layer by
layer (every example of the minibatch in turn), batch statistics where a layer
needs them, then one backward pass per example (∂L⁽ⁿ⁾/∂θ), then the update
with the averaged gradient.  Every value comes from the layers' own forward and
vector-Jacobian products; the steps only show them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from examsolver.engine.ops import LAYERS, LOSSES
from examsolver.engine.ops.base import Flow, val
from examsolver.engine.scalar import Exact
from examsolver.errors import EngineError, SpecError
from examsolver.mathnodes import Const, Deriv, Frac, Op, Paren, Sym, mul
from examsolver.solution import Phrase, Solution, Step, unique_phrases


@dataclass
class Pass:
    """Everything the forward pass produced."""

    acts: list = field(default_factory=list)     # acts[i][n]: input of layer i for example n
    syms: list = field(default_factory=list)     # syms[i]: symbol of acts[i]


class Network:
    def __init__(self, spec, doc):
        self.spec, self.doc = spec, doc
        self.conventions = spec.conventions
        self.layers = []
        for i, (kind, params) in enumerate(spec.layers):
            with self.located(("model", i)):
                self.layers.append(LAYERS[kind](params, i, self.conventions))
        self.loss = None
        if spec.loss_entry is not None:
            kind, params = spec.loss_entry
            self.loss = LOSSES[kind](params)
        examples = spec.data if isinstance(spec.data, list) else [spec.data]
        self.xs = [e.x for e in examples]
        self.ys = [e.y for e in examples]
        self.batched = isinstance(spec.data, list)

    def located(self, loc):
        return _Located(self.doc, loc)

    def example_numbers(self):
        return [n + 1 if self.batched else None for n in range(len(self.xs))]

    # ----- forward ------------------------------------------------------------
    def forward(self) -> Pass:
        shapes = {x.shape for x in self.xs}
        if len(shapes) != 1:
            raise SpecError([self.doc.problem(("data",), "examples of the minibatch have different shapes")])
        result = Pass([self.xs], [Sym("x", bold=self.xs[0].ndim > 0)])
        counter = 0
        for i, layer in enumerate(self.layers):
            with self.located(("model", i)):
                for x in result.acts[-1]:
                    layer.check_input(x)
                out = layer.forward(result.acts[-1])
            sym, counter = layer.output_symbol(result.syms[-1], counter, out[0])
            result.acts.append(out)
            result.syms.append(sym)
        self._name_outputs(result)
        return result

    def _name_outputs(self, fwd: Pass) -> None:
        """The final activation's output is p and its input s, as on the slides."""
        last = self.layers[-1]
        if last.is_activation and len(self.layers) > 1 and not last.p.out:
            fwd.syms[-1] = Sym("p", bold=fwd.acts[-1][0].ndim > 0)
            if not self.layers[-2].p.out and not self.layers[-2].is_activation:
                fwd.syms[-2] = Sym("s", bold=fwd.acts[-2][0].ndim > 0)
        elif not last.p.out and not last.is_activation and self.loss is not None:
            fwd.syms[-1] = Sym("s" if self.loss.kind != "mse" else "o", bold=fwd.acts[-1][0].ndim > 0)

    def flow(self, fwd: Pass, i: int, m: int) -> Flow:
        n = self.example_numbers()[m]
        return Flow(n, fwd.syms[i].of_example(n), fwd.syms[i + 1].of_example(n), fwd.acts[i][m], fwd.acts[i + 1][m])

    def output_flow(self, fwd: Pass, m: int) -> Flow:
        """The model output p of example m, as the loss sees it."""
        n = self.example_numbers()[m]
        return Flow(n, fwd.syms[-1].of_example(n), Sym("L").of_example(n), fwd.acts[-1][m], None)

    def forward_section(self, solution: Solution, fwd: Pass) -> None:
        section = solution.section("section.forward")
        for i, layer in enumerate(self.layers):
            inputs = [fwd.syms[i].of_example(n) for n in self.example_numbers()]
            for step in layer.batch_steps(fwd.acts[i], inputs):
                section.add(step)
            for m in range(len(self.xs)):
                for step in layer.forward_steps(self.flow(fwd, i, m)):
                    if m > 0:
                        step.text = None      # the sentence was said for the first example
                    section.add(step)

    # ----- loss ---------------------------------------------------------------
    def losses(self, fwd: Pass) -> list:
        out = []
        for m, (p, y) in enumerate(zip(fwd.acts[-1], self.ys)):
            with self.located(("data",) + ((m,) if self.batched else ()) + ("y",)):
                self.loss.check_target(p, y)
                out.append(self.loss.value(p, y))
        return out

    def loss_section(self, solution: Solution, fwd: Pass, values: list, reduction: str) -> Exact:
        section = solution.section("section.loss")
        for m, value in enumerate(values):
            for step in self.loss.steps(self.output_flow(fwd, m), self.ys[m], value):
                section.add(step)
        if not self.batched:
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
                if key == "W" and layer.kind.startswith("conv"):
                    names[f"{layer.name}.kernels"] = (i, key)
        return names

    def backward(self, fwd: Pass, rows: list, loss: Sym, scale, wanted: set, want_x: bool, section) -> dict:
        """Backpropagate `loss` = scale · Σ_{m in rows} L⁽ᵐ⁾; add the steps to section.

        rows = [m] is the slides' per-example pass (∂L⁽ᵐ⁾/∂θ); all rows with scale 1/N is
        the backward pass of the minibatch loss at once.  Returns {(i, key): gradient}.
        """
        last = len(self.layers) - 1
        fused = self.loss.fuses_with == self.layers[last].kind and last > 0
        start = last - 1 if fused else last
        G = [None] * len(self.xs)
        for m in rows:
            G[m] = self._seed(fwd, m, loss, scale, fused, section)
        return self.propagate(fwd, G, rows, start, loss, wanted, want_x, section)

    def propagate(self, fwd: Pass, G: list, rows: list, start: int, loss: Sym, wanted: set, want_x: bool,
                  section) -> dict:
        """Backpropagate upstream gradients G[m] (None where zero) from layer `start` down.

        Kept apart from the loss seeding so that other problem kinds (siamese) can
        seed the gradients of the model outputs themselves.
        """
        lowest = 0 if want_x else min((i for i, _ in wanted), default=start + 1)
        grads = {}
        for i in range(start, lowest - 1, -1):
            layer = self.layers[i]
            keys = sorted(k for (j, k) in wanted if j == i)    # sorted: results in a fixed order
            want_input = i > lowest or want_x
            gxs, layer_grads = layer.vjp(fwd.acts[i], fwd.acts[i + 1], G)
            for key in keys:
                grads[(i, key)] = layer_grads[key]
            shares = []
            for k in range(len(self.xs)):
                if G[k] is None:
                    continue
                flow = self.flow(fwd, i, k)
                flow.loss = loss
                if len(rows) > 1:   # parameter gradients are summed over the rows below
                    shares.append(self._row_grads(layer, fwd, i, k, G, keys))
                    shown = {}
                else:
                    shown = {key: layer_grads[key] for key in keys}
                for n_step, step in enumerate(layer.backward_steps(flow, G[k], gxs[k], shown, want_input)):
                    if shares and len(shares) > 1 and n_step == 0:
                        step.text = None      # said for the first example
                    section.add(step)
            for key in keys if len(rows) > 1 else ():
                parts = tuple(val(share[key], layer.weight_layout(key)) for share in shares)
                section.add(Step(lhs=Deriv(loss, layer.weight_sym(key)), forms=[Op("+", parts)],
                                 result=layer_grads[key], layout=layer.weight_layout(key),
                                 text=Phrase("backward.parameter_sum", {"name": f"{layer.name}.{key}"})))
            G = gxs
        if want_x:
            grads[("x", None)] = [G[m] for m in rows] if len(rows) > 1 else G[rows[0]]
        return grads

    def _seed(self, fwd: Pass, m: int, loss: Sym, scale, fused: bool, section):
        """∂loss/∂(s or p) of example m, with its steps."""
        p, y = fwd.acts[-1][m], self.ys[m]
        flow = self.output_flow(fwd, m)
        flow.loss = loss
        last = len(self.layers) - 1
        if fused:
            g = self.loss.fused_grad(p, y) * scale
            steps = self.loss.grad_steps(flow, fwd.syms[last].of_example(flow.n), y, g)
        else:
            g = self.loss.grad(p, y) * scale
            steps = self.loss.grad_steps(flow, None, y, g)
        for step in steps:
            if scale != 1:
                step.forms = [mul(Const(scale), Paren(form)) for form in step.forms]
            section.add(step)
        return g

    def _row_grads(self, layer, fwd: Pass, i: int, k: int, G: list, keys: set) -> dict:
        """This example's share of the parameter gradients (for showing it)."""
        if not keys:
            return {}
        only = [g if m == k else None for m, g in enumerate(G)]
        _, grads = layer.vjp(fwd.acts[i], fwd.acts[i + 1], only)
        return {key: grads[key] for key in keys if key in grads}

    # ----- update ---------------------------------------------------------------
    def update_section(self, solution: Solution, per_example: list, labels: list, lr, reduction: str) -> dict:
        """θ − η·(reduced gradients); per_example[k] holds ∂L^(labels[k])/∂θ."""
        section = solution.section("section.update", lr=lr)
        n = len(per_example)
        updated = {}
        eta = Sym("eta")
        for (i, key) in sorted(per_example[0], key=lambda k: (k[0], k[1])):
            layer = self.layers[i]
            w = layer.weight_sym(key)
            grads = [g[(i, key)] for g in per_example]
            total = grads[0]
            for g in grads[1:]:
                total = total + g
            step_grad = total / n if reduction == "mean" else total
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
                             text=Phrase("update.parameter", {"name": f"{layer.name}.{key}"})))
        return updated


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


def _tasks(spec, net: Network):
    """(wanted parameters, want ∂L/∂x, train settings or None), names checked."""
    names = net.parameter_names()
    wanted, want_x, train = set(), False, None
    for t, task in enumerate(spec.tasks):
        if getattr(task, "gradient", None) is not None:
            for j, name in enumerate(task.gradient.wrt):
                if name == "x":
                    want_x = True
                elif name in names:
                    wanted.add(names[name])
                else:
                    expected = ", ".join(list(names) + ["x"])
                    raise SpecError([net.doc.problem(("tasks", t, "gradient", "wrt", j),
                                                     f"unknown parameter {name!r} (expected one of: {expected})")])
        elif getattr(task, "train_step", None) is not None:
            train = task.train_step
            wanted |= {(i, key) for i, layer in enumerate(net.layers) for key in layer.weights}
    if (wanted or want_x) and net.loss is None:
        raise SpecError([net.doc.problem(("tasks",), "gradients need a loss: add `loss:` to the spec")])
    return wanted, want_x, train


def solve(spec, doc) -> Solution:
    net = Network(spec, doc)
    solution = Solution(problem_id=spec.id, title=spec.title.model_dump(), source=spec.source,
                        statement=spec.statement.model_dump() if spec.statement else None)
    from examsolver.engine.shapes import prepare_inputs

    prepare_inputs(spec, net, solution)     # sparse inputs, inferred image size (task infer_input_size)
    fwd = net.forward()             # first: layers may learn their shapes here (batchnorm γ, β)
    wanted, want_x, train = _tasks(spec, net)
    net.forward_section(solution, fwd)
    results = solution.results
    numbers = net.example_numbers()
    for sym, acts in zip(fwd.syms, fwd.acts):
        _record(results, result_name(sym), acts, net.batched)
    for i, layer in enumerate(net.layers):
        solution.warnings.extend(layer.degeneracies(fwd.acts[i]))
        for key, value in getattr(layer, "stats", {}).items():
            if key in ("mean", "var", "std"):
                results[f"{layer.name}.{key}"] = value
    reduction = train.reduction if train else "mean"
    if net.loss is not None:
        values = net.losses(fwd)
        results["loss"] = net.loss_section(solution, fwd, values, reduction)
        if net.batched:
            for n, v in zip(numbers, values):
                results[f"loss({n})"] = v
    per_example, labels = [], []
    if (wanted or want_x) and train is not None and train.method == "batch" and net.batched:
        scale = Exact(1) / len(numbers) if reduction == "mean" else Exact(1)
        section = solution.section("section.backward_batch")
        grads = net.backward(fwd, list(range(len(numbers))), Sym("L"), scale, wanted, want_x, section)
        per_example, labels = [grads], [None]
        reduction = "sum"       # the batch loss already carries the 1/N
    elif wanted or want_x:
        for m, n in enumerate(numbers):
            section = solution.section("section.backward_example" if n else "section.backward", n=n)
            grads = net.backward(fwd, [m], Sym("L").of_example(n), Exact(1), wanted, want_x, section)
            per_example.append(grads)
            labels.append(n)
            for (i, key), g in grads.items():
                name = "x" if i == "x" else f"{net.layers[i].name}.{key}"
                results[f"{name}.grad" + (f"({n})" if n else "")] = g
    if train is not None and "updated_weights_in_backward" in getattr(spec.conventions, "mistakes", ()):
        per_example = _mistaken_backward(net, fwd, wanted, want_x, train, reduction, per_example, labels)
    if train is not None:
        updates = net.update_section(solution, per_example, labels, train.lr, reduction)
        for (i, key), (step_grad, new) in updates.items():
            results[f"{net.layers[i].name}.{key}.grad"] = step_grad
            results[f"{net.layers[i].name}.{key}.updated"] = new
    elif net.batched and per_example:
        for key in per_example[0]:
            if key[0] != "x":
                total = sum((g[key] for g in per_example[1:]), per_example[0][key])
                results[f"{net.layers[key[0]].name}.{key[1]}.grad"] = total / len(per_example)
    solution.conventions = _conventions(net, train)
    solution.number_equations()
    return solution


def _record(results: dict, name: str, values: list, batched: bool) -> None:
    if batched:
        for n, v in enumerate(values, 1):
            results[f"{name}({n})"] = v
    else:
        results[name] = values[0]


def _conventions(net: Network, train) -> list:
    phrases = []
    for layer in net.layers:
        phrases.extend(layer.conventions_used())
    if net.loss is not None:
        phrases.extend(net.loss.conventions_used())
        if net.loss.fuses_with == net.layers[-1].kind:
            phrases.append(Phrase(f"convention.fused_{net.loss.kind}", {}))
    if net.batched and train is not None:
        phrases.append(Phrase(f"convention.minibatch_{train.reduction}", {}))
        phrases.append(Phrase("convention.sgd", {"lr": train.lr}))
    return unique_phrases(phrases)


def _mistaken_backward(net, fwd, wanted, want_x, train, reduction, per_example, labels) -> list:
    """The deliberate mistake `updated_weights_in_backward`, only for diagnose/ (never in a solution).

    Each layer's already updated weights carry the gradient on to the layers
    below.  A layer's update depends only on the layers above it, so repeating
    the backward pass once per layer, each time with the latest updates, settles
    every layer from the top down.
    """
    from examsolver.solution import Section

    originals = [dict(layer.weights) for layer in net.layers]
    batch = labels == [None]
    rows = [list(range(len(net.xs)))] if batch else [[m] for m in range(len(net.xs))]
    scale = Exact(1) / len(net.xs) if batch and train.reduction == "mean" else Exact(1)
    try:
        for _ in net.layers:
            per_example = [net.backward(fwd, r, Sym("L"), scale, wanted, want_x, Section(Phrase("section.backward", {})))
                           for r in rows]
            for (i, key) in per_example[0]:
                if i == "x":
                    continue
                total = sum((g[(i, key)] for g in per_example[1:]), per_example[0][(i, key)])
                step = total / len(per_example) if reduction == "mean" else total
                net.layers[i].weights[key] = originals[i][key] - step * train.lr
    finally:
        for layer, weights in zip(net.layers, originals):
            layer.weights = weights
    return per_example
