"""Fully connected layer: y = W x + b."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from examsolver.engine.ops.base import MATRIX_NAME, Flow, Layer, MatrixArgs, NoParams, grouped, layer, val
from examsolver.engine.tensor import tdot, zeros
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

    def init_weights(self) -> dict:
        W = self.p.W
        if W.ndim not in (1, 2):
            raise EngineError(f"{self.name}: W must be a matrix (or one row), got shape {W.shape}")
        out_shape = W.shape[:1] if W.ndim == 2 else ()
        b = self.p.b if self.p.b is not None else zeros(out_shape)
        if b.shape != out_shape and not (b.size == 1 and out_shape == ()):
            raise EngineError(f"{self.name}: b has shape {b.shape}, expected {out_shape} to match W")
        return {"W": W, "b": b.reshape(out_shape)}

    def check_input(self, x):
        if x.ndim != 1 or x.shape[0] != self.weights["W"].shape[-1]:
            raise EngineError(f"{self.name}: input has shape {x.shape}, W expects a vector of "
                              f"{self.weights['W'].shape[-1]} (add flatten before it?)")

    # forward and VJP, side by side
    def forward_one(self, x):
        W, b = self.weights["W"], self.weights["b"]
        return np.asarray(tdot(W, x) + b, dtype=object)

    def torch(self, x, weights):
        W, b = weights["W"], weights["b"]
        return f"{x} @ {W}.T + {b}" if self.weights["W"].ndim == 2 else f"{x} @ {W} + {b}"

    def vjp_one(self, x, y, gy):
        W = self.weights["W"]
        gW = np.multiply.outer(gy, x)                 # ∂L/∂W = (∂L/∂y)ᵀ xᵀ
        gx = tdot(gy, W, axes=np.ndim(gy))          # ∂L/∂x = ∂L/∂y W
        return gx, {"W": gW, "b": np.asarray(gy, dtype=object)}

    # formulas
    def formula(self, x):
        from examsolver.mathnodes import Op, Paren

        return Op("+", (mul(self.weight_sym("W"), Paren(x) if isinstance(x, Op) else x), self.weight_sym("b")))

    def forward_steps(self, flow: Flow) -> list:
        W, b = self.weight_sym("W"), self.weight_sym("b")
        x = flow.x_sym
        return [Step(lhs=flow.y_sym, forms=[mul(W, x) + b],
                     bindings={W: val(self.weights["W"], self.weight_layout("W")),
                               x: val(flow.x), b: val(self.weights["b"])},
                     result=flow.y, text=self.phrase("forward"))]

    def backward_steps(self, flow: Flow, gy, gx, grads, want_input) -> list:
        W, b = self.weight_sym("W"), self.weight_sym("b")
        x, y = flow.x_sym, flow.y_sym
        gy_node = flow.d(y)
        gy_t = gy_node if np.ndim(gy) == 0 else gy_node.T
        out = []
        first = True
        if "W" in grads:
            out.append(Step(lhs=flow.d(W), forms=[mul(gy_node, Deriv(y, W)), mul(gy_t, x.T)],
                            bindings={gy_node: val(gy, "row"), x: val(flow.x, "col")},
                            result=grads["W"], layout=self.weight_layout("W"), text=self.phrase("backward") if first else None))
            first = False
        if "b" in grads:
            out.append(Step(lhs=flow.d(b), forms=[mul(gy_node, Deriv(y, b)), gy_node],
                            bindings={gy_node: val(gy, "row")}, result=grads["b"], layout="row",
                            text=self.phrase("backward") if first else None))
            first = False
        if want_input:
            out.append(Step(lhs=flow.d(x), forms=[mul(gy_node, Deriv(y, x)), mul(gy_node, W)],
                            bindings={gy_node: val(gy, "row"), W: val(self.weights["W"], self.weight_layout("W"))},
                            result=gx, layout="row", text=self.phrase("backward") if first else None))
        return out
