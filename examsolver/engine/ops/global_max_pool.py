"""Global max pooling (PyTorch's adaptive max pooling to size 1): one maximum per feature map.

Winners are decided on exact values, so ties are real: the `maxpool_ties` convention applies
as in 2D max pooling, whose window rule it borrows (`first`: the first maximum in row-major
order, what PyTorch's CPU kernel picks; `split`: shared equally), and every tied map is reported.
"""

from __future__ import annotations

import numpy as np

from examsolver.engine.ops.base import Flow, layer, val
from examsolver.engine.ops.pool import GlobalAvgPool
from examsolver.engine.ops.pool2d import MaxPool2d
from examsolver.mathnodes import Sym, mul
from examsolver.solution import Phrase, Step


@layer
class GlobalMaxPool(GlobalAvgPool):
    kind = "global_max_pool"
    fn_name = "max"
    printed: dict = {}              # written as the max of mathematics, not the inherited AVG
    pool = MaxPool2d.pool           # the maximum of a map, decided exactly
    shares = MaxPool2d.shares       # ∂max/∂x: 1 at the winner, or split over the ties

    @classmethod
    def param_shapes(cls, sizes: dict) -> dict[str, tuple[int, ...]]:
        return {}

    def torch(self, x, weights):
        """amax shares the gradient among tied maxima (split); adaptive max pooling takes the first."""
        if self.conventions.maxpool_ties == "split":
            return f"({x}.flatten(2).amax(-1) if {x}.dim() > 2 else {x}.amax(-1))"
        return (f"(F.adaptive_max_pool1d({x}.flatten(2), 1).flatten(1) if {x}.dim() > 2 "
                f"else F.adaptive_max_pool1d({x}.unsqueeze(1), 1).flatten())")

    def _maps(self, x):
        return [x] if x.ndim == 1 else [x[k] for k in range(x.shape[0])]

    # forward and VJP, side by side
    def forward_one(self, x):
        if x.ndim == 1:
            return np.asarray(self.pool(x), dtype=object)
        return np.array([self.pool(m) for m in self._maps(x)], dtype=object)

    def vjp_one(self, x, y, gy):
        if x.ndim == 1:                 # a scalar output: gy may come as a number
            return self.shares(x) * np.asarray(gy, dtype=object)[()], {}
        return np.stack([self.shares(m) * gy[k] for k, m in enumerate(self._maps(x))]), {}

    def conventions_used(self):
        return MaxPool2d.conventions_used(self)

    def degeneracies(self, xs):
        maps = [m for x in xs for m in self._maps(x)]
        tied = sum(1 for m in maps if sum(1 for v in m.flat if v == self.pool(m)) > 1)
        if not tied:
            return []
        return [Phrase("warning.maxpool_ties", {"layer": self.name, "count": tied, "total": len(maps),
                                                "rule": Phrase(f"convention.maxpool_{self.conventions.maxpool_ties}", {})})]

    # formulas (the forward steps are global average pooling's with max for avg)
    def backward_steps(self, flow: Flow, gy, gx, grads, want_input) -> list:
        if not want_input:
            return []
        steps = []
        for k, ((xs, xv), (ys, _)) in enumerate(self._pairs(flow)):
            mask = Sym("M", xs.sub, bold=True)
            g_out = flow.d(ys)
            steps.append(Step(lhs=flow.d(xs), forms=[mul(g_out, mask)],
                              bindings={g_out: val(np.asarray(gy, dtype=object)[()] if flow.x.ndim == 1 else gy[k]),
                                        mask: val(self.shares(np.asarray(xv, dtype=object)), "row")},
                              result=gx if flow.x.ndim == 1 else gx[k], layout="row"))
        steps[0].text = self.phrase("backward")
        return steps
