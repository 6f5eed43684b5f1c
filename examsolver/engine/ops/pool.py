"""Global average pooling: one mean per feature map."""

from __future__ import annotations

import numpy as np

from examsolver.engine.ops.base import Flow, Layer, channels, layer, val
from examsolver.engine.scalar import Exact
from examsolver.engine.tensor import ones
from examsolver.errors import EngineError
from examsolver.mathnodes import Deriv, call, mul
from examsolver.solution import Step


@layer
class GlobalAvgPool(Layer):
    kind = "global_avg_pool"
    fn_name = "avg"
    printed = {"latex": "\\mathrm{AVG}", "plain": "AVG"}

    def _divisor(self, size: int) -> int:
        """The pool size; 1 under the deliberate mistake `global_pool_sum` (only for diagnose/)."""
        return 1 if "global_pool_sum" in getattr(self.conventions, "mistakes", ()) else size

    def torch(self, x, weights):
        """The mean of each feature map (all its spatial axes); of the whole vector for one map."""
        if getattr(self.conventions, "mistakes", ()):
            return None
        return f"({x}.flatten(2).mean(-1) if {x}.dim() > 2 else {x}.mean(-1))"

    # forward and VJP, side by side
    def check_input(self, x):
        if x.ndim == 0:
            raise EngineError(f"{self.name}: global pooling reads a vector or feature maps, got a number")

    def forward_one(self, x):
        if x.ndim == 1:
            return np.asarray(x.sum() / self._divisor(x.size), dtype=object)
        size = self._divisor(x[0].size)
        return np.array([x[k].sum() / size for k in range(x.shape[0])], dtype=object)

    def vjp_one(self, x, y, gy):
        if x.ndim == 1:
            return ones(x.shape) * (gy[()] / self._divisor(x.size)), {}
        size = self._divisor(x[0].size)
        return np.stack([ones(x[k].shape) * (gy[k] / size) for k in range(x.shape[0])]), {}

    # formulas
    def _pairs(self, flow):
        ins = channels(flow.x_sym, flow.x)
        if flow.x.ndim == 1:
            return [(ins[0], (flow.y_sym, flow.y))]
        outs = [(flow.y_sym.scalar().with_sub(str(k + 1)), flow.y[k]) for k in range(flow.y.shape[0])]
        return list(zip(ins, outs))

    def forward_steps(self, flow: Flow) -> list:
        steps = [Step(lhs=ys, forms=[call(self.fn_name, xs)], bindings={xs: val(xv, "colT")}, result=yv)
                 for (xs, xv), (ys, yv) in self._pairs(flow)]
        steps[0].text = self.phrase("forward")
        if flow.x.ndim > 1:
            parts = [ys for _, (ys, _) in self._pairs(flow)]
            steps.append(Step(lhs=flow.y_sym, forms=[call("vector", *parts)], result=flow.y, layout="colT"))
        return steps

    def backward_steps(self, flow: Flow, gy, gx, grads, want_input) -> list:
        if not want_input:
            return []
        steps = []
        for k, ((xs, xv), (ys, _)) in enumerate(self._pairs(flow)):
            g_out = flow.d(ys)
            local = Deriv(ys, xs)
            g_value = gy[()] if flow.x.ndim == 1 else gy[k]
            share = ones(np.shape(xv)) * Exact(1) / np.size(xv)
            steps.append(Step(lhs=flow.d(xs), forms=[mul(g_out, local)],
                              bindings={g_out: val(g_value), local: val(share, "row")},
                              result=gx if flow.x.ndim == 1 else gx[k], layout="row"))
        steps[0].text = self.phrase("backward")
        return steps
