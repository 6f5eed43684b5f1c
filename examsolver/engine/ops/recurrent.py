"""Recurrent cells unrolled over a sequence: plain RNN, LSTM and GRU.

Conventions (stated in every solution that uses them):
- plain RNN: h(t) = f(W_hh h(t−1) + W_xh x(t) + b_h), f ∈ {tanh, relu, identity};
- LSTM and GRU follow PyTorch's equations and its stacked weight layout:
  LSTM gates in the order i, f, g, o (W_ih is 4H × d); GRU gates r, z, n with the
  reset gate applied after the matrix product, n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)).

Each cell keeps its one-step forward, its backward through time (plain RNN) and
its parameter shapes side by side.  A cell is also a layer of a sequential
model: it maps a sequence x (T × d) to the sequence of its hidden states (T × H).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from examsolver.engine.ops import elementary as E
from examsolver.engine.ops.base import LAYERS, Layer, NoParams, layer
from examsolver.engine.scalar import Exact
from examsolver.engine.tensor import to_float, zeros
from examsolver.errors import EngineError
from examsolver.solution import Phrase
from examsolver.spec.model import Tensor

ACTIVATIONS = ("tanh", "relu", "identity")


class _Identity:
    """f(v) = v, for RNNs without a nonlinearity."""

    fn_name = None

    def conventions_used(self) -> list:
        return []

    def f(self, v):
        return v

    def df(self, x, y):
        return Exact(1)

    def torch(self, x, weights):
        return x


def elementwise(kind: str, conventions):
    """An activation from engine/ops (its f and f′), or the identity."""
    if kind == "identity":
        return _Identity()
    return LAYERS[kind](NoParams(), 0, conventions)


def _split(key: str) -> tuple[str, str]:
    """W_hh → (W, hh): the symbol of a weight key."""
    base, _, sub = key.partition("_")
    return base, sub


def _matrix_rows(value, rows: int, what: str, name: str) -> np.ndarray:
    """A weight with `rows` rows; a flat list of rows·d entries (d = 1: one column) is read row by row."""
    if value.ndim == 2:
        return value
    if value.ndim > 2 or value.size == 0 or value.size % rows:
        raise EngineError(f"{name}: {what} has shape {value.shape}, expected a matrix with {rows} rows")
    return value.reshape(rows, -1)


def _vector(value, size: int, what: str, name: str) -> np.ndarray:
    value = value.reshape(-1) if value.ndim == 0 else value
    if value.shape != (size,):
        raise EngineError(f"{name}: {what} has shape {value.shape}, expected ({size},)")
    return value


def _matrix(value, shape: tuple, what: str, name: str) -> np.ndarray:
    if value.ndim == 1 and shape[0] == 1:
        value = value.reshape(1, -1)
    if value.ndim == 1 and shape[1] == 1:
        value = value.reshape(-1, 1)
    if value.shape != shape:
        raise EngineError(f"{name}: {what} has shape {value.shape}, expected {shape}")
    return value


def _present(nodes: dict, *keys) -> list:
    """The first of keys that the dict holds, as a list (a bias node, or none without biases)."""
    return [next(nodes[k] for k in keys if k in nodes)] if any(k in nodes for k in keys) else []


def _bias_keys(unit) -> list:
    return [k for k in unit.weights if k.startswith("b")]


def as_sequence(x: np.ndarray, d: int, name: str) -> np.ndarray:
    """A sequence as T × d (a flat list is a sequence of scalars when d = 1)."""
    if x.ndim == 1 and d == 1:
        x = x.reshape(-1, 1)
    if x.ndim != 2 or x.shape[1] != d:
        raise EngineError(f"{name}: the input sequence has shape {x.shape}, expected T × {d} (one row per step)")
    if x.shape[0] > 200:
        raise EngineError(f"{name}: sequences longer than 200 steps are not unrolled by hand")
    return x


class Scoped:
    """A graph seen by one unit of a stack: the names it adds get the unit's prefix (layer2_reverse.h3)."""

    def __init__(self, graph, prefix: str):
        self.graph, self.prefix = graph, prefix

    def leaf(self, name: str, value, role: str = "param", sym=None):
        return self.graph.leaf(self.prefix + name, value, role, sym)

    def apply(self, op, inputs, name: str, sym=None):
        return self.graph.apply(op, inputs, self.prefix + name, sym)


def unit_names(num_layers: int, bidirectional: bool) -> list[tuple[str, int, bool]]:
    """(name, layer, reverse) of every unit in PyTorch's order: layer1, layer1_reverse, layer2, …
    (PyTorch's l0, l0_reverse, l1, …: layers are counted from 1 here, as in the course)."""
    return [(f"layer{k}" + ("_reverse" if reverse else ""), k, reverse)
            for k in range(1, num_layers + 1) for reverse in ((False, True) if bidirectional else (False,))]


def unit_tag(name: str) -> str:
    """What the formulas write for a unit: layer1 → 1, layer2_reverse → 2r (h_2r, W^[2r])."""
    return name.removeprefix("layer").replace("_reverse", "r")


class Recurrent(Layer):
    """What the cells share: sizes, the sequence view, stacking, parameter counting.

    A stacked or bidirectional cell (num_layers > 1 or bidirectional) holds one single-direction
    cell per layer and direction (`units`); its weights are theirs under `<unit>.` (layer1.W_ih),
    and its output at step t is the top layer's hidden state, both directions' stacked as in
    PyTorch: h(t) = [h→(t); h←(t)] (a lower bidirectional layer k gives y_k(t) to the one above)."""

    gates = 1                      # stacked blocks in the weight matrices (4 for LSTM, 3 for GRU)
    size_symbols = {"input_size": "d_x", "hidden_size": "d_h", "output_size": "d_y"}
    count_options = ("num_layers", "bidirectional", "bias", "biases")
    has_cell_state = False
    gated = False                  # LSTM and GRU: gates from stacked weight blocks
    tag = ""                       # a unit of a stack: its layer and direction (1, 1r), written as a subscript
    reverse = False                # a unit reading the sequence backwards
    units: list = []               # a stack's cells; empty for a single cell

    def init_weights(self) -> dict:
        if self.conventions.weights == "in_out":       # its steps write W x with W as PyTorch holds it
            raise EngineError(f"{self.name}: conventions: {{weights: in_out}} is not implemented for recurrent "
                              f"cells: give W_hh and {self.layout_weights[0]} in PyTorch's layout (output × input) "
                              f"and the problem without that convention")
        if self.p.layers is None:
            return self.unit_weights()
        dirs = 2 if self.p.bidirectional else 1
        self.units = []
        for (name, k, reverse), given in zip(unit_names(self.p.num_layers, self.p.bidirectional), self.p.layers):
            fields = {key: getattr(given, key) for key in type(given).model_fields}
            params = self.p.model_copy(update={**fields, "layers": None, "num_layers": 1, "bidirectional": False,
                                               "name": f"{self.name}.{name}" if self.p.name else name})
            unit = type(self)(params, self.position, self.conventions)
            unit.tag, unit.reverse = unit_tag(name), reverse
            expected = None if k == 1 else dirs * self.units[0].hidden
            if self.units and unit.hidden != self.units[0].hidden:
                raise EngineError(f"{unit.name}: hidden size {unit.hidden}, layer1 has {self.units[0].hidden}")
            if expected is not None and unit.input_size != expected:
                raise EngineError(f"{unit.name}: its input is the layer below's output of {expected} entries "
                                  f"({dirs} × {self.units[0].hidden}), W_ih has {unit.input_size} columns")
            if k == 1 and self.units and unit.input_size != self.units[0].input_size:
                raise EngineError(f"{unit.name}: {unit.input_size} input columns, layer1 has {self.units[0].input_size}")
            if self.units and _bias_keys(unit) != _bias_keys(self.units[0]):
                raise EngineError(f"{unit.name}: biases {', '.join(_bias_keys(unit)) or 'none'}, layer1 has "
                                  f"{', '.join(_bias_keys(self.units[0])) or 'none'} (PyTorch's one `bias` for all)")
            self.units.append(unit)
        return {f"{u.short}.{key}": w for u in self.units for key, w in u.weights.items()}

    def unit_weights(self) -> dict:
        raise NotImplementedError

    @property
    def short(self) -> str:
        """The unit's name without the layer's (layer1_reverse)."""
        return self.name.rpartition(".")[2]

    single_bias: ClassVar[str] = ""     # the one-bias form's key (b_h, b), beside PyTorch's pair b_ih, b_hh
    zero_biases: tuple = ()             # biases `bias: true` added at zero (stated in the solution)

    def _biases(self, given: dict, size: int) -> dict:
        """The bias vectors: those given and no others (a bias not given is no bias, as PyTorch's
        bias=False); `bias: true` adds the cell's usual ones (default_biases) at zero where not given,
        `bias: false` takes none.  One of PyTorch's pair alone is refused: say which form is meant."""
        given = {k: _vector(v, size, k, self.name) for k, v in given.items() if v is not None}
        if self.p.bias is False:
            if given:
                raise EngineError(f"{self.name}: bias: false takes no {', '.join(given)}")
            return {}
        if self.single_bias in given and len(given) > 1:
            raise EngineError(f"{self.name}: one bias {self.single_bias} or PyTorch's two, b_ih and b_hh, not both")
        pair = ("b_ih", "b_hh")
        partial = len(given) == 1 and next(iter(given)) in pair
        if not self.p.bias:
            if partial:
                raise EngineError(f"{self.name}: {next(iter(given))} without its pair: give both b_ih and b_hh "
                                  f"(PyTorch's two), {self.single_bias} alone (one bias), or bias: true (the "
                                  f"missing one zero)")
            return given
        usual = pair if partial or not given and self.default_biases == "two" else \
            (self.single_bias,) if not given else tuple(given)
        self.zero_biases = tuple(k for k in usual if k not in given)
        return {k: given[k] if k in given else zeros((size,)) for k in usual}

    @property
    def hidden(self) -> int:
        return self.units[0].hidden if self.units else self.weights["W_hh"].shape[1]

    @property
    def out_size(self) -> int:
        """Entries of the output at one step (both directions' states of a bidirectional cell)."""
        return self.hidden * (2 if self.p.bidirectional else 1)

    @property
    def input_size(self) -> int:
        return self.units[0].input_size if self.units else self._input_matrix().shape[1]

    def _input_matrix(self):
        raise NotImplementedError

    def initial(self) -> dict:
        """The state before the first step: {'h': h0} (+ 'c' for LSTM)."""
        return {"h": self.h0}

    def unroll(self, xs: np.ndarray) -> list:
        """Every step's values (dicts of named vectors), step 1 … T."""
        return [{k: node.value for k, node in step.items()} for step in self.unrolled(xs)[1]]

    def unrolled(self, xs: np.ndarray):
        """(graph, per-step nodes) of the cell's equations over the sequence."""
        from examsolver.engine.graph import Graph

        graph = Graph()
        return graph, self.build(graph, xs)

    def vjp_one(self, x, y, gy):
        """Backpropagation through time: the reverse pass of the unrolled equations, seeded at every output."""
        graph, steps = self.unrolled(as_sequence(x, self.input_size, self.name))
        grads = graph.backward({s["h"]: g for s, g in zip(steps, gy)})
        gx = np.stack([grads.get(graph[f"x{t}"], zeros((self.input_size,))) for t in range(1, len(steps) + 1)])
        return gx.reshape(x.shape), {key: grads.get(graph[key], zeros(w.shape)) for key, w in self.weights.items()}

    # ----- the cell as a graph: its equations, unrolled over time -----
    def build(self, graph, xs) -> list[dict]:
        """The input leaves x1 … xT, then the cell's (or the stack's) nodes over them.

        Returns per step {name: node} (a, h for the plain RNN; the gates, c and h for LSTM and
        GRU; for a stack only its output, under 'h'), named `<name><t>` in the graph (`<unit>.<name><t>`
        in a stack); leaves are the weights' keys, h0 (and c0), x1 … xT.
        """
        from examsolver.mathnodes import Sym

        x_nodes = [graph.leaf(f"x{t}", x, role="input", sym=Sym("x", sup=f"({t})", bold=True))
                   for t, x in enumerate(xs, 1)]
        if not self.units:
            return self.run(graph, x_nodes)
        return [{"h": node} for node in self.run_stack(graph, x_nodes)]

    def run_stack(self, graph, inputs: list) -> list:
        """Layer by layer; a bidirectional layer's output at t stacks both directions' h(t)."""
        from examsolver.engine.ops.elementary import Concat
        from examsolver.mathnodes import Sym

        self.unit_steps, self.unit_inputs = {}, {}
        top = self.p.num_layers
        for k in range(1, top + 1):
            layer = [u for u in self.units if u.tag.rstrip("r") == str(k)]
            for unit in layer:
                unit.weights.update({key: self.weights[f"{unit.short}.{key}"] for key in unit.weights})
                self.unit_inputs[unit.short] = inputs
                self.unit_steps[unit.short] = unit.run(Scoped(graph, unit.short + "."), inputs)
            states = [[s["h"] for s in self.unit_steps[u.short]] for u in layer]
            if len(layer) == 1:
                inputs = states[0]
                continue
            inputs = [graph.apply(Concat(), parts, f"h{t}" if k == top else f"layer{k}.y{t}",
                                  sym=Sym("h" if k == top else "y", "" if k == top else str(k), sup=f"({t})", bold=True))
                      for t, parts in enumerate(zip(*states), 1)]
        return inputs

    def state_sym(self, name: str, t):
        from examsolver.mathnodes import Sym

        return Sym(name, self.tag, sup=f"({t})", bold=True)

    def param_sym(self, key: str):
        """W_hh, or W_hh^[2r] in a stack (its layer and direction, as Ng's W^[l])."""
        from examsolver.mathnodes import Sym

        base, sub = _split(key)
        return Sym(base, sub, sup=f"[{self.tag}]" if self.tag else "", bold=True)

    def order(self, T: int) -> list[int]:
        """The steps in the order the unit reads them."""
        return list(range(T, 0, -1)) if self.reverse else list(range(1, T + 1))

    def previous(self, t: int) -> int:
        """The step whose state step t reads: t − 1, or t + 1 reading backwards (the initial state is h(T+1))."""
        return t + 1 if self.reverse else t - 1

    def run(self, graph, x_nodes: list) -> list[dict]:
        """One unit: parameter and initial-state leaves, then every step's nodes from the cell's equations,
        returned in the order of the steps (a reverse unit computes them from the last)."""
        T = len(x_nodes)
        params = {key: graph.leaf(key, value, role="param", sym=self.param_sym(key))
                  for key, value in self.weights.items()}
        first = T + 1 if self.reverse else 0
        state = {k: graph.leaf(f"{k}0", v, role="state", sym=self.state_sym(k, first))
                 for k, v in self.initial().items()}
        self.prepare(graph, params)
        out = {}
        for t in self.order(T):
            nodes = self.equations(graph, params, state, x_nodes[t - 1], t)
            for name, node in nodes.items():
                node.sym = self.state_sym(name, t)
            out[t] = nodes
            state = {k: nodes[k] for k in state}
        return [out[t] for t in range(1, T + 1)]

    def activation_conventions(self) -> list:
        """Choices its activation's derivative makes (ReLU′(0)); gated cells use σ and tanh only."""
        return []

    def prepare(self, graph, params: dict) -> None:
        """Nodes shared by every step (the gates' blocks of the stacked weights)."""

    def equations(self, graph, params: dict, state: dict, x, t: int) -> dict:
        raise NotImplementedError

    def check_input(self, x):
        as_sequence(x, self.input_size, self.name)

    def forward_one(self, x):
        steps = self.unroll(as_sequence(x, self.input_size, self.name))
        return np.stack([s["h"] for s in steps])

    def output_symbol(self, x_sym, counter, y_example):
        from examsolver.mathnodes import Sym

        return Sym("H", bold=True), counter

    # ----- PyTorch reference: its own module (gate order, two biases), and the equations step by step -----
    def torch(self, x, weights):
        """The hidden states (N, T, H) of PyTorch's module with these weights, on a batch of sequences;
        weights may also name the script's initial states (h0, c0), else their values are written."""
        module = self.torch_module(weights) if not (self.units or self.bias_form) else None
        if module is None:
            return None
        H = self.hidden
        states = []
        for key, value in self.initial().items():
            given = weights.get(f"{key}0") or f"torch.tensor({to_float(value).tolist()!r})"
            states.append(f"{given}.reshape(1, 1, {H}).repeat(1, {x}.shape[0], 1)")
        state = states[0] if len(states) == 1 else f"({', '.join(states)})"
        return (f"torch.func.functional_call({module[0]}, {module[1]}, "
                f"({x}.reshape({x}.shape[0], {x}.shape[1], {self.input_size}), {state}))[0]")

    def torch_module(self, weights) -> tuple[str, str] | None:
        """(PyTorch's module, its parameters as a dict of the script's variables); None: none fits."""
        return None

    torch_class = ""         # PyTorch's module: torch.nn.<torch_class>(…, <torch_options()>)

    def torch_options(self) -> str:
        return ""

    def torch_step(self, x: str, state: dict, weights: dict, t: int) -> list[tuple[str, str]]:
        """One time step in PyTorch on one example: (variable, expression) per equation, the
        variables named as the results (i2, c2, h2); state names h(t−1) (and c(t−1))."""
        raise NotImplementedError

    def conventions_used(self):
        phrases = [Phrase(f"convention.{self.kind}", self.convention_args())]
        if self.units:
            phrases.append(Phrase("convention.rnn_units", {}))
        if self.p.num_layers > 1:
            phrases.append(Phrase("convention.stacked_rnn", {"layers": self.p.num_layers}))
        if self.p.bidirectional:
            phrases.append(Phrase("convention.bidirectional_rnn", {}))
        first = (self.units or [self])[0]
        if first.bias_form:
            phrases.append(Phrase(f"convention.{first.bias_form}", {}))
        if first.zero_biases:
            phrases.append(Phrase("convention.zero_biases", {"layer": self.name, "names": ", ".join(first.zero_biases)}))
        return phrases

    def convention_args(self) -> dict:
        return {}

    bias_form = ""          # a phrase key when the biases differ from the cell's usual form

    # ----- counting ----------------------------------------------------------------
    @classmethod
    def param_shapes(cls, sizes: dict) -> dict[str, tuple[int, ...]]:
        """PyTorch's parameters: per layer and direction the unit's own, the layers above reading
        num_directions × hidden inputs; the output layer (plain RNN's output_size) once on top."""
        layers, bidirectional = sizes.get("num_layers", 1), sizes.get("bidirectional", False)
        if not isinstance(layers, int) or isinstance(layers, bool) or not 1 <= layers <= 100:
            raise EngineError(f"{cls.kind}: num_layers must be a whole number from 1 to 100, got {layers!r}")
        for key in ("bidirectional", "bias"):
            if not isinstance(sizes.get(key, True), bool):
                raise EngineError(f"{cls.kind}: {key} must be true or false, got {sizes.get(key)!r}")
        bias = sizes.get("bias", True)
        biases = sizes.get("biases", cls.default_biases)
        if biases not in ("one", "two"):
            raise EngineError(f"{cls.kind}: biases must be 'one' (one bias vector) or 'two' (PyTorch's b_ih "
                              f"and b_hh), got {biases!r}")
        d, h = sizes["input_size"], sizes["hidden_size"]
        width = 2 * h if bidirectional and h is not None else h      # what a layer gives the one above
        units = unit_names(layers, bidirectional)
        shapes = {}
        for name, k, _ in units:
            inputs = d if k == 1 else width
            unit = cls.unit_shapes(inputs, h, biases if bias else None)
            shapes.update(unit if len(units) == 1 else {f"{name}.{key}": s for key, s in unit.items()})
        output = sizes.get("output_size")
        if output is not None:
            shapes.update({"W_hy": (output, width), "b_y": (output,)})
        return shapes

    default_biases = "two"
    io_role = "counting.role.io_per_step"

    @classmethod
    def io_shapes(cls, sizes: dict) -> dict:
        shapes = {"x(t)": (sizes["input_size"],), "h(t)": (sizes["hidden_size"],)}
        if cls.has_cell_state:
            shapes["c(t)"] = (sizes["hidden_size"],)
        if sizes.get("bidirectional"):
            shapes["y(t)"] = (2 * sizes["hidden_size"],)
        if sizes.get("output_size") is not None:
            shapes["o(t)"] = (sizes["output_size"],)
        return shapes


class Unit(BaseModel):
    """One layer and direction of a stacked or bidirectional cell: its weights and initial state."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, defer_build=True)


class Stacking(NoParams):
    """PyTorch's num_layers, bidirectional and bias; a stack takes its units' weights in `layers`."""

    num_layers: int = Field(1, ge=1, le=8)
    bidirectional: bool = False
    bias: bool | None = None            # None: the biases given; true: PyTorch's, zero where not given

    @model_validator(mode="after")
    def _one_form(self):
        units = self.num_layers * (2 if self.bidirectional else 1)
        weights = [k for k in self.unit_fields() if getattr(self, k) is not None]
        if self.layers is None:
            if units > 1:
                raise ValueError(f"a stacked or bidirectional cell takes its weights in `layers:`, one entry per "
                                 f"layer and direction in PyTorch's order ({units} entries)")
            missing = [k for k in self.required if k not in weights]
            if missing:
                raise ValueError(f"missing weight(s): {', '.join(missing)}")
            return self
        if weights:
            raise ValueError(f"weights are given either in `layers:` or beside them, not both ({', '.join(weights)})")
        if len(self.layers) != units:
            raise ValueError(f"`layers:` has {len(self.layers)} entries, num_layers × directions = {units}")
        for k, unit in enumerate(self.layers):
            missing = [key for key in self.required if getattr(unit, key) is None]
            if missing:
                raise ValueError(f"layers entry {k + 1}: missing weight(s): {', '.join(missing)}")
        return self

    @classmethod
    def unit_fields(cls) -> list:
        return [k for k in cls.model_fields if k in cls.unit_model.model_fields]


class RNNUnit(Unit):
    W_hh: Tensor | None = None
    W_xh: Tensor | None = None
    b_h: Tensor | None = None             # one bias (the slides) …
    b_ih: Tensor | None = None            # … or two, as PyTorch
    b_hh: Tensor | None = None
    h0: Tensor | None = None


class RNNParams(Stacking, RNNUnit):
    unit_model: ClassVar[type] = RNNUnit
    required: ClassVar[tuple] = ("W_hh", "W_xh")
    activation: Literal["tanh", "relu", "identity"] = "tanh"
    layers: list[RNNUnit] | None = Field(None, max_length=16)


@layer
class RNN(Recurrent):
    """h(t) = f(W_hh h(t−1) + W_xh x(t) + b_h)."""

    kind = "rnn"
    Params = RNNParams
    torch_class = "RNN"

    def torch_options(self) -> str:
        return f", nonlinearity={self.p.activation!r}"

    default_biases = "one"
    single_bias = "b_h"
    layout_weights = ("W_xh", "W_hh", "W_hy")

    def unit_weights(self) -> dict:
        W_hh = self.p.W_hh
        if W_hh.ndim != 2 or W_hh.shape[0] != W_hh.shape[1]:
            raise EngineError(f"{self.name}: W_hh must be a square matrix, got shape {W_hh.shape}")
        H = W_hh.shape[0]
        W_xh = _matrix_rows(self.p.W_xh, H, "W_xh", self.name)
        if W_xh.shape[0] != H:
            raise EngineError(f"{self.name}: W_xh has {W_xh.shape[0]} rows, W_hh has {H}")
        biases = self._biases({"b_h": self.p.b_h, "b_ih": self.p.b_ih, "b_hh": self.p.b_hh}, H)
        self.bias_form = "rnn_two_biases" if "b_ih" in biases else "" if biases else "no_bias"
        self.h0 = _vector(self.p.h0, H, "h0", self.name) if self.p.h0 is not None else zeros((H,))
        self.f = elementwise(self.p.activation, self.conventions)
        return {"W_hh": W_hh, "W_xh": W_xh, **biases}

    def _input_matrix(self):
        return self.weights["W_xh"]

    def equations(self, graph, params, state, x, t):
        """a(t) = W_hh h(t−1) (+ b_hh) + W_xh x(t) + b_h (or b_ih);  h(t) = f(a(t))."""
        hh = graph.apply(E.Affine(), [state["h"], params["W_hh"]] + _present(params, "b_hh"), f"_{t}.hh")
        xh = graph.apply(E.Affine(), [x, params["W_xh"]] + _present(params, "b_h", "b_ih"), f"_{t}.xh")
        a = graph.apply(E.Sum(), [hh, xh], f"a{t}")
        return {"a": a, "h": graph.apply(E.Activation(self.f), [a], f"h{t}")}

    def activation_conventions(self) -> list:
        return (self.units or [self])[0].f.conventions_used()

    def local_derivative(self, a, h):
        """f′(a(t)) entry by entry."""
        return np.array([self.f.df(av, hv) for av, hv in zip(a, h)], dtype=object)

    def convention_args(self):
        return {"activation": self.p.activation}

    def torch_module(self, weights):
        """nn.RNN knows tanh and relu (its ReLU′(0) = 0); its second bias is set to zero."""
        if self.p.activation == "identity" or self.f.torch("a", {}) != f"torch.{self.p.activation}(a)":
            return None
        params = (f"{{'weight_ih_l0': {weights['W_xh']}, 'weight_hh_l0': {weights['W_hh']}, "
                  f"'bias_ih_l0': {weights['b_h']}, 'bias_hh_l0': torch.zeros({self.hidden})}}")
        return (f"torch.nn.RNN({self.input_size}, {self.hidden}, nonlinearity={self.p.activation!r}, "
                f"batch_first=True)", params)

    def torch_step(self, x, state, weights, t):
        biases = "".join(f" + {weights[k]}" for k in ("b_h", "b_ih", "b_hh") if k in self.weights)
        a = f"{state['h']} @ {weights['W_hh']}.T + {x} @ {weights['W_xh']}.T{biases}"
        return [(f"a{t}", a), (f"h{t}", self.f.torch(f"a{t}", {}))]

    # parameter count
    @classmethod
    def unit_shapes(cls, d, h, biases) -> dict:
        """One layer and direction: the slides' one bias b_h or PyTorch's b_ih and b_hh (biases: two)."""
        bias = {"one": {"b_h": (h,)}, "two": {"b_ih": (h,), "b_hh": (h,)}, None: {}}[biases]
        return {"W_xh": (h, d), "W_hh": (h, h), **bias}


class GatedUnit(Unit):
    W_ih: Tensor | None = None
    W_hh: Tensor | None = None
    b_ih: Tensor | None = None            # PyTorch's two biases …
    b_hh: Tensor | None = None
    b: Tensor | None = None               # … or one per gate (b_ih with no b_hh)
    h0: Tensor | None = None


class LSTMUnit(GatedUnit):
    c0: Tensor | None = None


class GatedParams(Stacking, GatedUnit):
    unit_model: ClassVar[type] = GatedUnit
    required: ClassVar[tuple] = ("W_ih", "W_hh")
    layers: list[GatedUnit] | None = Field(None, max_length=16)


class LSTMParams(Stacking, LSTMUnit):
    unit_model: ClassVar[type] = LSTMUnit
    required: ClassVar[tuple] = ("W_ih", "W_hh")
    layers: list[LSTMUnit] | None = Field(None, max_length=16)


class Gated(Recurrent):
    """LSTM and GRU: stacked gate blocks, PyTorch's layout (W_ih is gates·H × d)."""

    gate_names: tuple = ()
    gated = True
    single_bias = "b"
    layout_weights = ("W_ih", "W_hh")

    def unit_weights(self) -> dict:
        g = self.gates
        W_hh = self.p.W_hh
        if W_hh.ndim != 2 or W_hh.shape[0] != g * W_hh.shape[1]:
            raise EngineError(f"{self.name}: W_hh must be {g}H × H (gates {', '.join(self.gate_names)} stacked), "
                              f"got shape {W_hh.shape}")
        H = W_hh.shape[1]
        W_ih = _matrix_rows(self.p.W_ih, g * H, "W_ih", self.name)
        if W_ih.shape[0] != g * H:
            raise EngineError(f"{self.name}: W_ih has {W_ih.shape[0]} rows, expected {g}·{H} = {g * H}")
        biases = self._biases({"b_ih": self.p.b_ih, "b_hh": self.p.b_hh, "b": self.p.b}, g * H)
        self.bias_form = "gated_one_bias" if "b" in biases else "" if biases else "no_bias"
        weights = {"W_ih": W_ih, "W_hh": W_hh, **biases}
        self.h0 = _vector(self.p.h0, H, "h0", self.name) if self.p.h0 is not None else zeros((H,))
        self.sigmoid = elementwise("sigmoid", self.conventions)
        self.tanh = elementwise("tanh", self.conventions)
        return weights

    def _input_matrix(self):
        return self.weights["W_ih"]

    def block(self, key: str, gate: int) -> np.ndarray:
        """The rows of one gate in a stacked weight or bias."""
        H = self.hidden
        return self.weights[key][gate * H:(gate + 1) * H]

    def prepare(self, graph, params):
        """One node per gate for each stacked weight's block of rows (W_ii, W_hf, b_io, …)."""
        H = self.hidden
        self.blocks = {}
        for key in params:
            for k, gate in enumerate(self.gate_names):
                self.blocks[(key, gate)] = graph.apply(E.Rows(k, H, gate), [params[key]], f"{key}[{gate}]")

    def pre_node(self, graph, gate: str, x, h, t: int, reset=None):
        """W_i· x + b_i· + W_h· h + b_h·, with GRU's r ⊙ (W_hn h + b_hn) when reset is given."""
        b = {key: node for (key, g), node in self.blocks.items() if g == gate}
        xs = graph.apply(E.Affine(), [x, b["W_ih"]] + _present(b, "b_ih", "b"), f"_{t}.{gate}x")
        hs = graph.apply(E.Affine(), [h, b["W_hh"]] + _present(b, "b_hh"), f"_{t}.{gate}h")
        if reset is not None:
            hs = graph.apply(E.Hadamard(), [reset, hs], f"_{t}.{gate}rh")
        return graph.apply(E.Sum(), [xs, hs], f"_{t}.{gate}")

    def torch_module(self, weights):
        params = ", ".join(f"'{name}_l0': {weights[key]}" for name, key in (
            ("weight_ih", "W_ih"), ("weight_hh", "W_hh"), ("bias_ih", "b_ih"), ("bias_hh", "b_hh")))
        return f"torch.nn.{self.kind.upper()}({self.input_size}, {self.hidden}, batch_first=True)", f"{{{params}}}"

    def torch_gate(self, name: str, x: str, h: str, weights: dict, reset: str | None = None) -> str:
        """σ or tanh of W_i· x + b_i· + W_h· h + b_h·, each block the gate's rows of the stacked weights."""
        k, H = self.gate_names.index(name), self.hidden
        rows = f"[{k * H}:{(k + 1) * H}]"

        def biases(*keys) -> str:               # the biases the cell has
            return "".join(f" + {weights[key]}{rows}" for key in keys if key in self.weights)

        hidden = f"{h} @ {weights['W_hh']}{rows}.T{biases('b_hh')}"
        if reset is not None:
            hidden = f"{reset} * ({hidden})"
        fn = self.tanh if name in ("g", "n") else self.sigmoid
        return fn.torch(f"{x} @ {weights['W_ih']}{rows}.T{biases('b_ih', 'b')} + {hidden}", {})

    def gate(self, graph, name: str, x, h, t: int, reset=None):
        fn = self.tanh if name in ("g", "n") else self.sigmoid
        return graph.apply(E.Activation(fn), [self.pre_node(graph, name, x, h, t, reset)], f"{name}{t}")

    @classmethod
    def unit_shapes(cls, d, h, biases) -> dict:
        """PyTorch's two bias vectors (`biases: two`, the default) or one per gate (`biases: one`)."""
        g = cls.gates
        shapes = {"W_hh": (g * h, h), "W_ih": (g * h, d)}      # hidden first, as the slides write 4·(3·3 + …)
        shapes.update({"one": {"b": (g * h,)}, "two": {"b_ih": (g * h,), "b_hh": (g * h,)}, None: {}}[biases])
        return shapes


@layer
class LSTM(Gated):
    kind = "lstm"
    Params = LSTMParams
    torch_class = "LSTM"
    gates = 4
    gate_names = ("i", "f", "g", "o")
    has_cell_state = True

    def unit_weights(self) -> dict:
        weights = super().unit_weights()
        H = self.p.W_hh.shape[1]
        self.c0 = _vector(self.p.c0, H, "c0", self.name) if self.p.c0 is not None else zeros((H,))
        return weights

    def initial(self):
        return {"h": self.h0, "c": self.c0}

    def equations(self, graph, params, state, x, t):
        """PyTorch's LSTM: i, f, o = σ(…), g = tanh(…); c = f ⊙ c(t−1) + i ⊙ g; h = o ⊙ tanh(c)."""
        h = state["h"]
        gates = {name: self.gate(graph, name, x, h, t) for name in self.gate_names}
        kept = graph.apply(E.Hadamard(), [gates["f"], state["c"]], f"_{t}.fc")
        new = graph.apply(E.Hadamard(), [gates["i"], gates["g"]], f"_{t}.ig")
        c = graph.apply(E.Sum(), [kept, new], f"c{t}")
        squashed = graph.apply(E.Activation(self.tanh), [c], f"_{t}.tanh_c")
        return {**gates, "c": c, "h": graph.apply(E.Hadamard(), [gates["o"], squashed], f"h{t}")}


    def torch_step(self, x, state, weights, t):
        lines = [(f"{name}{t}", self.torch_gate(name, x, state["h"], weights)) for name in self.gate_names]
        lines.append((f"c{t}", f"f{t} * {state['c']} + i{t} * g{t}"))
        return lines + [(f"h{t}", f"o{t} * {self.tanh.torch(f'c{t}', {})}")]


@layer
class GRU(Gated):
    kind = "gru"
    Params = GatedParams
    torch_class = "GRU"
    gates = 3
    gate_names = ("r", "z", "n")

    def equations(self, graph, params, state, x, t):
        """PyTorch's GRU: r, z = σ(…); n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)); h = (1 − z) ⊙ n + z ⊙ h(t−1)."""
        h = state["h"]
        r = self.gate(graph, "r", x, h, t)
        z = self.gate(graph, "z", x, h, t)
        n = self.gate(graph, "n", x, h, t, reset=r)
        keep = graph.apply(E.OneMinus(), [z], f"_{t}.1-z")
        mixed = graph.apply(E.Hadamard(), [keep, n], f"_{t}.(1-z)*n")
        held = graph.apply(E.Hadamard(), [z, h], f"_{t}.z*h")
        return {"r": r, "z": z, "n": n, "h": graph.apply(E.Sum(), [mixed, held], f"h{t}")}

    def torch_step(self, x, state, weights, t):
        h = state["h"]
        lines = [(f"{name}{t}", self.torch_gate(name, x, h, weights)) for name in ("r", "z")]
        lines.append((f"n{t}", self.torch_gate("n", x, h, weights, reset=f"r{t}")))
        return lines + [(f"h{t}", f"(1 - z{t}) * n{t} + z{t} * {h}")]
