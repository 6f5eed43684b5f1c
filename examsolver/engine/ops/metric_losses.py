"""Metric-learning losses on embeddings: contrastive (pairs) and triplet margin.

Both read the distance d = ‖a − b + ε‖_p between two embeddings (PyTorch's
pairwise_distance; ε = 0 unless given) or, with `squared`, its square d².
Triplet follows torch.nn.TripletMarginLoss by default: max(0, d(a, p) − d(a, n) + m),
margin 1, p = 2; the course's squared form max(0, d²(a, p) − d²(a, n) + m) is the
`squared` convention.  Contrastive is the course's (Hadsell et al.): L⁺ = d²,
L⁻ = max(0, m − d)² (optionally with ½; `squared: false` drops the squares).

Whether a hinge is active is decided by the exact sign of its argument; at
exactly zero (a triplet on the margin) the derivative is the kink convention's
(`kink_grad`, ReLU′(0), set by the problem), the contrastive one at d = m is 0.

As registered losses their output is the embeddings stacked row by row — (a, b)
for contrastive with the target 1 for a positive pair and 0 for a negative one,
(anchor, positive, negative) for triplet — and grad gives one row per embedding.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from examsolver.engine import scalar
from examsolver.engine.ops.base import Loss, NoParams, loss
from examsolver.engine.scalar import Exact
from examsolver.engine.tensor import total, zeros
from examsolver.errors import EngineError
from examsolver.solution import Phrase
from examsolver.spec.model import Number

DEFAULT_MARGIN = 1


class MetricParams(NoParams):
    margin: Number | None = None          # None: 1, PyTorch's default (the solution says so)
    p: int = Field(2, ge=1, le=10)        # the norm's degree
    eps: Number | None = None             # PyTorch's pairwise_distance adds 1e-6; here 0 unless given
    reduction: Literal["none", "mean", "sum"] | None = None   # over the pairs/triplets (None: the problem's)


class ContrastiveParams(MetricParams):
    half: bool = Field(False, description="L⁺ = ½d², L⁻ = ½max(0, m − d)²")
    squared: bool = Field(True, description="the course's squares; false: L⁺ = d, L⁻ = max(0, m − d)")


class TripletParams(MetricParams):
    squared: bool = Field(False, description="max(0, d²(a, p) − d²(a, n) + m) instead of PyTorch's distances")


class MetricLoss(Loss):
    """What both share: the margin and the distance with its gradient."""

    def __init__(self, params):
        super().__init__(params)
        self.given = params.margin is not None
        self.m = params.margin if self.given else Exact(DEFAULT_MARGIN)
        self.p_norm = params.p
        self.eps = params.eps if params.eps is not None else Exact(0)
        self.squared = params.squared

    def difference(self, a, b) -> np.ndarray:
        diff = np.asarray(a - b, dtype=object)
        return np.asarray(diff + self.eps, dtype=object) if self.eps != 0 else diff

    def distance(self, a, b) -> Exact:
        """‖a − b + ε‖_p."""
        diff = self.difference(a, b)
        if self.p_norm == 2:
            return scalar.sqrt(total(diff * diff))
        if self.p_norm == 1:
            return total(np.asarray([abs(v) for v in diff.flat], dtype=object))
        return total(np.asarray([abs(v) ** self.p_norm for v in diff.flat], dtype=object)) ** (Exact(1) / self.p_norm)

    def distance_grad(self, a, b, d: Exact) -> np.ndarray | None:
        """∂d/∂a: (a − b)/d for p = 2, sign(a − b)·|a − b|^(p−1)/d^(p−1) otherwise (sign(0) = 0 as in
        PyTorch); None at d = 0, where d is not differentiable (p > 1)."""
        diff = self.difference(a, b)
        if self.p_norm == 1:
            return np.asarray([Exact(v.sign()) for v in diff.flat], dtype=object).reshape(diff.shape)
        if d.sign() == 0:
            return None
        if self.p_norm == 2:
            return np.asarray((a - b if self.eps == 0 else diff) / d, dtype=object)
        scale = d ** (self.p_norm - 1)
        return np.asarray([Exact(v.sign()) * abs(v) ** (self.p_norm - 1) / scale for v in diff.flat],
                          dtype=object).reshape(diff.shape)

    def measure(self, a, b) -> Exact:
        """What the loss reads: d, or d² (squared)."""
        d = self.distance(a, b)
        return d * d if self.squared else d

    def measure_grad(self, a, b, d: Exact) -> np.ndarray:
        """∂(d or d²)/∂a; the squared Euclidean distance's 2(a − b) has no kink at d = 0."""
        if self.squared and self.p_norm == 2:
            return np.asarray(self.difference(a, b) * 2, dtype=object)
        unit = self.distance_grad(a, b, d)
        if unit is None:
            return zeros(np.shape(a))
        return np.asarray(unit * (2 * d), dtype=object) if self.squared else unit

    # ----- PyTorch reference (the check script's variables a, b: one embedding each) -----------------
    def torch_distance(self, a: str, b: str) -> str:
        """PyTorch's pairwise distance ‖a − b + ε‖_p (the measure's d; squared in torch_measure)."""
        eps = f" + {float(self.eps)!r}" if self.eps != 0 else ""
        return f"torch.linalg.vector_norm({a} - {b}{eps}, ord={self.p_norm})"

    def torch_measure(self, d: str) -> str:
        return f"{d} ** 2" if self.squared else d

    def _rows(self, output, count: int) -> list:
        output = np.asarray(output, dtype=object)
        if output.ndim < 1 or output.shape[0] != count:
            raise EngineError(f"{self.kind} reads {count} embeddings stacked as rows, got shape {output.shape}")
        return [output[k] for k in range(count)]

    def conventions_used(self) -> list[Phrase]:
        phrases = [] if self.given else [Phrase("convention.margin_default", {"m": self.m})]
        if self.p_norm != 2:
            phrases.append(Phrase("convention.metric_norm", {"p": self.p_norm}))
        if self.eps != 0:
            phrases.append(Phrase("convention.metric_eps", {"eps": self.eps}))
        return phrases


@loss
class Contrastive(MetricLoss):
    """L⁺ = f·d², L⁻ = f·max(0, m − d)² (f = ½ with `half`; without the squares when not `squared`)."""

    kind = "contrastive"
    Params = ContrastiveParams

    def __init__(self, params):
        super().__init__(params)
        self.half = params.half

    @property
    def factor(self) -> Exact:
        return Exact(1) / 2 if self.half else Exact(1)

    def pair_value(self, d: Exact, positive: bool) -> Exact:
        power = 2 if self.squared else 1
        if positive:
            return self.factor * d ** power
        gap = self.m - d
        return self.factor * gap ** power if gap.sign() > 0 else Exact(0)

    def pair_grad(self, e1, e2, d: Exact, positive: bool):
        """∂L/∂e⁽ⁱ⁾ (∂L/∂e⁽ʲ⁾ is its negative): 2f(e1 − e2) for a positive pair (p = 2), −2f(m − d)·∂d/∂e1
        while m > d for a negative one (0 from d = m on, and at d = 0 where the direction is undefined)."""
        if positive:
            if self.squared and self.p_norm == 2:
                return np.asarray(self.difference(e1, e2) * (2 * self.factor), dtype=object)
            unit = self.distance_grad(e1, e2, d)
            if unit is None:
                return zeros(np.shape(e1))
            return np.asarray(unit * (self.factor * (2 * d if self.squared else 1)), dtype=object)
        gap = self.m - d
        unit = self.distance_grad(e1, e2, d)
        if gap.sign() <= 0 or unit is None:
            return zeros(np.shape(e1))
        return np.asarray(unit * (-2 * self.factor * gap if self.squared else -self.factor), dtype=object)

    # the registered loss: output = [e1; e2], target 1 (positive pair) or 0 (negative)
    def check_target(self, output, target) -> None:
        self._rows(output, 2)
        if target not in (0, 1):
            raise EngineError("the contrastive loss's target is 1 (a positive pair) or 0 (a negative pair)")

    def value(self, output, target):
        e1, e2 = self._rows(output, 2)
        return self.pair_value(self.distance(e1, e2), target == 1)

    def grad(self, output, target):
        e1, e2 = self._rows(output, 2)
        g = self.pair_grad(e1, e2, self.distance(e1, e2), target == 1)
        return np.stack([g, np.asarray(-g, dtype=object)])

    def torch_pair(self, d: str, positive: bool) -> str:
        """The pair's loss in PyTorch from its distance d (a variable of the check script)."""
        power, factor = (" ** 2" if self.squared else ""), ("0.5 * " if self.half else "")
        return f"{factor}{d}{power}" if positive else f"{factor}torch.clamp({float(self.m)!r} - {d}, min=0){power}"

    def conventions_used(self) -> list[Phrase]:
        form = ("half" if self.half else "plain") if self.squared else ("half_unsquared" if self.half else "unsquared")
        return [Phrase(f"convention.contrastive_{form}", {})] + super().conventions_used()


@loss
class Triplet(MetricLoss):
    """max(0, d(a, p) − d(a, n) + m): torch.nn.TripletMarginLoss; d² with `squared`."""

    kind = "triplet"
    Params = TripletParams
    kink_grad = Exact(1)         # max(0, z)′ at z = 0: the problem's ReLU′(0) convention sets it

    def hinge(self, D_ap: Exact, D_an: Exact) -> Exact:
        return D_ap - D_an + self.m

    def triplet_value(self, D_ap: Exact, D_an: Exact) -> Exact:
        z = self.hinge(D_ap, D_an)
        return z if z.sign() > 0 else Exact(0)

    def slope(self, D_ap: Exact, D_an: Exact) -> Exact:
        """The hinge's derivative, decided by the exact sign of its argument."""
        z = self.hinge(D_ap, D_an).sign()
        return Exact(1) if z > 0 else self.kink_grad if z == 0 else Exact(0)

    def triplet_grads(self, a, p, n, d_ap: Exact, d_an: Exact):
        """(∂L/∂a, ∂L/∂p, ∂L/∂n) = s·(u_ap − u_an, −u_ap, u_an), u = ∂(d or d²)/∂a, s the hinge's slope."""
        s = self.slope(*(d * d if self.squared else d for d in (d_ap, d_an)))
        if s == 0:
            return zeros(np.shape(a)), zeros(np.shape(a)), zeros(np.shape(a))
        u_ap, u_an = self.measure_grad(a, p, d_ap), self.measure_grad(a, n, d_an)
        return tuple(np.asarray(g * s, dtype=object) for g in (u_ap - u_an, -u_ap, u_an))

    def torch_hinge(self, d_ap: str, d_an: str, z: str) -> tuple[str, str | None]:
        """(the expression of z, max(0, z)) in PyTorch from the script's distances and z's variable: the
        hinge is the ReLU's reference with this loss's derivative at the kink."""
        from types import SimpleNamespace

        from examsolver.engine.ops import LAYERS

        relu = LAYERS["relu"](LAYERS["relu"].Params(), 0, SimpleNamespace(relu_grad_at_zero=self.kink_grad))
        return f"{self.torch_measure(d_ap)} - {self.torch_measure(d_an)} + {float(self.m)!r}", relu.torch(z, {})

    # the registered loss: output = [a; p; n], no target
    def check_target(self, output, target) -> None:
        self._rows(output, 3)

    def value(self, output, target=None):
        a, p, n = self._rows(output, 3)
        return self.triplet_value(self.measure(a, p), self.measure(a, n))

    def grad(self, output, target=None):
        a, p, n = self._rows(output, 3)
        return np.stack(self.triplet_grads(a, p, n, self.distance(a, p), self.distance(a, n)))

    def conventions_used(self) -> list[Phrase]:
        """The squared form when chosen, and ε = 0 where PyTorch's TripletMarginLoss adds 10⁻⁶ (unless given)."""
        eps = [Phrase("convention.triplet_no_eps", {})] if self.p.eps is None else []
        return ([Phrase("convention.triplet_squared", {})] if self.squared else []) + super().conventions_used() + eps
