"""Steps of a reverse pass read off the graph: ∂L/∂(node) through every node that reads it.

Used where a problem's backward pass has no hand-shaped presentation (the gate
equations of LSTM and GRU cells): the formula of each gradient is composed from
the ops' own local rules (`op.local`), with unnamed intermediate nodes written
out by their formulas (`op.formula`), so nothing here knows any op by name.
"""

from __future__ import annotations

from examsolver.engine.ops.base import val
from examsolver.mathnodes import Deriv, Op
from examsolver.solution import Step


def formula(node):
    """The symbol of a named node, or the formula of an intermediate one."""
    if node.sym is not None:
        return node.sym
    return node.op.formula([formula(i) for i in node.inputs])


def _named(node) -> bool:
    return node.sym is not None


def gradient_form(graph, node, loss, bindings: dict, grads, seed=None):
    """∂loss/∂node as a sum over the nodes that read it; named readers' gradients are bound to values.

    seed = (symbol, value): a gradient given directly at this node (a loss reading it), the first term.
    """
    terms = []
    if seed is not None:
        terms.append(seed[0])
        bindings[seed[0]] = val(seed[1], "row")
    for reader in graph.consumers(node):
        if grads[reader] is None:
            continue
        if _named(reader):
            upstream = Deriv(loss, reader.sym)
            bindings[upstream] = val(grads[reader], "row")
        else:
            upstream = gradient_form(graph, reader, loss, bindings, grads)
        syms = [formula(i) for i in reader.inputs]
        out = reader.op.formula(syms) if reader.sym is None else reader.sym   # one instance: bound below
        for k, inp in enumerate(reader.inputs):
            if inp is node:
                terms.append(reader.op.local(k, syms, upstream, out))
        for inp, sym in zip(reader.inputs, syms):     # what the local rule reads, written in with numbers
            if inp is not node:
                bindings[sym] = val(inp.value, "row")
        bindings[out] = val(reader.value, "row")     # σ′ and tanh′ are written through the output
    return terms[0] if len(terms) == 1 else Op("+", tuple(terms))


def gradient_step(graph, node, grads, loss, seed=None) -> Step:
    bindings: dict = {}
    form = gradient_form(graph, node, loss, bindings, grads, seed)
    return Step(lhs=Deriv(loss, node.sym), forms=[form], bindings=bindings, result=grads[node], layout="row")
