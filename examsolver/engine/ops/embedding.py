"""Embedding (ugrađivanje), as PyTorch's nn.Embedding: indices in, rows of W out.

The example is an index or a tensor of indices into the num_embeddings × embedding_dim matrix W;
the output stacks the chosen rows, h = onehot(x) W.  The gradient of W scatters each upstream row
back to the row it came from (rows used twice add up), ∂L/∂W = onehot(x)ᵀ ∂L/∂h; the row
`padding_idx` gets none, and the indices themselves are not differentiable (a zero gradient).
"""

from __future__ import annotations

import numpy as np

from examsolver.engine.ops.base import Flow, Layer, NoParams, layer, val
from examsolver.engine.scalar import Exact
from examsolver.engine.tensor import zeros
from examsolver.errors import EngineError
from examsolver.mathnodes import Transpose, call, mul
from examsolver.solution import Phrase, Step
from examsolver.spec.model import Tensor


class EmbeddingParams(NoParams):
    W: Tensor
    padding_idx: int | None = None


@layer
class Embedding(Layer):
    kind = "embedding"
    Params = EmbeddingParams

    @classmethod
    def param_shapes(cls, sizes: dict) -> dict[str, tuple[int, ...]]:
        return {"W": (sizes["num_embeddings"], sizes["embedding_dim"])}

    def init_weights(self) -> dict:
        W = self.p.W
        if W.ndim != 2:
            raise EngineError(f"{self.name}: W must be a matrix (num_embeddings × embedding_dim), got shape {W.shape}")
        pad = self.p.padding_idx
        if pad is not None and not -W.shape[0] <= pad < W.shape[0]:
            raise EngineError(f"{self.name}: padding_idx {pad} is not a row of W ({W.shape[0]} rows)")
        return {"W": W}

    @property
    def padding(self) -> int | None:
        pad = self.p.padding_idx
        return None if pad is None else pad % self.weights["W"].shape[0]

    def check_input(self, x):
        rows = self.weights["W"].shape[0]
        for v in np.asarray(x, dtype=object).flat:
            if not (v.is_rational() and v.is_integer() and 0 <= v < rows):
                raise EngineError(f"{self.name}: the input holds indices of rows of W (0 … {rows - 1}), got {v}")

    def torch(self, x, weights):
        return f"F.embedding({x}.long(), {weights['W']}, padding_idx={self.p.padding_idx})"

    def conventions_used(self):
        # W, one row per token, is input × output already (h = onehot(x) W): the layout leaves it as it is
        out = [Phrase("convention.embedding_in_out", {})] if self.conventions.weights == "in_out" else []
        if self.padding is None:
            return out
        return out + [Phrase("convention.embedding_padding", {"layer": self.name, "index": self.padding})]

    def _indices(self, x) -> list[int]:
        return [int(v) for v in np.asarray(x, dtype=object).flat]

    def onehot(self, x) -> np.ndarray:
        """One row per index (a single row for a scalar index): 1 in the index's column."""
        out = zeros((max(1, np.size(x)), self.weights["W"].shape[0]))
        for r, i in enumerate(self._indices(x)):
            out[r, i] = Exact(1)
        return out if np.ndim(x) else out[0]

    # forward and VJP, side by side
    def forward_one(self, x):
        W = self.weights["W"]
        return np.stack([W[i] for i in self._indices(x)]).reshape(np.shape(x) + W.shape[1:])

    def vjp_one(self, x, y, gy):
        W = self.weights["W"]
        gW = zeros(W.shape)
        rows = np.asarray(gy, dtype=object).reshape(-1, W.shape[1])
        for i, row in zip(self._indices(x), rows):
            if i != self.padding:
                gW[i] = gW[i] + row
        return zeros(np.shape(x)), {"W": gW}

    # formulas
    def forward_steps(self, flow: Flow) -> list:
        W, hot = self.weight_sym("W"), call("onehot", flow.x_sym)
        return [Step(lhs=flow.y_sym, forms=[mul(hot, W)],
                     bindings={hot: val(self.onehot(flow.x), "row"), W: val(self.weights["W"])},
                     result=flow.y, text=self.phrase("forward"))]

    def backward_steps(self, flow: Flow, gy, gx, grads, want_input) -> list:
        if "W" not in grads:
            return []
        W, hot, g = self.weight_sym("W"), call("onehot", flow.x_sym), flow.d(flow.y_sym)
        hot_value = self.onehot(flow.x)
        if self.padding is not None:                # the padding row's gradient is held at zero
            hot_value[..., self.padding] = Exact(0)
        return [Step(lhs=flow.d(W), forms=[mul(Transpose(hot), g)],
                     bindings={hot: val(hot_value, "row"), g: val(gy, "row")},
                     result=grads["W"], text=self.phrase("backward"))]
