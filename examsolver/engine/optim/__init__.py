"""Optimizers over `steps: N`: PyTorch's update rules on exact values, every step shown.

    records = run(optimizer, {"W1": W1, "b1": b1}, grad_fn, steps=2)

`optimizer` is an Optimizer built by `build` from a validated spec (`Training.optimizer`:
`{adam: {lr: 1/10}}`, PyTorch's option names and defaults); `grad_fn(params)` returns the
gradients at those parameters (the caller runs its forward and backward pass).  Every step
gives a StepRecord: the gradients, the clipping, the optimizer state and the parameters
after it, and the worked steps (language-neutral Steps).

How a problem kind uses it (the symbolic kind's `minimize`, engine/minimize.py, is one):

    training = Training.model_validate(spec_entry)     # or a field of type Training in the task's schema
    optimizer = build(training)
    records = run(optimizer, params, grad_fn, training.steps, clip_grad_norm=training.clip_grad_norm,
                  clip_grad_value=training.clip_grad_value, symbols={"fc1.W": W1_sym}, layouts={...})
    add_sections(solution, records, optimizer)          # one section per step
    solution.results.update(results(records))
    solution.conventions += conventions_used(optimizer, training)

Result names (`StepRecord.results()`), for step t = 1, 2, … and a parameter named P:

    P.grad(t)        ∂L/∂P at the parameters before step t, as grad_fn returned it
    P.g(t)           the gradient the rule uses: after clipping, plus λP where weight decay is L2
    P.v(t)           SGD: velocity (torch state 'momentum_buffer' in the PyTorch form)
    P.r(t)           Adagrad: sum of squared gradients ('sum'); RMSprop: their average ('square_avg')
    P.m(t), P.v(t)   Adam/AdamW: first and second moments ('exp_avg', 'exp_avg_sq');
                     RMSprop centered: P.m(t) ('grad_avg'); RMSprop momentum: P.v(t) ('momentum_buffer')
    P.vmax(t)        AMSGrad: running maximum of v ('max_exp_avg_sq')
    P.mhat(t), P.vhat(t)   bias-corrected moments
    P.updated(t)     P after step t
    grad_norm(t), clip_coef(t)                     clip_grad_norm_: total norm and the factor applied
    bias_correction1(t), bias_correction2(t)       Adam: 1 − β₁ᵗ, 1 − β₂ᵗ
    lr(t)                                          Adagrad with lr_decay: the decayed learning rate
"""

from __future__ import annotations

import pkgutil
from dataclasses import dataclass, field
from importlib import import_module
from typing import Annotated, Literal, Union

import numpy as np
from pydantic import BeforeValidator, Discriminator, Field, Tag, create_model, model_validator

from examsolver.engine.optim.base import OPTIMIZERS, Conventions, Optimizer, ParamStep, as_array, root, shown_value
from examsolver.engine.scalar import Exact
from examsolver.engine.tensor import emap
from examsolver.errors import EngineError
from examsolver.mathnodes import Call, Const, Frac, Neg, Node, Norm, Op, Paren, Power, Sym, Value, mul
from examsolver.solution import Phrase, Section, Step
from examsolver.spec.model import Number, Strict

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    import_module(f"{__name__}.{_module}")

MAX_STEPS = 50
CLIP_EPS = Exact(1) / 10**6        # torch.nn.utils.clip_grad_norm_ adds it to the norm


# ----- the spec ----------------------------------------------------------------------
class ClipGradNorm(Strict):
    max_norm: Number = Field(description="c: the gradients are scaled so their total norm is at most c")
    norm_type: Literal[2] = 2


class ClipGradValue(Strict):
    clip_value: Number = Field(description="every gradient entry is clamped to [−c, c]")


def _optimizer_union():
    """`{adam: {lr: 1/10}}`, or a bare `adam` for PyTorch's defaults: one member per registered optimizer."""

    def kind_of(value):
        if isinstance(value, str):
            return "bare"
        if isinstance(value, dict):
            key = next(iter(value), None) if len(value) == 1 else None
            return key if key in OPTIMIZERS else None
        fields = getattr(type(value), "model_fields", None)   # a validated member, when serialized
        return next(iter(fields), None) if fields else None   # anything else: "unknown optimizer", located

    members = [Annotated[create_model(f"{kind}_optimizer", __base__=Strict, **{kind: (cls.Params, ...)}), Tag(kind)]
               for kind, cls in OPTIMIZERS.items()]
    members.append(Annotated[Literal[tuple(OPTIMIZERS)], Tag("bare")])
    union = Annotated[Union[tuple(members)], Discriminator(
        kind_of, custom_error_type="unknown_optimizer",
        custom_error_message=f"unknown optimizer (expected one of: {', '.join(OPTIMIZERS)})")]
    return Annotated[union, BeforeValidator(_no_options)]


def _no_options(value):
    """`{sgd: null}` (YAML `sgd:` with nothing under it) means PyTorch's defaults, as `sgd` does."""
    if isinstance(value, dict) and len(value) == 1 and next(iter(value.values())) is None:
        return next(iter(value))
    return value


class Training(Strict):
    """optimizer + steps (+ clipping, conventions): what `train:` and `minimize:` tasks share."""

    optimizer: _optimizer_union()
    steps: int = Field(1, ge=1, le=MAX_STEPS)
    clip_grad_norm: ClipGradNorm | None = None
    clip_grad_value: ClipGradValue | None = None
    conventions: Conventions = Field(default_factory=Conventions)

    @model_validator(mode="after")
    def _one_clipping(self):
        if self.clip_grad_norm is not None and self.clip_grad_value is not None:
            raise ValueError("clip the gradients by norm or by value, not both")
        return self


def build(training: Training) -> Optimizer:
    """The Optimizer of a validated spec (ValueError for options PyTorch refuses)."""
    choice = training.optimizer
    if isinstance(choice, str):
        kind, params = choice, OPTIMIZERS[choice].Params()
    else:
        (kind, params), = ((k, getattr(choice, k)) for k in type(choice).model_fields)
    return OPTIMIZERS[kind](params, training.conventions)


# ----- records ---------------------------------------------------------------------------
@dataclass
class StepRecord:
    t: int
    grads: dict                        # name → ∂L/∂P at the parameters before the step
    state: dict                        # name → {key: array}: g, v, m, r, mhat, … after the step
    params: dict                       # name → P after the step
    scalars: dict = field(default_factory=dict)   # result name → value (grad_norm(t), bias_correction1(t), …)
    blocks: list = field(default_factory=list)    # the worked steps (Step / Phrase)

    def results(self) -> dict:
        out = dict(self.scalars)
        for name in self.params:
            out[f"{name}.grad({self.t})"] = self.grads[name]
            for key, value in self.state[name].items():
                out[f"{name}.{key}({self.t})"] = value
            out[f"{name}.updated({self.t})"] = self.params[name]
        return out


def results(records: list[StepRecord]) -> dict:
    out = {}
    for record in records:
        out.update(record.results())
    return out


# ----- the loop ------------------------------------------------------------------------
def run(optimizer: Optimizer, params: dict, grad_fn, steps: int, *, clip_grad_norm: ClipGradNorm | None = None,
        clip_grad_value: ClipGradValue | None = None, symbols: dict | None = None, layouts: dict | None = None,
        loss: Node = Sym("L"), tidy=None) -> list[StepRecord]:
    """`steps` steps of `optimizer` from `params` (name → object array of Exact).

    grad_fn(params) → name → gradient at those parameters.  symbols / layouts: how each
    parameter is written (default: its name, bold unless a scalar) and laid out; loss: the
    numerator of ∂L/∂P in the steps; tidy: applied to every symbolic (sympy) result, for
    parameters that are symbols (an update rule derived symbolically).
    """
    params = {name: as_array(np.asarray(value, dtype=object)) for name, value in params.items()}
    syms = {name: (symbols or {}).get(name) or Sym(name, bold=value.ndim > 0) for name, value in params.items()}
    tags = {name: "" if len(params) == 1 else _tag(syms[name]) for name in params}
    state = {name: optimizer.initial_state(value) for name, value in params.items()}
    records = []
    for t in range(1, steps + 1):
        grads = {name: as_array(np.asarray(g, dtype=object)) for name, g in grad_fn(dict(params)).items()}
        for name, value in params.items():
            if name not in grads or grads[name].shape != value.shape:
                raise EngineError(f"the gradient of {name} has shape {getattr(grads.get(name), 'shape', None)}, "
                                  f"expected {value.shape}")
        steps_of = {name: ParamStep(name, syms[name], tags[name], (layouts or {}).get(name, "col"), t, params[name],
                                    grads[name], state[name], loss, tidy=tidy) for name in params}
        record = StepRecord(t, grads, state={}, params={}, scalars=optimizer.scalars(t))
        if clip_grad_norm is not None:
            record.scalars.update(_clip_norm(list(steps_of.values()), clip_grad_norm, optimizer.conventions, record))
        elif clip_grad_value is not None:
            for ps in steps_of.values():
                _clip_value(ps, clip_grad_value.clip_value)
        record.blocks.extend(optimizer.step_blocks(t))
        for name, ps in steps_of.items():
            new = as_array(optimizer.update(ps))
            params[name] = new
            state[name] = dict(ps.state)
            record.state[name] = dict(ps.state)
            record.params[name] = new
            record.blocks.extend(ps.blocks)
        records.append(record)
    return records


def _tag(sym: Sym) -> str:
    return sym.base + sym.sub


# ----- clipping ----------------------------------------------------------------------------
def _clip_norm(steps: list[ParamStep], spec: ClipGradNorm, conventions: Conventions, record: StepRecord) -> dict:
    """torch.nn.utils.clip_grad_norm_: every gradient times min(1, c/(‖g‖ + 10⁻⁶)), ‖g‖ over all of them."""
    t = steps[0].t
    squares = sum((v * v for ps in steps for v in ps.raw_grad.flat), Exact(0))
    norm = root(squares)
    derivs = [ps.deriv() for ps in steps]
    parts = [Power(Norm(d), Const(2)) for d in derivs]
    norm_sym, c_sym, max_sym = Sym("g", sub="norm", sup=f"({t})"), Sym("c", sup=f"({t})"), Sym("c", sub="max")
    record.blocks.append(Step(lhs=norm_sym, forms=[Call("sqrt", (Op("+", tuple(parts)),)) if len(parts) > 1
                                                   else Norm(derivs[0])],
                              bindings={d: Value(ps.raw_grad, ps.layout) for d, ps in zip(derivs, steps)},
                              result=norm, text=Phrase("optim.clip_norm", {})))
    exact = conventions.clip_norm == "exact"
    below = norm + (0 if exact else CLIP_EPS)
    ratio = spec.max_norm / below if below != 0 else Exact(1)
    coef = ratio if ratio < 1 else Exact(1)
    den = norm_sym if exact else Paren(norm_sym + Const(CLIP_EPS))
    record.blocks.append(Step(lhs=c_sym, forms=[Call("min", (Const(1), Frac(max_sym, den)))],
                              bindings={max_sym: shown_value(spec.max_norm), norm_sym: shown_value(norm)}, result=coef,
                              text=Phrase("optim.clip_coef" if coef != 1 else "optim.clip_none", {})))
    for ps in steps:
        ps.grad = ps.raw_grad * coef if coef != 1 else ps.raw_grad
        if coef != 1:
            ps.grad_form = mul(c_sym, ps.deriv())
            ps.grad_bindings[c_sym] = coef
    return {f"grad_norm({t})": norm, f"clip_coef({t})": coef}


def _clip_value(ps: ParamStep, c) -> None:
    """torch.nn.utils.clip_grad_value_: every entry clamped to [−c, c]."""
    ps.grad = emap(lambda v: c if v > c else (-c if v < -c else v), ps.raw_grad)
    c_sym = Sym("c", sub="max")
    ps.grad_form = Call("clip", (ps.deriv(), Neg(c_sym), c_sym))
    ps.grad_bindings[c_sym] = c


def conventions_used(optimizer: Optimizer, training: Training | None = None) -> list[Phrase]:
    """The rules a run used, as phrases for the solution's conventions list."""
    phrases = optimizer.conventions_used()
    if training is not None and training.clip_grad_norm is not None:
        phrases.append(Phrase(f"optim.convention.clip_norm_{training.conventions.clip_norm}",
                              {"c": training.clip_grad_norm.max_norm}))
    if training is not None and training.clip_grad_value is not None:
        phrases.append(Phrase("optim.convention.clip_value", {"c": training.clip_grad_value.clip_value}))
    return phrases


def add_sections(solution, records: list[StepRecord], optimizer: Optimizer) -> list[Section]:
    """One section per step, titled with the optimizer's name."""
    out = []
    for record in records:
        section = solution.section("optim.section.step", t=record.t, optimizer=type(optimizer).__name__)
        section.blocks.extend(record.blocks)
        out.append(section)
    return out
