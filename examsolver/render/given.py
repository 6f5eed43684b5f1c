"""What a problem gives, listed as the slides list it: the layers with their parameters, the data,
the loss; built from the spec's model (network problems), so a statement need not repeat it."""

from __future__ import annotations

import numpy as np

from examsolver.locales import catalog
from examsolver.mathnodes import Op, Seq, Sym, Value
from examsolver.render.names import network_of
from examsolver.solution import Phrase


def _inline(layout: str, value) -> str:
    """A vector in a sentence is written on its line: [0, ln 2]ᵀ."""
    return "colT" if layout == "col" and np.ndim(value) == 1 else layout


def given(solution) -> list[Phrase]:
    """One phrase per layer (with its weights as equations), per example and for the loss."""
    net = network_of(solution)
    if net is None:
        return []
    known = catalog("en")
    out = []
    for layer in net.layers:
        params = Seq(tuple(Op("=", (layer.weight_sym(key), Value(value, _inline(layer.weight_layout(key), value))))
                           for key, value in layer.weights.items())) if layer.weights else ""
        key = f"given.{layer.kind}"
        out.append(Phrase(key if key in known else "given.layer", {"name": layer.name, "kind": layer.kind,
                                                                   "params": params}))
    for n, (x, y) in enumerate(zip(net.xs, net.ys), 1):
        example = n if net.batched else None
        if not isinstance(x, np.ndarray):
            continue
        x_eq = Op("=", (Sym("x", bold=x.ndim > 0).of_example(example), Value(x, "colT")))
        phrase = Phrase("given.example", {"x": x_eq})
        if y is not None:
            y_eq = Op("=", (Sym("y", bold=np.ndim(y) > 0).of_example(example), Value(y, "colT")))
            phrase = Phrase("given.example_label", {"x": x_eq, "y": y_eq})
        out.append(phrase)
    if net.loss is not None:
        key = f"given.loss.{net.loss.kind}"
        out.append(Phrase(key if key in known else "given.loss", {"kind": net.loss.kind}))
    return out
