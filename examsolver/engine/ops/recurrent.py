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

from examsolver.engine.ops.base import LAYERS, Layer, NoParams, layer
from examsolver.engine.scalar import Exact
from examsolver.engine.tensor import emap, zeros
from examsolver.errors import EngineError
from examsolver.solution import Phrase
from examsolver.spec.model import Tensor

ACTIVATIONS = ("tanh", "relu", "identity")


class _Identity:
    """f(v) = v, for RNNs without a nonlinearity."""

    fn_name = None

    def f(self, v):
        return v

    def df(self, x, y):
        return Exact(1)


def elementwise(kind: str, conventions):
    """An activation from engine/ops (its f and f′), or the identity."""
    if kind == "identity":
        return _Identity()
    return LAYERS[kind](NoParams(), 0, conventions)


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
        state, out = self.initial(), []
        for x in xs:
            values = self.step(state, x)
            out.append(values)
            state = values
        return out

    def step(self, state: dict, x: np.ndarray) -> dict:
        raise NotImplementedError

    def check_input(self, x):
        as_sequence(x, self.input_size, self.name)

    def forward_one(self, x):
        steps = self.unroll(as_sequence(x, self.input_size, self.name))
        return np.stack([s["h"] for s in steps])

    def output_symbol(self, x_sym, counter, y_example):
        from examsolver.mathnodes import Sym

        return Sym("H", bold=True), counter

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
        W_xh = self.p.W_xh if self.p.W_xh.ndim == 2 else self.p.W_xh.reshape(H, -1)
        if W_xh.shape[0] != H:
            raise EngineError(f"{self.name}: W_xh has {W_xh.shape[0]} rows, W_hh has {H}")
        b = _vector(self.p.b_h, H, "b_h", self.name) if self.p.b_h is not None else zeros((H,))
        self.h0 = _vector(self.p.h0, H, "h0", self.name) if self.p.h0 is not None else zeros((H,))
        self.f = elementwise(self.p.activation, self.conventions)
        return {"W_hh": W_hh, "W_xh": W_xh, "b_h": b}

    def _input_matrix(self):
        return self.weights["W_xh"]

    # forward and backward through time, side by side
    def step(self, state, x):
        W_hh, W_xh, b = self.weights["W_hh"], self.weights["W_xh"], self.weights["b_h"]
        a = np.asarray(W_hh.dot(state["h"]) + W_xh.dot(x) + b, dtype=object)
        return {"a": a, "h": emap(self.f.f, a)}

    def local_derivative(self, a, h):
        """f′(a(t)) entry by entry."""
        return np.array([self.f.df(av, hv) for av, hv in zip(a, h)], dtype=object)

    def bptt(self, xs: np.ndarray, steps: list, gh_direct: list) -> dict:
        """Backward through time.

        gh_direct[t] is ∂L/∂h(t) from the losses that read h(t) directly (None: 0).
        Returns per step ∂L/∂h(t), ∂L/∂a(t), and the parameter gradients summed over t.
        """
        W_hh = self.weights["W_hh"]
        T = len(steps)
        gh, ga = [None] * T, [None] * T
        carry = None                                    # ∂L/∂a(t+1) W_hh
        for t in range(T - 1, -1, -1):
            g = gh_direct[t] if gh_direct[t] is not None else zeros((self.hidden,))
            if carry is not None:
                g = g + carry
            gh[t] = np.asarray(g, dtype=object)
            ga[t] = gh[t] * self.local_derivative(steps[t]["a"], steps[t]["h"])
            carry = np.asarray(ga[t].dot(W_hh), dtype=object)
        previous = [self.h0] + [s["h"] for s in steps[:-1]]
        grads = {"W_hh": sum((np.multiply.outer(ga[t], previous[t]) for t in range(T)), zeros(W_hh.shape)),
                 "W_xh": sum((np.multiply.outer(ga[t], xs[t]) for t in range(T)), zeros(self.weights["W_xh"].shape)),
                 "b_h": sum((ga[t] for t in range(T)), zeros((self.hidden,)))}
        gx = np.stack([np.asarray(ga[t].dot(self.weights["W_xh"]), dtype=object) for t in range(T)])
        return {"gh": gh, "ga": ga, "grads": grads, "gx": gx, "gh0": carry}

    def vjp_one(self, x, y, gy):
        xs = as_sequence(x, self.input_size, self.name)
        steps = self.unroll(xs)
        back = self.bptt(xs, steps, [gy[t] for t in range(len(steps))])
        return back["gx"].reshape(x.shape), back["grads"]

    def conventions_used(self):
        return [Phrase("convention.rnn", {"activation": self.p.activation})]

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

    def init_weights(self) -> dict:
        g = self.gates
        W_hh = self.p.W_hh
        if W_hh.ndim != 2 or W_hh.shape[0] != g * W_hh.shape[1]:
            raise EngineError(f"{self.name}: W_hh must be {g}H × H (gates {', '.join(self.gate_names)} stacked), "
                              f"got shape {W_hh.shape}")
        H = W_hh.shape[1]
        W_ih = self.p.W_ih if self.p.W_ih.ndim == 2 else self.p.W_ih.reshape(g * H, -1)
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

    def pre(self, gate: int, x, h) -> tuple[np.ndarray, np.ndarray]:
        """(W_i· x + b_i·, W_h· h + b_h·) of one gate."""
        wx = np.asarray(self.block("W_ih", gate).dot(x) + self.block("b_ih", gate), dtype=object)
        wh = np.asarray(self.block("W_hh", gate).dot(h) + self.block("b_hh", gate), dtype=object)
        return wx, wh

    def vjp_one(self, x, y, gy):
        raise EngineError(f"{self.name}: backpropagation through time is implemented for the plain rnn cell only")

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

    def step(self, state, x):
        out = {}
        for k, name in enumerate(self.gate_names):
            wx, wh = self.pre(k, x, state["h"])
            f = self.tanh if name == "g" else self.sigmoid
            out[name] = emap(f.f, wx + wh)
        out["c"] = np.asarray(out["f"] * state["c"] + out["i"] * out["g"], dtype=object)
        out["h"] = np.asarray(out["o"] * emap(self.tanh.f, out["c"]), dtype=object)
        return out

    def conventions_used(self):
        return [Phrase("convention.lstm", {})]


@layer
class GRU(Gated):
    kind = "gru"
    Params = GatedParams
    gates = 3
    gate_names = ("r", "z", "n")

    def step(self, state, x):
        h = state["h"]
        out = {}
        for k in (0, 1):
            wx, wh = self.pre(k, x, h)
            out[self.gate_names[k]] = emap(self.sigmoid.f, wx + wh)
        wx, wh = self.pre(2, x, h)
        out["n"] = emap(self.tanh.f, np.asarray(wx + out["r"] * wh, dtype=object))
        out["h"] = np.asarray((1 - out["z"]) * out["n"] + out["z"] * h, dtype=object)
        return out

    def conventions_used(self):
        return [Phrase("convention.gru", {})]
