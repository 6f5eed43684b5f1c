"""The symbolic kind's `minimize` task: an objective f(θ) given as a formula, minimised by an optimizer.

    - minimize: {of: f, from: {theta: [1, 2]}, optimizer: {adam: {lr: 0.1}}, steps: 3}

The gradient is derived by sympy once and evaluated exactly at every step's parameters;
the steps themselves are engine/optim's, the same the network kind shows for `train:`.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from examsolver.engine import optim
from examsolver.errors import EngineError, SpecError
from examsolver.mathnodes import Call, Deriv, Expr, Sym
from examsolver.solution import Step, unique_phrases
from examsolver.spec.model import Tensor, Text


class Minimize(optim.Training):
    of: str | int = Field(description="the objective: an expression in the declared symbols")
    from_: dict[str, Tensor] = Field(alias="from", min_length=1, max_length=20,
                                     description="the parameters and their starting values")
    name: Text | None = Field(None, description="result prefix of the objective's values (default: `of`, or f)")


def run(solver, task: Minimize, loc: tuple) -> None:
    from examsolver.engine.symbolic import _numeric, display_name, shown

    sp, doc = solver.sp, solver.doc
    f = solver.expr(task.of, loc + ("of",))
    if isinstance(f, sp.MatrixBase):
        raise SpecError([doc.problem(loc + ("of",), "minimize: the objective must be a scalar")])
    entries, start = {}, {}
    for name, value in task.from_.items():
        symbol = solver.scope.symbol(name, loc + ("from", name))
        entries[name] = list(symbol) if isinstance(symbol, sp.MatrixBase) else [symbol]
        shape = (len(entries[name]),) if isinstance(symbol, sp.MatrixBase) else ()
        if value.shape != shape:
            raise SpecError([doc.problem(loc + ("from", name), f"{name} has shape {shape}, the value {value.shape}")])
        start[name] = value
    free = f.free_symbols - {s for xs in entries.values() for s in xs}
    if free:
        raise SpecError([doc.problem(loc + ("of",), "the objective depends on symbols without a starting value: "
                                     + ", ".join(sorted(s.name for s in free)))])
    try:
        optimizer = optim.build(task)
    except ValueError as err:
        raise SpecError([doc.problem(loc + ("optimizer",), str(err))]) from None
    gradient = {name: [sp.diff(f, x) for x in xs] for name, xs in entries.items()}

    def at(params) -> dict:
        return {x: v.sympy() for name, xs in entries.items() for x, v in zip(xs, params[name].flat)}

    def evaluate(exprs: list, subs: dict, shape) -> np.ndarray:
        values = np.empty(len(exprs), dtype=object)
        for i, e in enumerate(exprs):
            values[i] = _numeric(e.subs(subs), sp)
        return values.reshape(shape)

    fname = task.name or (task.of if isinstance(task.of, str) and task.of in solver.scope.names else "f")
    loss = display_name(fname)
    symbols = {name: display_name(name).replace(bold=bool(start[name].ndim)) for name in entries}
    section = solver.solution.section("symbolic.section.minimize", f=loss, optimizer=type(optimizer).__name__)
    section.add(Step(lhs=loss, extra_forms=[shown(f)]))
    for name in entries:
        value = gradient[name] if start[name].ndim else gradient[name][0]
        section.add(Step(lhs=Deriv(loss, symbols[name]), extra_forms=[Expr(sp.Matrix(value) if start[name].ndim
                                                                           else value)]))
    for name in entries:
        section.add(Step(lhs=symbols[name].with_sup("(0)"), result=start[name]))
    results = solver.solution.results
    objective = [_objective_step(loss, symbols, 0, _numeric(f.subs(at(start)), sp))]
    section.add(objective[0])
    try:
        records = optim.run(optimizer, start, lambda p: {n: evaluate(gradient[n], at(p), start[n].shape)
                                                          for n in entries},
                            task.steps, clip_grad_norm=task.clip_grad_norm, clip_grad_value=task.clip_grad_value,
                            symbols=symbols, loss=loss)
    except EngineError as err:
        raise SpecError([doc.problem(loc, str(err))]) from None
    for record, step_section in zip(records, optim.add_sections(solver.solution, records, optimizer)):
        objective.append(_objective_step(loss, symbols, record.t, _numeric(f.subs(at(record.params)), sp)))
        step_section.add(objective[-1])
    results.update(optim.results(records))
    for t, step in enumerate(objective):
        results[f"{fname}({t})"] = step.result
    solver.solution.conventions = unique_phrases(solver.solution.conventions +
                                                 optim.conventions_used(optimizer, task))


def _objective_step(loss: Sym, symbols: dict, t: int, value) -> Step:
    """f(θ⁽ᵗ⁾) = value."""
    return Step(lhs=Call(loss.base + loss.sub, tuple(s.with_sup(f"({t})") for s in symbols.values())), result=value)
