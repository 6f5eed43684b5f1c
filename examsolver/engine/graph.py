"""One computation graph for every problem that differentiates.

A problem kind is a builder: it adds leaves (inputs, parameters, initial
states) and applies registered ops to nodes; every value is computed as the
node is added.  One reverse pass (`backward`) then gives the gradient of a
seeded node (the loss, an example's loss, or any node with a given upstream
gradient) with respect to every node it depends on.  Gradients accumulate with
`+` where a node feeds several others — shared parameters over the branches of
a siamese model or the time steps of a recurrent net — and every part of such a
sum is kept (`Grads.parts`) so that the solution can show it.

Values of batched nodes are lists over the examples of the minibatch (a layer
sees the whole batch, so batchnorm's statistics and their gradient need no
special case); a gradient of a batched node is a list with None where that
example's gradient is zero (the slides' per-example backward passes seed one
example's loss).

Another convention at a degenerate input (ReLU′(0), max-pool ties) changes the
rule of some ops only: `recompute(since)` redoes the forward values from the
first such node on, and `replaying(passes, last)` makes the next reverse passes
take everything above the last such node from the earlier passes, so only the
nodes the convention reaches are computed again.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field


class GraphOp:
    """What the graph asks of an op: forward and vector-Jacobian product side by side.

    `forward(values)` gets the input nodes' values in order and returns the
    output value; `vjp(values, out, g, needs)` gets the upstream gradient g of
    the output and returns one gradient per input (None where zero or where
    needs[i] is False: nothing below that input asks for it).
    """

    def forward(self, values: list):
        raise NotImplementedError

    def vjp(self, values: list, out, g, needs: list) -> list:
        raise NotImplementedError


@dataclass(eq=False)
class Node:
    """A value in the graph: a leaf (input, parameter, state) or an op applied to nodes."""

    name: str
    value: object
    op: GraphOp | None = None
    inputs: tuple = ()
    role: str = "value"          # "input", "param", "state", "value"
    sym: object = None           # the formula symbol the solution writes for it

    def __repr__(self):
        return f"Node({self.name!r}, {self.role})"


def add_grads(a, b):
    """a + b for gradients; None is zero, lists are per-example."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, list):
        return [add_grads(x, y) for x, y in zip(a, b)]
    return a + b


def _same_seed(a, b) -> bool:
    """Two seeds of reverse passes are the same (False when that cannot be told cheaply)."""
    if a is b:
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_seed(x, y) for x, y in zip(a, b))
    if a is None or b is None or isinstance(a, list) or isinstance(b, list):
        return False
    try:
        return bool(a == b)
    except (TypeError, ValueError, ArithmeticError):     # arrays: not told apart here
        return False


def is_zero_grad(g) -> bool:
    return g is None or (isinstance(g, list) and all(x is None for x in g))


@dataclass
class Grads:
    """The result of one reverse pass."""

    of: dict = field(default_factory=dict)       # node → gradient (None: zero / not asked)
    parts: dict = field(default_factory=dict)    # node → [(consumer node, its contribution)]
    seeds: dict = field(default_factory=dict)    # what the pass started from, to match a replay
    wanted: tuple = ()

    def __getitem__(self, node: Node):
        return self.of.get(node)

    def through(self, node: Node, consumer: Node):
        """The part of node's gradient that flowed back through `consumer` (None: none)."""
        total = None
        for by, part in self.parts.get(node, []):
            if by is consumer:
                total = add_grads(total, part)
        return total

    def get(self, node: Node, default=None):
        g = self.of.get(node)
        return default if g is None else g


class Graph:
    def __init__(self):
        self.nodes: list[Node] = []
        self.by_name: dict[str, Node] = {}
        self.passes: list[Grads] = []       # the reverse passes at the values as built, in order
        self.recording = True               # off once the parameters are changed (an optimizer's steps)
        self._replay = None                 # (iterator over earlier passes, index of the last node to redo)

    def _add(self, node: Node) -> Node:
        if node.name in self.by_name:
            raise ValueError(f"two nodes are named {node.name!r}")
        self.nodes.append(node)
        self.by_name[node.name] = node
        return node

    def leaf(self, name: str, value, role: str = "param", sym=None) -> Node:
        return self._add(Node(name, value, None, (), role, sym))

    def apply(self, op: GraphOp, inputs, name: str, sym=None) -> Node:
        """Add op(inputs) and compute its value now (the graph is built in topological order)."""
        inputs = tuple(inputs)
        value = op.forward([i.value for i in inputs])
        return self._add(Node(name, value, op, inputs, "value", sym))

    def set_leaf(self, node: Node, value) -> None:
        """A leaf's new value (a parameter update): the passes so far no longer describe the graph."""
        node.value = value
        self.recording, self._replay = False, None

    def recompute(self, since: Node | None = None) -> list[Node]:
        """Op values again from the leaves' current values (after a parameter update), or only
        `since` and what depends on it; returns the nodes recomputed.  Earlier passes no longer
        match the values, so a replay stops here, and after a parameter update no pass is kept."""
        self._replay = None
        self.recording = self.recording and since is not None
        redone: dict[Node, None] = {}        # in topological order
        for node in self.nodes:
            if node.op is not None and (since is None or node is since or any(i in redone for i in node.inputs)):
                node.value = node.op.forward([i.value for i in node.inputs])
                redone[node] = None
        return list(redone)

    @contextmanager
    def replaying(self, passes: list[Grads], last: Node):
        """Within: each reverse pass takes the contributions of the nodes after `last` (topological
        order) from the matching earlier pass, in the order they were made, and computes from `last`
        down.  The caller vouches that those nodes' values, inputs and rules are the earlier ones."""
        kept = self.passes, self.recording
        self._replay, self.recording = (iter(list(passes)), self.nodes.index(last)), False
        try:
            yield
        finally:
            self._replay = None
            self.passes, self.recording = kept

    def __getitem__(self, name: str) -> Node:
        return self.by_name[name]

    def __contains__(self, name: str) -> bool:
        return name in self.by_name

    def consumers(self, node: Node) -> list[Node]:
        return [n for n in self.nodes if node in n.inputs]

    def backward(self, seeds: dict, wanted=None) -> Grads:
        """One reverse pass from the seeded nodes ({node: upstream gradient}).

        `wanted` (nodes) limits the work to what leads to them; by default every
        node the seeds depend on gets its gradient.
        """
        needs = self._needs(wanted)
        grads = Grads(seeds=dict(seeds), wanted=tuple(wanted or ()))
        for node, g in seeds.items():
            grads.of[node] = add_grads(grads.of.get(node), g)
        order = list(reversed(self.nodes))
        earlier, last = self._earlier(grads)
        if earlier is not None:
            self._replay_above(grads, earlier, last)
            order = order[len(self.nodes) - 1 - last:]
        for node in order:
            g = grads.of.get(node)
            if node.op is None or is_zero_grad(g):
                continue
            flags = [needs is None or i in needs for i in node.inputs]
            if not any(flags):
                continue
            parts = node.op.vjp([i.value for i in node.inputs], node.value, g, flags)
            for inp, part, flag in zip(node.inputs, parts, flags):
                if not flag or is_zero_grad(part):
                    continue
                self._contribute(grads, inp, node, part)
        if self.recording:
            self.passes.append(grads)
        return grads

    @staticmethod
    def _contribute(grads: Grads, inp: Node, consumer: Node, part) -> None:
        grads.of[inp] = add_grads(grads.of.get(inp), part)
        grads.parts.setdefault(inp, []).append((consumer, part))

    def _earlier(self, grads: Grads):
        """(the earlier pass this one replays, index of the last node to redo), or (None, None)."""
        if self._replay is None:
            return None, None
        passes, last = self._replay
        earlier = next(passes, None)
        if earlier is None or earlier.wanted != grads.wanted or earlier.seeds.keys() != grads.seeds.keys() \
                or not all(_same_seed(earlier.seeds[n], g) for n, g in grads.seeds.items()):
            self._replay = None         # not the same pass: compute it all (and the rest too)
            return None, None
        return earlier, last

    def _replay_above(self, grads: Grads, earlier: Grads, last: int) -> None:
        """The contributions of the nodes after index `last`, as the earlier pass made them."""
        made: dict = {}
        for inp, parts in earlier.parts.items():
            for consumer, part in parts:
                made.setdefault(consumer, []).append((inp, part))
        for consumer in reversed(self.nodes[last + 1:]):
            for inp, part in made.get(consumer, ()):
                self._contribute(grads, inp, consumer, part)

    def _needs(self, wanted) -> set | None:
        """Nodes through which a gradient must flow to reach a wanted node: those with one below them."""
        if wanted is None:
            return None
        reach = set(wanted)
        for node in self.nodes:            # topological order: inputs come first
            if any(i in reach for i in node.inputs):
                reach.add(node)
        return reach

