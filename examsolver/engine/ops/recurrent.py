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

from typing import Literal

import numpy as np

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


def as_sequence(x: np.ndarray, d: int, name: str) -> np.ndarray:
    """A sequence as T × d (a flat list is a sequence of scalars when d = 1)."""
    if x.ndim == 1 and d == 1:
        x = x.reshape(-1, 1)
    if x.ndim != 2 or x.shape[1] != d:
        raise EngineError(f"{name}: the input sequence has shape {x.shape}, expected T × {d} (one row per step)")
    if x.shape[0] > 200:
        raise EngineError(f"{name}: sequences longer than 200 steps are not unrolled by hand")
    return x


class Recurrent(Layer):
    """What the cells share: sizes, the sequence view, parameter counting."""

    gates = 1                      # stacked blocks in the weight matrices (4 for LSTM, 3 for GRU)
    size_symbols = {"input_size": "d_x", "hidden_size": "d_h", "output_size": "d_y"}
    count_options = ()
    has_cell_state = False
    gated = False                  # LSTM and GRU: gates from stacked weight blocks

    @property
    def hidden(self) -> int:
        return self.weights["W_hh"].shape[1]

    @property
    def input_size(self) -> int:
        return self._input_matrix().shape[1]

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
        """Backpropagation through time: the reverse pass of the unrolled equations, seeded at every h(t)."""
        graph, steps = self.unrolled(as_sequence(x, self.input_size, self.name))
        grads = graph.backward({s["h"]: g for s, g in zip(steps, gy)})
        gx = np.stack([grads.get(graph[f"x{t}"], zeros((self.input_size,))) for t in range(1, len(steps) + 1)])
        return gx.reshape(x.shape), {key: grads.get(graph[key], zeros(w.shape)) for key, w in self.weights.items()}

    # ----- the cell as a graph: its equations, unrolled over time -----
    def build(self, graph, xs) -> list[dict]:
        """Parameter and initial-state leaves, then every step's nodes from the cell's equations.

        Returns per step {name: node} (a, h for the plain RNN; the gates, c and h for LSTM and
        GRU), named `<name><t>` in the graph; leaves are the weights' keys, h0 (and c0), x1 … xT.
        """
        from examsolver.mathnodes import Sym

        params = {key: graph.leaf(key, value, role="param", sym=Sym(*_split(key), bold=True))
                  for key, value in self.weights.items()}
        state = {k: graph.leaf(f"{k}0", v, role="state", sym=Sym(k, sup="(0)", bold=True))
                 for k, v in self.initial().items()}
        self.prepare(graph, params)
        out = []
        for t, x in enumerate(xs, 1):
            x_node = graph.leaf(f"x{t}", x, role="input", sym=Sym("x", sup=f"({t})", bold=True))
            nodes = self.equations(graph, params, state, x_node, t)
            for name, node in nodes.items():
                node.sym = Sym(name, sup=f"({t})", bold=True)
            out.append(nodes)
            state = {k: nodes[k] for k in state}
        return out

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
        module = self.torch_module(weights)
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

    def torch_step(self, x: str, state: dict, weights: dict, t: int) -> list[tuple[str, str]]:
        """One time step in PyTorch on one example: (variable, expression) per equation, the
        variables named as the results (i2, c2, h2); state names h(t−1) (and c(t−1))."""
        raise NotImplementedError

    @classmethod
    def io_shapes(cls, sizes: dict) -> dict:
        shapes = {"x(t)": (sizes["input_size"],), "h(t)": (sizes["hidden_size"],)}
        if cls.has_cell_state:
            shapes["c(t)"] = (sizes["hidden_size"],)
        if sizes.get("output_size") is not None:
            shapes["o(t)"] = (sizes["output_size"],)
        return shapes


class RNNParams(NoParams):
    W_hh: Tensor
    W_xh: Tensor
    b_h: Tensor | None = None
    h0: Tensor | None = None
    activation: Literal["tanh", "relu", "identity"] = "tanh"


@layer
class RNN(Recurrent):
    """h(t) = f(W_hh h(t−1) + W_xh x(t) + b_h)."""

    kind = "rnn"
    Params = RNNParams

    def init_weights(self) -> dict:
        W_hh = self.p.W_hh
        if W_hh.ndim != 2 or W_hh.shape[0] != W_hh.shape[1]:
            raise EngineError(f"{self.name}: W_hh must be a square matrix, got shape {W_hh.shape}")
        H = W_hh.shape[0]
        W_xh = _matrix_rows(self.p.W_xh, H, "W_xh", self.name)
        if W_xh.shape[0] != H:
            raise EngineError(f"{self.name}: W_xh has {W_xh.shape[0]} rows, W_hh has {H}")
        b = _vector(self.p.b_h, H, "b_h", self.name) if self.p.b_h is not None else zeros((H,))
        self.h0 = _vector(self.p.h0, H, "h0", self.name) if self.p.h0 is not None else zeros((H,))
        self.f = elementwise(self.p.activation, self.conventions)
        return {"W_hh": W_hh, "W_xh": W_xh, "b_h": b}

    def _input_matrix(self):
        return self.weights["W_xh"]

    def equations(self, graph, params, state, x, t):
        """a(t) = W_hh h(t−1) + W_xh x(t) + b_h;  h(t) = f(a(t))."""
        hh = graph.apply(E.Affine(), [state["h"], params["W_hh"]], f"_{t}.hh")
        xh = graph.apply(E.Affine(), [x, params["W_xh"], params["b_h"]], f"_{t}.xh")
        a = graph.apply(E.Sum(), [hh, xh], f"a{t}")
        return {"a": a, "h": graph.apply(E.Activation(self.f), [a], f"h{t}")}

    def activation_conventions(self) -> list:
        return self.f.conventions_used()

    def local_derivative(self, a, h):
        """f′(a(t)) entry by entry."""
        return np.array([self.f.df(av, hv) for av, hv in zip(a, h)], dtype=object)

    def conventions_used(self):
        return [Phrase("convention.rnn", {"activation": self.p.activation})]

    def torch_module(self, weights):
        """nn.RNN knows tanh and relu (its ReLU′(0) = 0); its second bias is set to zero."""
        if self.p.activation == "identity" or self.f.torch("a", {}) != f"torch.{self.p.activation}(a)":
            return None
        params = (f"{{'weight_ih_l0': {weights['W_xh']}, 'weight_hh_l0': {weights['W_hh']}, "
                  f"'bias_ih_l0': {weights['b_h']}, 'bias_hh_l0': torch.zeros({self.hidden})}}")
        return (f"torch.nn.RNN({self.input_size}, {self.hidden}, nonlinearity={self.p.activation!r}, "
                f"batch_first=True)", params)

    def torch_step(self, x, state, weights, t):
        a = f"{state['h']} @ {weights['W_hh']}.T + {x} @ {weights['W_xh']}.T + {weights['b_h']}"
        return [(f"a{t}", a), (f"h{t}", self.f.torch(f"a{t}", {}))]

    # parameter count
    @classmethod
    def param_shapes(cls, sizes: dict) -> dict[str, tuple[int, ...]]:
        d, h = sizes["input_size"], sizes["hidden_size"]
        shapes = {"W_xh": (h, d), "W_hh": (h, h), "b_h": (h,)}
        if sizes.get("output_size") is not None:
            shapes.update({"W_hy": (sizes["output_size"], h), "b_y": (sizes["output_size"],)})
        return shapes


class GatedParams(NoParams):
    W_ih: Tensor
    W_hh: Tensor
    b_ih: Tensor | None = None
    b_hh: Tensor | None = None
    h0: Tensor | None = None


class LSTMParams(GatedParams):
    c0: Tensor | None = None


class Gated(Recurrent):
    """LSTM and GRU: stacked gate blocks, PyTorch's layout (W_ih is gates·H × d)."""

    gate_names: tuple = ()
    count_options = ("biases",)
    gated = True

    def init_weights(self) -> dict:
        g = self.gates
        W_hh = self.p.W_hh
        if W_hh.ndim != 2 or W_hh.shape[0] != g * W_hh.shape[1]:
            raise EngineError(f"{self.name}: W_hh must be {g}H × H (gates {', '.join(self.gate_names)} stacked), "
                              f"got shape {W_hh.shape}")
        H = W_hh.shape[1]
        W_ih = _matrix_rows(self.p.W_ih, g * H, "W_ih", self.name)
        if W_ih.shape[0] != g * H:
            raise EngineError(f"{self.name}: W_ih has {W_ih.shape[0]} rows, expected {g}·{H} = {g * H}")
        weights = {"W_ih": W_ih, "W_hh": W_hh}
        for key in ("b_ih", "b_hh"):
            value = getattr(self.p, key)
            weights[key] = _vector(value, g * H, key, self.name) if value is not None else zeros((g * H,))
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
        for key in ("W_ih", "W_hh", "b_ih", "b_hh"):
            for k, gate in enumerate(self.gate_names):
                self.blocks[(key, gate)] = graph.apply(E.Rows(k, H, gate), [params[key]], f"{key}[{gate}]")

    def pre_node(self, graph, gate: str, x, h, t: int, reset=None):
        """W_i· x + b_i· + W_h· h + b_h·, with GRU's r ⊙ (W_hn h + b_hn) when reset is given."""
        b = self.blocks
        xs = graph.apply(E.Affine(), [x, b[("W_ih", gate)], b[("b_ih", gate)]], f"_{t}.{gate}x")
        hs = graph.apply(E.Affine(), [h, b[("W_hh", gate)], b[("b_hh", gate)]], f"_{t}.{gate}h")
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
        hidden = f"{h} @ {weights['W_hh']}{rows}.T + {weights['b_hh']}{rows}"
        if reset is not None:
            hidden = f"{reset} * ({hidden})"
        fn = self.tanh if name in ("g", "n") else self.sigmoid
        return fn.torch(f"{x} @ {weights['W_ih']}{rows}.T + {weights['b_ih']}{rows} + {hidden}", {})

    def gate(self, graph, name: str, x, h, t: int, reset=None):
        fn = self.tanh if name in ("g", "n") else self.sigmoid
        return graph.apply(E.Activation(fn), [self.pre_node(graph, name, x, h, t, reset)], f"{name}{t}")

    @classmethod
    def param_shapes(cls, sizes: dict) -> dict[str, tuple[int, ...]]:
        """PyTorch's two bias vectors (`biases: two`, the default) or one per gate (`biases: one`)."""
        d, h, g = sizes["input_size"], sizes["hidden_size"], cls.gates
        biases = sizes.get("biases", "two")
        if biases not in ("one", "two"):
            raise EngineError(f"{cls.kind}: biases must be 'one' (one bias per gate) or 'two' (PyTorch), got {biases!r}")
        shapes = {"W_hh": (g * h, h), "W_ih": (g * h, d)}      # hidden first, as the slides write 4·(3·3 + …)
        shapes.update({"b": (g * h,)} if biases == "one" else {"b_ih": (g * h,), "b_hh": (g * h,)})
        return shapes


@layer
class LSTM(Gated):
    kind = "lstm"
    Params = LSTMParams
    gates = 4
    gate_names = ("i", "f", "g", "o")
    has_cell_state = True

    def init_weights(self) -> dict:
        weights = super().init_weights()
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

    def conventions_used(self):
        return [Phrase("convention.lstm", {})]

    def torch_step(self, x, state, weights, t):
        lines = [(f"{name}{t}", self.torch_gate(name, x, state["h"], weights)) for name in self.gate_names]
        lines.append((f"c{t}", f"f{t} * {state['c']} + i{t} * g{t}"))
        return lines + [(f"h{t}", f"o{t} * {self.tanh.torch(f'c{t}', {})}")]


@layer
class GRU(Gated):
    kind = "gru"
    Params = GatedParams
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

    def conventions_used(self):
        return [Phrase("convention.gru", {})]

    def torch_step(self, x, state, weights, t):
        h = state["h"]
        lines = [(f"{name}{t}", self.torch_gate(name, x, h, weights)) for name in ("r", "z")]
        lines.append((f"n{t}", self.torch_gate("n", x, h, weights, reset=f"r{t}")))
        return lines + [(f"h{t}", f"(1 - z{t}) * n{t} + z{t} * {h}")]
