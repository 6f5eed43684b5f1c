"""Flatten feature maps into one vector before a fully connected layer.

The order matters for which weight meets which entry: channel-first (C, H, W),
as PyTorch's `torch.flatten` / `nn.Flatten` on an NCHW tensor, unless
`conventions.flatten: channel_last` (H, W, C, as in Keras/TensorFlow's NHWC).
"""

from __future__ import annotations

import numpy as np

from examsolver.engine.ops.base import Flow, Layer, layer, val
from examsolver.mathnodes import Call
from examsolver.solution import Phrase, Step


@layer
class Flatten(Layer):
    kind = "flatten"
    flattens = True

    @classmethod
    def param_shapes(cls, sizes: dict) -> dict[str, tuple[int, ...]]:
        return {}

    @property
    def channel_last(self) -> bool:
        return getattr(self.conventions, "flatten", "channel_first") == "channel_last"

    # spatial-size algebra: flatten turns C·H·W into one width
    def out_channels(self, c_in):
        return c_in

    # forward and VJP, side by side
    def forward_one(self, x):
        if self.channel_last and x.ndim == 3:
            return np.ascontiguousarray(x.transpose(1, 2, 0)).reshape(-1)
        return x.reshape(-1)

    def vjp_one(self, x, y, gy):
        if self.channel_last and x.ndim == 3:
            return np.asarray(gy, dtype=object).reshape(x.shape[1], x.shape[2], x.shape[0]).transpose(2, 0, 1), {}
        return np.asarray(gy, dtype=object).reshape(x.shape), {}

    def torch(self, x, weights):
        """torch.flatten after the batch axis; channel-last first moves C behind H, W (NHWC)."""
        if self.channel_last:
            return f"({x}.permute(0, 2, 3, 1) if {x}.dim() == 4 else {x}).flatten(1)"
        return f"{x}.flatten(1)"

    def conventions_used(self):
        return [Phrase("convention.flatten_channel_last" if self.channel_last else "convention.flatten_channel_first", {})]

    # formulas
    def forward_steps(self, flow: Flow) -> list:
        return [Step(lhs=flow.y_sym, forms=[Call("flatten", (flow.x_sym,))], bindings={flow.x_sym: val(flow.x)},
                     result=flow.y, layout="colT", text=self.phrase("forward"))]

    def backward_steps(self, flow: Flow, gy, gx, grads, want_input) -> list:
        if not want_input:
            return []
        g = flow.d(flow.y_sym)
        return [Step(lhs=flow.d(flow.x_sym), forms=[Call("reshape", (g,))], bindings={g: val(gy, "row")},
                     result=gx, text=self.phrase("backward"))]
