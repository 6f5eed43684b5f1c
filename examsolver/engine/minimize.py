"""The symbolic kind's `minimize` task: an objective f(θ) given as a formula, minimised by an optimizer.

    - minimize: {of: f, from: {theta: [1, 2]}, optimizer: {adam: {lr: 0.1}}, steps: 3}
    - minimize: {of: Jreg, wrt: [theta], optimizer: sgd, hyperparameters: {lr: alpha}}

With `from:` the parameters start at exact values; the gradient is derived by sympy once and
evaluated exactly at every step's parameters.  With `wrt:` instead, the parameters stay
symbols and the task derives the update rule itself (SGD: every other optimizer takes square
roots and comparisons of the values), each result collected by parameter:
θ⁽¹⁾ = (1 − 2αλ)θ − α ∂J/∂θ.  Either way the steps are engine/optim's, the ones the network
kind shows for `train:`.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from examsolver.engine import optim
from examsolver.errors import EngineError, SpecError
from examsolver.mathnodes import Call, Deriv, Expr, Sym
from examsolver.solution import Step, unique_phrases
from examsolver.spec.model import Tensor, Text

NAME = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,30}$")]


class Minimize(optim.Training):
    of: str | int = Field(description="the objective: an expression in the declared symbols")
    from_: dict[NAME, Tensor] | None = Field(None, alias="from", min_length=1, max_length=20,
                                             description="the parameters and their exact starting values")
    wrt: list[NAME] | None = Field(None, min_length=1, max_length=20,
                                   description="instead of `from`: symbolic parameters (an SGD update rule)")
    hyperparameters: dict[str, NAME] = Field(default_factory=dict,
                                             description="with `wrt`: optimizer options written as declared "
                                                         "symbols, e.g. {lr: alpha}")
    name: Text | None = Field(None, description="names the objective's values name(t) (default: `of`, or f) and "
                                                "prefixes the other results: name.theta.updated(1)")


def run(solver, task: Minimize, loc: tuple) -> None:
    from examsolver.engine.symbolic import display_name, shown, substitute

    sp, doc = solver.sp, solver.doc
    f = solver.expr(task.of, loc + ("of",))
    if isinstance(f, sp.MatrixBase):
        raise SpecError([doc.problem(loc + ("of",), "minimize: the objective must be a scalar")])
    if (task.from_ is None) == (task.wrt is None):
        raise SpecError([doc.problem(loc, "minimize needs either `from` (starting values) or `wrt` (symbolic "
                                          "parameters), not both")])
    symbolic = task.wrt is not None
    entries, start = (_symbolic_start if symbolic else _exact_start)(solver, task, loc)
    free = f.free_symbols - {s for xs in entries.values() for s in xs} - _hyper_symbols(solver, task, loc)
    unknown = solver.scope.unspecified_in(f)
    if unknown and not symbolic:
        raise SpecError([doc.problem(loc + ("from",), f"{', '.join(unknown)} is an unspecified function: its gradient "
                                     "has a value at no point, so `from` cannot start it; give `wrt` (the update "
                                     "rule in symbols, the gradient written ∂J/∂θ at each step's point)")])
    if free and not symbolic:
        raise SpecError([doc.problem(loc + ("of",), "the objective depends on symbols without a starting value: "
                                     + ", ".join(sorted(s.name for s in free)))])
    optimizer = _optimizer(solver, task, loc, symbolic)
    gradient = {name: [sp.diff(f, x) for x in xs] for name, xs in entries.items()}

    def at(params) -> dict:
        return {x: _sympy(v) for name, xs in entries.items() for x, v in zip(xs, params[name].flat)}

    def grad_fn(params) -> dict:
        subs = at(params)
        return {n: _values([substitute(e, subs) for e in gradient[n]], start[n].shape, sp, symbolic) for n in entries}

    fname = task.name or (task.of if isinstance(task.of, str) and task.of in solver.scope.names else "f")
    loss = display_name(fname)
    symbols = {name: display_name(name).replace(bold=bool(start[name].ndim)) for name in entries}
    section = solver.solution.section("symbolic.section.minimize", f=loss, optimizer=type(optimizer).__name__)
    section.add(Step(lhs=loss, extra_forms=[shown(f)]))
    for name in entries:
        value = sp.Matrix(gradient[name]) if start[name].ndim else gradient[name][0]
        section.add(Step(lhs=Deriv(loss, symbols[name]), extra_forms=[Expr(value)]))
    for name in entries:
        section.add(Step(lhs=symbols[name].with_sup("(0)"), result=optim.base.displayed(start[name])))
    objective = []

    def show_objective(t, params, section) -> None:
        if not symbolic:
            objective.append(_objective_step(loss, symbols, t, _values([substitute(f, at(params))], (), sp, False)[()]))
            section.add(objective[-1])

    show_objective(0, start, section)
    parameters = [s for xs in entries.values() for s in xs]
    tidy = (lambda e: sp.collect(sp.expand(e), parameters)) if symbolic else None
    try:
        records = optim.run(optimizer, start, grad_fn, task.steps, clip_grad_norm=task.clip_grad_norm,
                            clip_grad_value=task.clip_grad_value, symbols=symbols, loss=loss, tidy=tidy)
    except EngineError as err:
        raise SpecError([doc.problem(loc, str(err))]) from None
    for record, step_section in zip(records, optim.add_sections(solver.solution, records, optimizer)):
        show_objective(record.t, record.params, step_section)
    results = solver.solution.results
    prefix = f"{task.name}." if task.name else ""       # two minimize tasks keep their results apart
    for key, value in optim.results(records).items():
        results[prefix + key] = _result(solver, value) if symbolic else value
    for t, step in enumerate(objective):
        results[f"{fname}({t})"] = step.result
    solver.solution.conventions = unique_phrases(solver.solution.conventions +
                                                 optim.conventions_used(optimizer, task))


def _exact_start(solver, task, loc):
    """Parameters from `from:` ({name: exact value}), shapes checked against the declared symbols."""
    sp, entries, start = solver.sp, {}, {}
    if task.hyperparameters:
        raise SpecError([solver.doc.problem(loc + ("hyperparameters",), "symbolic hyperparameters go with `wrt`; "
                                                                        "with `from` give numbers")])
    for name, value in task.from_.items():
        symbol = solver.scope.symbol(name, loc + ("from", name))
        entries[name] = list(symbol) if isinstance(symbol, sp.MatrixBase) else [symbol]
        shape = (len(entries[name]),) if isinstance(symbol, sp.MatrixBase) else ()
        if value.shape != shape:
            raise SpecError([solver.doc.problem(loc + ("from", name), f"{name} has shape {shape}, "
                                                                      f"the value {value.shape}")])
        start[name] = value
    return entries, start


def _symbolic_start(solver, task, loc):
    """Parameters from `wrt:`, each starting at itself: θ⁽⁰⁾ = θ."""
    sp, entries, start = solver.sp, {}, {}
    for j, name in enumerate(task.wrt):
        symbol = solver.scope.symbol(name, loc + ("wrt", j))
        entries[name] = list(symbol) if isinstance(symbol, sp.MatrixBase) else [symbol]
        array = np.empty(len(entries[name]) if isinstance(symbol, sp.MatrixBase) else (), dtype=object)
        array.flat[:] = entries[name]
        start[name] = array
    if task.clip_grad_norm or task.clip_grad_value:
        raise SpecError([solver.doc.problem(loc, "clipping compares values: give `from` (starting values)")])
    return entries, start


def _hyper_symbols(solver, task, loc) -> set:
    return {solver.scope.symbol(name, loc + ("hyperparameters", key)) for key, name in task.hyperparameters.items()}


def _optimizer(solver, task, loc, symbolic: bool):
    try:
        optimizer = optim.build(task)
    except ValueError as err:
        raise SpecError([solver.doc.problem(loc + ("optimizer",), str(err))]) from None
    if not symbolic:
        return optimizer
    if optimizer.name != "sgd":
        raise SpecError([solver.doc.problem(loc + ("optimizer",), "a symbolic update rule (`wrt`) is derived for "
                                                                   "sgd; other optimizers need `from` values")])
    params = optimizer.p
    values = {key: _sympy(getattr(params, key)) for key in type(params).model_fields}
    if "lr" not in params.model_fields_set:
        values["lr"] = solver.sp.Symbol("eta")
    for key, name in task.hyperparameters.items():
        if key not in values or isinstance(values[key], bool):
            raise SpecError([solver.doc.problem(loc + ("hyperparameters", key),
                                                f"not a numeric option of {optimizer.name}: {key}")])
        values[key] = solver.scope.symbol(name, loc + ("hyperparameters", key))
    return type(optimizer)(type(params).model_construct(**values), optimizer.conventions)


def _sympy(value):
    return value.sympy() if hasattr(value, "sympy") else value


def _values(exprs: list, shape, sp, symbolic: bool) -> np.ndarray:
    """Exact values of evaluated sympy numbers, or the expressions themselves for a symbolic rule."""
    from examsolver.engine.symbolic import _numeric

    out = np.empty(len(exprs), dtype=object)
    for i, e in enumerate(exprs):
        out[i] = e if symbolic else _numeric(e, sp)
    return out.reshape(shape)


def _result(solver, value):
    """A symbolic result as answer keys name it: sympy, ∂J/∂θ as the plain symbol dJ_dtheta."""
    array = np.asarray(value, dtype=object)
    expr = array[()] if array.ndim == 0 else solver.sp.Matrix(list(array.flat))
    return solver.scope.answer_form(expr) if hasattr(expr, "subs") else value


def _objective_step(loss: Sym, symbols: dict, t: int, value) -> Step:
    """f(θ⁽ᵗ⁾) = value."""
    return Step(lhs=Call(loss.base + loss.sub, tuple(s.with_sup(f"({t})") for s in symbols.values())), result=value)
