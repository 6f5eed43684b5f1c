"""Results by their mathematical names: `fc1.W.grad(1)` is ∂L⁽¹⁾/∂W₁ in a document's answer key.

A result's name is the engine's (JSON, answer keys); its symbol is the one the solution's
equations use, taken from the same places the engine takes it: a network layer's
`weight_sym`, the example superscript, ĥ for "hat".  A name it cannot read stays as code.
"""

from __future__ import annotations

import re

import numpy as np

from examsolver.mathnodes import Const, Deriv, Node, Power, Sym

_NAME = re.compile(r"(?P<base>[^()]+?)(?:\((?P<n>\d+)\))?")
_SYMBOL = re.compile(r"(?P<letters>[A-Za-z]+?)(?P<hat>hat)?(?P<digits>\d*)")
_STATISTICS = {"mean": Sym("mu", bold=True), "var": Power(Sym("sigma", bold=True), Const(2)),
               "std": Sym("sigma", bold=True)}


def math_name(solution, name: str) -> Node | None:
    """The symbol of a result as the solution writes it, or None."""
    match = _NAME.fullmatch(name)
    if not match:
        return None
    example = int(match["n"]) if match["n"] else None
    parts = match["base"].split(".")
    value = solution.results.get(name)
    if parts == ["loss"]:
        return Sym("L").of_example(example)
    if not _is_network(solution):        # other kinds name their results their own way (h3: h at t = 3)
        return None
    if len(parts) == 2 and parts[1] in _STATISTICS:
        return _STATISTICS[parts[1]]
    if len(parts) == 3 and parts[2] in ("grad", "updated"):
        weight = _weight_symbol(solution, parts[0], parts[1])
        if weight is None:
            return None
        if parts[2] == "updated":
            return weight.with_sup("UPD")
        return Deriv(Sym("L").of_example(example), weight)
    if len(parts) == 1:
        symbol = _SYMBOL.fullmatch(parts[0])
        if symbol and len(symbol["letters"]) == 1:
            return Sym(symbol["letters"], symbol["digits"], hat=bool(symbol["hat"]),
                       bold=np.ndim(value) > 0).of_example(example)
    return None


def _weight_symbol(solution, layer_name: str, key: str) -> Sym | None:
    net = network_of(solution)
    layer = {layer.name: layer for layer in net.layers}.get(layer_name) if net else None
    return layer.weight_sym(key) if layer is not None and key in layer.weights else None


def _is_network(solution) -> bool:
    doc = getattr(solution, "document", None)
    return doc is not None and doc.data.get("kind", "network") == "network"


_CACHE: dict = {"doc": None, "net": None}      # the last solution's network: one is rendered at a time


def network_of(solution):
    """The solution's network (its layers with their weights, the data), rebuilt from the spec it
    solves; None for other problem kinds."""
    if not _is_network(solution):
        return None
    doc = solution.document
    if _CACHE["doc"] is not doc:
        from examsolver.engine.network import Network
        from examsolver.engine.solve import parse_spec

        _CACHE.update(doc=doc, net=Network(parse_spec(doc), doc))
    return _CACHE["net"]
