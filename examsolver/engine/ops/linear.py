"""Fully connected layer: y = W x + b, W stored output × input (PyTorch, the 2022 slides).

A layer given no b has no bias, as nn.Linear(bias=False): y = W x, no b to differentiate or update.

The convention `weights: in_out` (courses in the Andrew Ng / MIT 6.036 tradition) stores
W input × output with y = Wᵀx + b: W is kept as the spec gives it, so every weight, its
gradient and its update is reported in the spec's layout (∂L/∂W = x ∂L/∂y, n_in × n_out).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from examsolver.engine.ops.base import MATRIX_NAME, Flow, Layer, MatrixArgs, NoParams, grouped, layer, val
from examsolver.engine.tensor import tdot
from examsolver.errors import EngineError
from examsolver.mathnodes import Deriv, Transpose, mul
from examsolver.solution import Step
from examsolver.spec.model import Tensor


class LinearParams(NoParams):
    W: Tensor
    b: Tensor | None = None


class LinearMatrixArgs(MatrixArgs):
    W: str = Field(pattern=MATRIX_NAME)                 # the weight matrix's name
    b: str | None = Field(None, pattern=MATRIX_NAME)    # the bias vector's (none: no bias)
    size: str = Field(pattern=MATRIX_NAME)              # the symbolic output size (H, K)


@layer
class Linear(Layer):
    kind = "linear"
    Params = LinearParams
    count_options = ("bias",)              # counting: `bias: false` is an option, not a size
    layout_weights = ("W",)

    MatrixArgs = LinearMatrixArgs

    # matrix calculus: y = W x + b; ∂L/∂W = ∂L/∂y xᵀ, ∂L/∂b = ∂L/∂y, ∂L/∂x = Wᵀ ∂L/∂y
    @classmethod
    def matrix_forward(cls, m):
        a = m.args
        W = m.param(a.W, a.size, m.x_size)
        m.value = W * m.x + m.param(a.b, a.size) if a.b else W * m.x
        m.out_size = a.size
        Wx = mul(m.node(a.W), m.x_node)
        return Wx + m.node(a.b) if a.b else Wx

    @classmethod
    def matrix_backward(cls, m):
        a = m.args
        xT = Transpose(m.x_node)
        m.param_gradient(a.W, mul(m.grad_out, xT), mul(grouped(m.n_out), xT), m.d_out * m.x_entries.T)
        if a.b:
            m.param_gradient(a.b, m.grad_out, m.n_out, m.d_out)
        if m.wants_input:
            WT = Transpose(m.node(a.W))
            m.input_gradient(mul(WT, m.grad_out), mul(WT, grouped(m.n_out)), m.entries(a.W).T * m.d_out)

    @classmethod
    def param_shapes(cls, sizes: dict) -> dict[str, tuple[int, ...]]:
        """W is out × in (PyTorch's layout); b unless `bias: false`."""
        shapes = {"W": (sizes["out_features"], sizes["in_features"])}
        if sizes.get("bias", True):
            shapes["b"] = (sizes["out_features"],)
        return shapes

    @property
    def transposed(self) -> bool:
        """W stored input × output, y = Wᵀx + b (a matrix W; one row or column is one output either way)."""
        return self.conventions.weights == "in_out" and np.ndim(self.p.W) == 2

    @property
    def in_features(self) -> int:
        W = self.weights["W"]
        return W.shape[0] if self.transposed else W.shape[-1]

    def _matrix(self):
        """W as it multiplies x (output × input)."""
        W = self.weights["W"]
        return W.T if self.transposed else W

    def init_weights(self) -> dict:
        W = self.p.W
        if W.ndim not in (1, 2):
            raise EngineError(f"{self.name}: W must be a matrix (or one row), got shape {W.shape}")
        if self.p.b is None:
            return {"W": W}
        out_shape = (W.shape[1 if self.transposed else 0],) if W.ndim == 2 else ()
        b = self.p.b
        if b.shape != out_shape and not (b.size == 1 and out_shape == ()):
            raise EngineError(f"{self.name}: b has shape {b.shape}, expected {out_shape} to match W")
        return {"W": W, "b": b.reshape(out_shape)}

    @property
    def biased(self) -> bool:
        return "b" in self.weights

    def check_input(self, x):
        if x.ndim != 1 or x.shape[0] != self.in_features:
            raise EngineError(f"{self.name}: input has shape {x.shape}, W expects a vector of "
                              f"{self.in_features} (add flatten before it?)")

    # forward and VJP, side by side
    def forward_one(self, x):
        y = tdot(self._matrix(), x)
        return np.asarray(y + self.weights["b"] if self.biased else y, dtype=object)

    def torch(self, x, weights):
        W = weights["W"]
        product = f"{x} @ {W}.T" if self.weights["W"].ndim == 2 and not self.transposed else f"{x} @ {W}"
        return f"{product} + {weights['b']}" if self.biased else product

    def vjp_one(self, x, y, gy):
        gW = np.multiply.outer(gy, x)                 # ∂L/∂W = (∂L/∂y)ᵀ xᵀ
        gx = tdot(gy, self._matrix(), axes=np.ndim(gy))          # ∂L/∂x = ∂L/∂y W
        # input × output: ∂L/∂W = x ∂L/∂y, the transpose
        grads = {"W": gW.T if self.transposed else gW}
        if self.biased:
            grads["b"] = np.asarray(gy, dtype=object)
        return gx, grads

    def conventions_used(self):
        from examsolver.solution import Phrase

        layout = [Phrase("convention.weights_in_out", {})] if self.transposed else []
        return layout + ([] if self.biased else [Phrase("convention.linear_no_bias", {})])

    def _W(self):
        """W as the formulas write it: W, or Wᵀ when stored input × output."""
        W = self.weight_sym("W")
        return W.T if self.transposed else W

    # formulas
    def formula(self, x):
        from examsolver.mathnodes import Op, Paren

        product = mul(self._W(), Paren(x) if isinstance(x, Op) else x)
        return Op("+", (product, self.weight_sym("b"))) if self.biased else product

    def forward_steps(self, flow: Flow) -> list:
        W, x = self.weight_sym("W"), flow.x_sym
        form = mul(self._W(), x)
        bindings = {W: val(self.weights["W"], self.weight_layout("W")), x: val(flow.x)}
        if self.biased:
            b = self.weight_sym("b")
            form, bindings[b] = form + b, val(self.weights["b"])
        return [Step(lhs=flow.y_sym, forms=[form], bindings=bindings, result=flow.y, text=self.phrase("forward"))]

    def backward_steps(self, flow: Flow, gy, gx, grads, want_input) -> list:
        W = self.weight_sym("W")
        x, y = flow.x_sym, flow.y_sym
        gy_node = flow.d(y)
        gy_t = gy_node if np.ndim(gy) == 0 else gy_node.T
        out = []
        first = True
        if "W" in grads:
            product = mul(x, gy_node) if self.transposed else mul(gy_t, x.T)
            out.append(Step(lhs=flow.d(W), forms=[mul(gy_node, Deriv(y, W)), product],
                            bindings={gy_node: val(gy, "row"), x: val(flow.x, "col")},
                            result=grads["W"], layout=self.weight_layout("W"), text=self.phrase("backward") if first else None))
            first = False
        if "b" in grads:
            b = self.weight_sym("b")
            out.append(Step(lhs=flow.d(b), forms=[mul(gy_node, Deriv(y, b)), gy_node],
                            bindings={gy_node: val(gy, "row")}, result=grads["b"], layout="row",
                            text=self.phrase("backward") if first else None))
            first = False
        if want_input:
            out.append(Step(lhs=flow.d(x), forms=[mul(gy_node, Deriv(y, x)), mul(gy_node, self._W())],
                            bindings={gy_node: val(gy, "row"), W: val(self.weights["W"], self.weight_layout("W"))},
                            result=gx, layout="row", text=self.phrase("backward") if first else None))
        return out
