"""Siamese models: one shared sequential model applied to two (pair) or three (triplet) inputs.

The shared model is engine/network.py's Network, fed the named inputs as if
they were the examples of a minibatch (x⁽¹⁾, x⁽²⁾, …): its forward pass and its
backward propagation are reused as they are; only the loss on the embeddings
differs, and it seeds the gradients of the embeddings itself.  Because the
weights are shared, ∂L/∂θ is the sum of the shares of the branches.

Losses (DESIGN.md conventions): squared contrastive L⁺ = d², L⁻ = max(0, m − d)²
(optionally with ½), d = ‖e⁽ⁱ⁾ − e⁽ʲ⁾‖₂; triplet max(0, d(a, p) − d(a, n) + m).
A margin the spec leaves out is taken as 1, and the solution says so.
"""

from __future__ import annotations

from functools import cache
from types import SimpleNamespace
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BeforeValidator, Field, model_validator

from examsolver.engine import scalar
from examsolver.engine.network import Network
from examsolver.engine.ops import LOSSES
from examsolver.engine.ops.base import val
from examsolver.engine.scalar import Exact
from examsolver.errors import SpecError
from examsolver.mathnodes import Abs, Call, Const, Frac, Neg, Norm, Op, Paren, Power, Sym, mul
from examsolver.solution import Phrase, Solution, Step, unique_phrases
from examsolver.spec.model import (TITLE_PAGE, Conventions, Localized, Strict, Task, Tensor, Text as TextField,
                                   _dedupe, _normalize_entry, bare_names_allowed, _tagged_union, validate, validate_entries)

def _loss_params(kind: str):
    """The registered loss's own parameters (engine/ops/metric_losses.py)."""
    from examsolver.engine.ops import LOSSES

    return LOSSES[kind].Params


class SiameseLoss(Strict):
    contrastive: _loss_params("contrastive") | None = None
    triplet: _loss_params("triplet") | None = None

    @model_validator(mode="after")
    def _one(self):
        if (self.contrastive is None) == (self.triplet is None):
            raise ValueError("give exactly one loss: contrastive or triplet")
        return self


class PairSpec(Strict):
    inputs: list[str] = Field(min_length=2, max_length=2)
    label: Literal["positive", "negative"]


class TripletSpec(Strict):
    anchor: str
    positive: str
    negative: str


def siamese_spec_model(for_schema: bool = False):
    """Layers are checked by validate_siamese unless for_schema (that form follows the registry)."""
    return _siamese_spec_model(True) if for_schema else _siamese_validation_model()


@cache   # built once per process (see spec/model.py network_spec_model)
def _siamese_validation_model():
    return _siamese_spec_model(False)


def _siamese_spec_model(for_schema: bool):
    from pydantic import create_model

    from examsolver.engine.ops import LAYERS

    Layer = _tagged_union(LAYERS, "layer") if for_schema else Any
    return create_model(
        "SiameseSpec", __base__=Strict,
        id=(TextField, ...),
        kind=(Literal["siamese"], "siamese"),
        source=(TextField, ""),
        document=TITLE_PAGE,
        title=(Localized, Localized()),
        statement=(Localized | None, None),
        model=(list[Layer], Field(min_length=1, max_length=200)),
        loss=(Annotated[SiameseLoss, BeforeValidator(_normalize_entry),
                        Field(json_schema_extra=bare_names_allowed(["contrastive", "triplet"]))], ...),
        inputs=(dict[str, Tensor], Field(min_length=1, max_length=100)),
        pairs=(list[PairSpec], Field(default_factory=list, max_length=100)),
        triplets=(list[TripletSpec], Field(default_factory=list, max_length=100)),
        reduction=(Literal["none", "mean", "sum"], "none"),
        tasks=(list[Task], Field(default_factory=lambda: ["forward"], max_length=20)),
        conventions=(Conventions, Field(default_factory=Conventions)),
        answers=(dict[str, Any], Field(default_factory=dict)),
    )


def validate_siamese(doc):
    """The validated spec with `.layers` as (kind, params); every problem at once."""
    from examsolver.engine.ops import LAYERS

    problems, spec = [], None
    try:
        spec = validate(doc, siamese_spec_model())
    except SpecError as err:
        problems += err.problems
    data = doc.data if isinstance(doc.data, dict) else {}
    entries, found = validate_entries(doc, data.get("model", []), LAYERS, ("model",), "layer")
    problems += found
    if spec is not None:
        problems += _reference_problems(doc, spec)
    if problems:
        raise SpecError(_dedupe(problems))
    spec.__dict__["layers"] = entries
    return spec


def _reference_problems(doc, spec) -> list:
    names, problems = set(spec.inputs), []
    for t, pair in enumerate(spec.pairs):
        for j, name in enumerate(pair.inputs):
            if name not in names:
                problems.append(doc.problem(("pairs", t, "inputs", j), f"unknown input {name!r} (inputs: {', '.join(names)})"))
    for t, trip in enumerate(spec.triplets):
        for role in ("anchor", "positive", "negative"):
            if getattr(trip, role) not in names:
                problems.append(doc.problem(("triplets", t, role), f"unknown input {getattr(trip, role)!r}"))
    if spec.loss.contrastive is not None and (spec.triplets or not spec.pairs):
        problems.append(doc.problem(("pairs",), "the contrastive loss needs `pairs:` (and no triplets)"))
    if spec.loss.triplet is not None and (spec.pairs or not spec.triplets):
        problems.append(doc.problem(("triplets",), "the triplet loss needs `triplets:` (and no pairs)"))
    return problems


# ----- the problem kind ------------------------------------------------------------------------
class Siamese:
    def __init__(self, spec, doc):
        self.spec, self.doc = spec, doc
        self.names = list(spec.inputs)
        adapter = SimpleNamespace(conventions=spec.conventions, layers=spec.layers, loss_entry=None,
                                  data=[SimpleNamespace(x=spec.inputs[n], y=None) for n in self.names])
        self.net = Network(adapter, doc)
        self.contrastive = spec.loss.contrastive is not None
        kind = "contrastive" if self.contrastive else "triplet"
        self.loss = LOSSES[kind](spec.loss.contrastive or spec.loss.triplet)
        # max(0, z) is a ReLU of z: at z = 0 its derivative is the ReLU convention's (PyTorch's
        # triplet_margin_loss clamps with min=0 and passes the gradient there, i.e. takes 1)
        self.loss.kink_grad = scalar.exact(spec.conventions.relu_grad_at_zero)
        self.reduction = self.loss.p.reduction or spec.reduction
        self.groups = ([[self.names.index(n) for n in p.inputs] for p in spec.pairs] if self.contrastive else
                       [[self.names.index(getattr(t, r)) for r in ("anchor", "positive", "negative")]
                        for t in spec.triplets])

    def e(self, m: int) -> Sym:
        return self.fwd.syms[-1].of_example(m + 1)

    def forward(self, solution: Solution) -> None:
        self.fwd = self.net.forward()
        self.fwd.syms[-1] = Sym("e", bold=np.ndim(self.fwd.acts[-1][0]) > 0)
        solution.section("section.siamese_inputs").blocks.extend(
            Phrase("siamese.input", {"x": Sym("x", bold=True).of_example(m + 1), "name": name})
            for m, name in enumerate(self.names))
        self.net.forward_section(solution, self.fwd)

    def dist_node(self, i: int, j: int) -> Node:
        return _distance_form(self.e(i), self.e(j), self.loss, np.size(self.fwd.acts[-1][i]) == 1)

    def dist_bindings(self, i: int, j: int) -> dict:
        eps = {EPS: val(self.loss.eps)} if self.loss.eps != 0 else {}
        return {self.e(i): val(self.fwd.acts[-1][i]), self.e(j): val(self.fwd.acts[-1][j]), **eps}

    @property
    def written(self) -> bool:
        """The gradients' formulas are written out for the Euclidean distance without ε (else: numbers)."""
        return self.loss.p_norm == 2 and self.loss.eps == 0


EPS = Sym("epsilon")


def _distance_form(a, b, loss, scalar_embedding: bool = False) -> Node:
    """‖a − b‖ (|a − b| for numbers), ‖a − b + ε‖_p in general."""
    diff = Op("-", (a, b))
    if loss.eps != 0:
        diff = Op("+", (diff, EPS))
    return Abs(diff) if scalar_embedding else Norm(diff, p=loss.p_norm)


def _squared(node, loss):
    return Power(node, Const(2)) if loss.squared else node


Node = Any


def _label(k: int, count: int) -> str:
    return str(k + 1) if count > 1 else ""


def equations_section(model: Siamese, solution: Solution) -> None:
    """(a) the model and the loss as equations, before any number."""
    section = solution.section("section.siamese_equations")
    x = Sym("x", bold=True)
    section.add(Step(lhs=Sym("e", bold=True), forms=[_model_formula(model.net, x)],
                     text=Phrase("siamese.model", {})))
    e1, e2 = Sym("e", bold=True).of_example(1), Sym("e", bold=True).of_example(2)
    d, m, loss = Sym("d"), Sym("m"), model.loss
    section.add(Step(lhs=d, forms=[_distance_form(e1, e2, loss)], text=Phrase("siamese.distance", {})))
    half = Frac(Const(1), Const(2))
    if model.contrastive:
        pos = _squared(d, loss)
        neg = _squared(Paren(Call("max", (Const(0), Op("-", (m, d))))), loss)
        if loss.half:
            pos, neg = mul(half, pos), mul(half, neg)
        section.add(Step(lhs=Sym("L", sup="+"), forms=[pos], text=Phrase("siamese.loss_positive", {})))
        section.add(Step(lhs=Sym("L", sup="-"), forms=[neg], text=Phrase("siamese.loss_negative", {})))
    else:
        distances = (_squared(Sym("d", "ap"), loss), _squared(Sym("d", "an"), loss))
        form = Call("max", (Const(0), Op("+", (Op("-", distances), m))))
        section.add(Step(lhs=Sym("L"), forms=[form], text=Phrase("siamese.loss_triplet", {})))


def _model_formula(net: Network, x: Node) -> Node:
    """The shared model as one formula: avg(relu(x ⋆ w₁₁ + b₁₁)), each layer writing its own part."""
    out = x
    for layer in net.layers:
        out = layer.formula(out)
    return out


def solve(spec, doc) -> Solution:
    model = Siamese(spec, doc)
    solution = Solution(problem_id=spec.id, title=spec.title.model_dump(), source=spec.source,
                        statement=spec.statement.model_dump() if spec.statement else None)
    wanted, inputs = _wanted(spec, model.net, model.names)
    equations_section(model, solution)
    model.forward(solution)
    results = solution.results
    for m, value in enumerate(model.fwd.acts[-1]):
        results[f"e{m + 1}"] = value
    for i, layer in enumerate(model.net.layers):
        solution.warnings.extend(layer.degeneracies(model.fwd.acts[i]))
    count = len(model.groups)
    values, grads_per_group = [], []
    for k, group in enumerate(model.groups):
        label = _label(k, count)
        loss_sym = Sym("L", label)
        value, seeds, grad_steps = (_contrastive(model, solution, k, group, loss_sym, results) if model.contrastive
                                    else _triplet(model, solution, k, group, loss_sym, results))
        values.append(value)
        results["loss" + (f"({label})" if label else "")] = value
        if wanted or inputs:
            kind = "" if model.contrastive else "_triplet"
            section = solution.section("section.siamese_backward" + kind + ("_n" if label else ""), pair=label)
            section.blocks.extend(grad_steps)
            G = [None] * len(model.names)
            for m, g in seeds:
                G[m] = g if G[m] is None else G[m] + g      # an input used twice collects both shares
            rows = sorted({m for m, _ in seeds})
            grads = model.net.propagate(model.fwd, G, rows, len(model.net.layers) - 1, loss_sym, wanted,
                                        bool(inputs), section)
            _reword_sums(section)
            suffix = f"({label})" if label else ""
            for m in rows:                       # ∂L/∂e of each branch: what the loss seeded
                results[f"e{m + 1}.grad{suffix}"] = G[m]
            if inputs:
                gx = grads.pop(("x", None))
                for m, g in zip(rows, gx if len(rows) > 1 else [gx]):
                    grads[("input", model.names[m])] = g
            grads_per_group.append(grads)
            for (i, key), g in grads.items():
                if i == "input" and key in inputs:
                    results[f"{key}.grad{suffix}"] = g
                elif i != "input":
                    results[f"{model.net.layers[i].name}.{key}.grad{suffix}"] = g
    if count > 1 and model.reduction != "none":
        scale = Exact(1) / count if model.reduction == "mean" else Exact(1)
        results["loss"] = sum(values, Exact(0)) * scale
        keys = {key for grads in grads_per_group for key in grads}
        for key in sorted(keys, key=str):    # an input may sit in some groups only
            total_g = sum((g[key] for g in grads_per_group if key in g), Exact(0))
            if key[0] == "input":
                if key[1] in inputs:
                    results[f"{key[1]}.grad"] = total_g * scale
            else:
                results[f"{model.net.layers[key[0]].name}.{key[1]}.grad"] = total_g * scale
    solution.conventions = _conventions(model, spec)
    solution.number_equations()
    return solution


def _reword_sums(section) -> None:
    """The network calls the summed shares a minibatch's; here they are the branches'."""
    for block in section.blocks:
        if isinstance(block, Step) and block.text is not None and block.text.key == "backward.parameter_sum":
            block.text = Phrase("siamese.parameter_sum", block.text.args)


def _d(loss_sym, of):
    from examsolver.mathnodes import Deriv

    return Deriv(loss_sym, of)


def _contrastive(model: Siamese, solution, k: int, group: list, loss_sym: Sym, results: dict):
    i, j = group
    pair = model.spec.pairs[k]
    positive = pair.label == "positive"
    label = _label(k, len(model.groups))
    e1, e2 = model.fwd.acts[-1][i], model.fwd.acts[-1][j]
    loss = model.loss
    d = loss.distance(e1, e2)
    value = loss.pair_value(d, positive)
    results["d" + (f"({label})" if label else "")] = d
    section = solution.section(f"section.siamese_loss_{pair.label}" + ("_n" if label else ""), pair=label)
    d_sym = Sym("d", label)
    section.add(Step(lhs=d_sym, forms=[model.dist_node(i, j)], bindings=model.dist_bindings(i, j), result=d,
                     text=Phrase("siamese.pair", {"a": model.names[i], "b": model.names[j], "label": Phrase(f"siamese.{pair.label}")})))
    m = Sym("m")
    if positive:
        form = _squared(d_sym, loss)
    else:
        form = _squared(Paren(Call("max", (Const(0), Op("-", (m, d_sym))))), loss)
    if loss.half:
        form = mul(Frac(Const(1), Const(2)), form)
    section.add(Step(lhs=loss_sym, forms=[form], bindings={d_sym: val(d), m: val(loss.m)}, result=value))
    if not positive:
        gap = (loss.m - d).sign()
        if gap == 0:
            solution.warnings.append(Phrase("warning.contrastive_at_margin", {"pair": label or "1", "m": loss.m}))
        elif gap < 0:
            section.add(Phrase("siamese.inactive", {"d": d, "m": loss.m}))
        if d.sign() == 0:
            solution.warnings.append(Phrase("warning.contrastive_zero_distance", {"pair": label or "1"}))
    g1 = loss.pair_grad(e1, e2, d, positive)
    g2 = np.asarray(-g1, dtype=object)
    diff = Paren(Op("-", (model.e(i), model.e(j))))
    two = Const(1 if loss.half else 2)
    unit = Frac(diff, d_sym)                      # ∂d/∂e⁽ⁱ⁾ (Euclidean)
    half = [Frac(Const(1), Const(2))] if loss.half else []
    if positive:
        form = mul(two, diff) if loss.squared else (mul(*half, unit) if half else unit)
    elif loss.squared:
        form = Neg(mul(two, Paren(Op("-", (m, d_sym))), unit))
    else:
        form = Neg(mul(*half, unit) if half else unit)
    bindings = {**model.dist_bindings(i, j), d_sym: val(d), m: val(loss.m)}
    if not positive and ((loss.m - d).sign() <= 0 or d.sign() == 0):
        form = Const(0)             # outside the margin (or d = 0): the loss is flat here
    forms = [form] if model.written or isinstance(form, Const) else []
    steps = [Step(lhs=_d(loss_sym, model.e(i)), forms=forms, bindings=bindings, result=g1, layout="row",
                  text=Phrase("siamese.grad_embeddings", {})),
             Step(lhs=_d(loss_sym, model.e(j)), forms=[Neg(_d(loss_sym, model.e(i)))],
                  bindings={_d(loss_sym, model.e(i)): val(g1, "row")}, result=g2, layout="row")]
    return value, [(i, g1), (j, g2)], steps


def _triplet(model: Siamese, solution, k: int, group: list, loss_sym: Sym, results: dict):
    a, p, n = group
    label = _label(k, len(model.groups))
    E = model.fwd.acts[-1]
    loss = model.loss
    d_ap, d_an = loss.distance(E[a], E[p]), loss.distance(E[a], E[n])
    D_ap, D_an = (d_ap * d_ap, d_an * d_an) if loss.squared else (d_ap, d_an)
    value = loss.triplet_value(D_ap, D_an)
    suffix = f"({label})" if label else ""
    results["d_ap" + suffix], results["d_an" + suffix] = d_ap, d_an
    section = solution.section("section.siamese_loss_triplet" + ("_n" if label else ""), pair=label)
    s_ap, s_an, m = Sym("d", f"ap{label}"), Sym("d", f"an{label}"), Sym("m")
    trip = model.spec.triplets[k]
    section.add(Step(lhs=s_ap, forms=[model.dist_node(a, p)], bindings=model.dist_bindings(a, p), result=d_ap,
                     text=Phrase("siamese.triplet", {"a": trip.anchor, "p": trip.positive, "n": trip.negative})))
    section.add(Step(lhs=s_an, forms=[model.dist_node(a, n)], bindings=model.dist_bindings(a, n), result=d_an))
    form = Call("max", (Const(0), Op("+", (Op("-", (_squared(s_ap, loss), _squared(s_an, loss))), m))))
    section.add(Step(lhs=loss_sym, forms=[form], bindings={s_ap: val(d_ap), s_an: val(d_an), m: val(loss.m)},
                     result=value))
    z = loss.hinge(D_ap, D_an).sign()
    if z == 0:
        solution.warnings.append(Phrase("warning.triplet_at_margin", {"group": label or "1", "value": loss.kink_grad}))
    elif z < 0:
        section.add(Phrase("siamese.triplet_inactive", {}))
    if z > 0 and not loss.squared and (d_ap.sign() == 0 or d_an.sign() == 0):      # d² has no kink at 0
        solution.warnings.append(Phrase("warning.triplet_zero_distance", {"group": label or "1"}))
    ga, gp, gn = loss.triplet_grads(E[a], E[p], E[n], d_ap, d_an)
    ea, ep, en = model.e(a), model.e(p), model.e(n)
    if loss.squared:                 # ∂d²/∂a = 2(a − p)
        u_ap, u_an = (mul(Const(2), Paren(Op("-", (ea, x)))) for x in (ep, en))
    else:
        u_ap, u_an = Frac(Paren(Op("-", (ea, ep))), s_ap), Frac(Paren(Op("-", (ea, en))), s_an)
    b = {**model.dist_bindings(a, p), en: val(E[n]), s_ap: val(d_ap), s_an: val(d_an)}
    steps = [Step(lhs=_d(loss_sym, ea), forms=[Op("-", (u_ap, u_an))], bindings=b, result=ga, layout="row",
                  text=Phrase("siamese.grad_embeddings", {})),
             Step(lhs=_d(loss_sym, ep), forms=[Neg(u_ap)], bindings=b, result=gp, layout="row"),
             Step(lhs=_d(loss_sym, en), forms=[u_an], bindings=b, result=gn, layout="row")]
    # the formulas hold where the hinge passes the gradient, for the Euclidean distance
    if not (z > 0 or z == 0 and loss.kink_grad == 1) or not model.written:
        for step in steps:
            step.forms = []
    return value, [(a, ga), (p, gp), (n, gn)], steps


def _wanted(spec, net: Network, inputs: list) -> tuple[set, set]:
    """(parameters, named inputs) whose gradients the tasks ask for."""
    names, wanted, asked = net.parameter_names(), set(), set()
    for t, task in enumerate(spec.tasks):
        gradient = getattr(task, "gradient", None)
        if gradient is None:
            continue
        for j, name in enumerate(gradient.wrt):
            if name in inputs:
                asked.add(name)
            elif name in names:
                wanted.add(names[name])
            else:
                expected = ", ".join(list(names) + list(inputs))
                raise SpecError([net.doc.problem(("tasks", t, "gradient", "wrt", j),
                                                 f"unknown parameter {name!r} (expected one of: {expected})")])
    return wanted, asked


def _conventions(model: Siamese, spec) -> list:
    phrases = []
    for layer in model.net.layers:
        phrases.extend(layer.conventions_used())
    phrases.extend(model.loss.conventions_used())
    phrases.append(Phrase("convention.siamese_shared", {}))
    if len(model.groups) > 1:
        phrases.append(Phrase(f"convention.siamese_reduction_{model.reduction}", {}))
    return unique_phrases(phrases)
