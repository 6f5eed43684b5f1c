"""Dropout (isključivanje neurona) with a given mask, as PyTorch's nn.Dropout.

An exam fixes the random draw: `mask` holds 1 for a kept and 0 for a dropped unit, one mask for
every example (the example's shape) or one per example (a leading batch axis).  PyTorch's dropout
is inverted: in training y = x ⊙ m / (1 − p), in evaluation (`train: false`) y = x.  The
textbook form (`conventions: {dropout: plain}`) keeps y = x ⊙ m in training and scales by
1 − p in evaluation.  The backward pass is the same mask and scale: ∂L/∂x = ∂L/∂y ⊙ m · c.
"""

from __future__ import annotations

import numpy as np

from examsolver.engine import scalar
from examsolver.engine.ops.base import Flow, Layer, NoParams, layer, val
from examsolver.engine.tensor import to_float
from examsolver.errors import EngineError
from examsolver.mathnodes import Const, Frac, Op, Paren, Sym, mul
from examsolver.solution import Phrase, Step
from examsolver.spec.model import Number, Tensor

class DropoutParams(NoParams):
    p: Number = "1/2"
    mask: Tensor | None = None
    train: bool = True

@layer
class Dropout(Layer):
    kind = "dropout"
    Params = DropoutParams
    positionwise = True
    preserves_shape = True

    @classmethod
    def param_shapes(cls, sizes: dict) -> dict[str, tuple[int, ...]]:
        return {}

    def init_weights(self) -> dict:
        p, mask = self.p.p, self.p.mask
        if not 0 <= p < 1:
            raise EngineError(f"{self.name}: p must be in [0, 1), got {p}")
        if self.p.train and mask is None:
            raise EngineError(f"{self.name}: dropout in training needs the mask (mask: 1 kept, 0 dropped)")
        if mask is not None and any(v != 0 and v != 1 for v in mask.flat):
            raise EngineError(f"{self.name}: the mask holds 0 (dropped) and 1 (kept) only")
        return {}

    @property
    def inverted(self) -> bool:
        return self.conventions.dropout == "inverted"

    def scale(self):
        """The factor on the kept units: 1/(1 − p) or 1 in training, 1 or 1 − p in evaluation."""
        keep = 1 - scalar.exact(self.p.p)
        if self.p.train:
            return 1 / keep if self.inverted else scalar.Exact(1)
        return scalar.Exact(1) if self.inverted else keep

    def mask_of(self, m: int, x):
        """The mask of example m (0-based): ones in evaluation."""
        if not self.p.train:
            return np.full(x.shape, scalar.Exact(1), dtype=object)
        mask = self.p.mask
        if mask.shape == x.shape:
            return mask
        if mask.shape[1:] == x.shape and m < mask.shape[0]:
            return mask[m]
        raise EngineError(f"{self.name}: mask of shape {mask.shape} fits neither the example {x.shape} "
                          f"nor one mask per example")

    def torch(self, x, weights):
        """The mask and scale applied as given (torch's own dropout draws its mask at random)."""
        if not self.p.train:
            return f"{x} * {float(self.scale())!r}"
        return f"{x} * torch.tensor({to_float(self.p.mask).tolist()}) * {float(self.scale())!r}"

    def conventions_used(self):
        out = [Phrase(f"convention.dropout_{self.conventions.dropout}", {})]
        return out + ([] if self.p.train else [Phrase("convention.dropout_eval", {"layer": self.name})])

    # forward and VJP, side by side
    def forward(self, xs: list) -> list:
        c = self.scale()
        return [np.asarray(x * self.mask_of(m, x) * c, dtype=object) for m, x in enumerate(xs)]

    def vjp(self, xs, ys, gys):
        c = self.scale()
        return [None if g is None else np.asarray(g * self.mask_of(m, x) * c, dtype=object)
                for m, (x, g) in enumerate(zip(xs, gys))], {}

    # formulas
    def _factor(self):
        """The scale as written in the formula: 1/(1 − p), 1 − p, or nothing."""
        c, p = self.scale(), Sym("p")
        if c == 1:
            return None
        return Frac(Const(scalar.Exact(1)), Paren(Op("-", (Const(scalar.Exact(1)), p)))) if self.p.train \
            else Paren(Op("-", (Const(scalar.Exact(1)), p)))

    def _form(self, x, mask):
        body = Op("odot", (x, mask)) if self.p.train else x
        factor = self._factor()
        return body if factor is None else mul(factor, Paren(body) if self.p.train else body)

    def forward_steps(self, flow: Flow) -> list:
        m = (flow.n or 1) - 1
        mask, x = Sym("m", bold=True), flow.x_sym
        bindings = {x: val(flow.x), mask: val(self.mask_of(m, flow.x)), Sym("p"): val(self.p.p)}
        return [Step(lhs=flow.y_sym, forms=[self._form(x, mask)], bindings=bindings, result=flow.y,
                     text=self.phrase("forward"))]

    def backward_steps(self, flow: Flow, gy, gx, grads, want_input) -> list:
        if not want_input:
            return []
        m = (flow.n or 1) - 1
        mask, g = Sym("m", bold=True), flow.d(flow.y_sym)
        bindings = {g: val(gy, "row"), mask: val(self.mask_of(m, flow.x), "row"), Sym("p"): val(self.p.p)}
        return [Step(lhs=flow.d(flow.x_sym), forms=[self._form(g, mask)], bindings=bindings, result=gx,
                     layout="row", text=self.phrase("backward"))]

    def phrase(self, direction: str) -> Phrase:
        """Training: the mask; evaluation: the identity (inverted) or the scale 1 − p (plain)."""
        mode = "" if self.p.train else "_eval" if self.inverted else "_eval_plain"
        return Phrase(f"{direction}.dropout{mode}", {"layer": self.name, "p": self.p.p})

