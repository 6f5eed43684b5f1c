"""Scaled dot-product attention, single head, on one sequence X (n tokens × d features) per example.

    Q = X W_qᵀ + b_q,  K = X W_kᵀ + b_k,  V = X W_vᵀ + b_v   (each projection optional: X itself)
    S = Q Kᵀ / √d_k,   A = softmax(S) row by row,   Y = A V

as torch.nn.functional.scaled_dot_product_attention(Q, K, V, attn_mask, is_causal, scale) computes it,
the projections in PyTorch's layout (out × in, as nn.Linear), or with `conventions: {weights: in_out}`
stored in × out, Q = X W_q + b_q: kept as given, so each weight, its gradient ∂L/∂W_q = Xᵀ ∂L/∂Q
and its update are in the spec's layout.  A boolean mask follows PyTorch: true (1)
where a query may attend to a key, false (0) where the score is −∞, i.e. where the weight is exactly 0;
`is_causal: true` keeps the lower triangle.  The softmax is exact (values of the scalar tower).
"""

from __future__ import annotations

from examsolver.engine import scalar
from examsolver.engine.ops.base import Flow, Layer, NoParams, layer, val
from examsolver.engine.tensor import tdot, zeros
from examsolver.errors import EngineError
from examsolver.mathnodes import Const, Frac, Op, Paren, Sym, call, mul
from examsolver.solution import Phrase, Step
from examsolver.spec.model import Number, Tensor

ROLES = ("q", "k", "v")


class AttentionParams(NoParams):
    W_q: Tensor | None = None
    W_k: Tensor | None = None
    W_v: Tensor | None = None
    b_q: Tensor | None = None
    b_k: Tensor | None = None
    b_v: Tensor | None = None
    mask: list[list[bool]] | None = None
    is_causal: bool = False
    scale: Number | None = None           # PyTorch's default: 1/√d_k


class _Largest:
    """Orders exact values by their exact comparison (max's key)."""

    def __init__(self, value):
        self.value = value

    def __lt__(self, other):
        return self.value < other.value


@layer
class Attention(Layer):
    kind = "attention"
    Params = AttentionParams
    printed = {"latex": "\\mathrm{attention}", "plain": "attention"}
    layout_weights = tuple(f"W_{role}" for role in ROLES)

    @property
    def transposed(self) -> bool:
        """The projections stored input × output, Q = X W_q (conventions: {weights: in_out})."""
        return self.conventions.weights == "in_out"

    def _matrix(self, role: str):
        """W_role as nn.Linear holds it (out × in), whatever the layout it is given in; None: no projection."""
        W = self.weights.get(f"W_{role}")
        return W.T if W is not None and self.transposed else W

    def init_weights(self) -> dict:
        weights = {}
        layout = "in × out" if self.transposed else "out × in"
        for role in ROLES:
            W, b = getattr(self.p, f"W_{role}"), getattr(self.p, f"b_{role}")
            if W is not None:
                if W.ndim != 2:
                    raise EngineError(f"{self.name}: W_{role} must be a matrix ({layout}), got shape {W.shape}")
                weights[f"W_{role}"] = W
            if b is not None:
                outputs = None if W is None else W.shape[1 if self.transposed else 0]
                if outputs is None or b.reshape(-1).shape != (outputs,):
                    raise EngineError(f"{self.name}: b_{role} needs W_{role} and one entry per output of it "
                                      f"({'column' if self.transposed else 'row'})")
                weights[f"b_{role}"] = b.reshape(-1)
        if self.p.mask is not None and self.p.is_causal:
            raise EngineError(f"{self.name}: give either mask or is_causal, not both (as PyTorch)")
        self._memo: dict = {}
        return weights

    @classmethod
    def param_shapes(cls, sizes: dict) -> dict[str, tuple[int, ...]]:
        """W_q, W_k: d_k × d_model, W_v: d_v × d_model, with biases unless `bias: false`."""
        d, d_k, d_v = sizes["embed_dim"], sizes.get("d_k", sizes["embed_dim"]), sizes.get("d_v", sizes["embed_dim"])
        # out × in as PyTorch; counting transposes the layout_weights under in_out
        shapes = {"W_q": (d_k, d), "W_k": (d_k, d), "W_v": (d_v, d)}
        if sizes.get("bias", True):
            shapes.update({"b_q": (d_k,), "b_k": (d_k,), "b_v": (d_v,)})
        return shapes

    def weight_sym(self, key: str) -> Sym:
        """W_q → W_q as the formulas write it (the role is the subscript)."""
        base, _, role = key.partition("_")
        return Sym(base, role, bold=True)

    def check_input(self, x):
        if x.ndim != 2:
            raise EngineError(f"{self.name}: attention reads a sequence X (tokens × features), got shape {x.shape}")
        dims = {}
        for role in ROLES:
            W = self._matrix(role)
            if W is not None and W.shape[1] != x.shape[1]:
                raise EngineError(f"{self.name}: W_{role} takes {W.shape[1]} features, X has {x.shape[1]}")
            dims[role] = x.shape[1] if W is None else W.shape[0]
        if dims["q"] != dims["k"]:
            raise EngineError(f"{self.name}: queries have {dims['q']} features and keys {dims['k']}: QKᵀ needs equal")
        allowed = self._allowed(x.shape[0])
        if not all(any(row) for row in allowed):
            raise EngineError(f"{self.name}: a query's every key is masked (PyTorch would give NaN)")

    def _allowed(self, n: int) -> list:
        if self.p.mask is not None:
            if len(self.p.mask) != n or any(len(row) != n for row in self.p.mask):
                raise EngineError(f"{self.name}: the mask must be {n} × {n} (queries × keys)")
            return self.p.mask
        return [[not self.p.is_causal or j <= i for j in range(n)] for i in range(n)]

    def conventions_used(self):
        return [Phrase("convention.attention_in_out", {})] if self.transposed else []

    @property
    def masked(self) -> bool:
        return self.p.mask is not None or self.p.is_causal

    def _scale(self, d_k: int):
        return self.p.scale if self.p.scale is not None else 1 / scalar.sqrt(scalar.Exact(d_k))

    # forward and VJP, side by side
    def _project(self, x, role: str):
        W, b = self._matrix(role), self.weights.get(f"b_{role}")
        out = x if W is None else tdot(x, W.T)
        return out if b is None else out + b

    def parts(self, x) -> dict:
        """Q, K, V, the scores S, the weights A and the output Y of one example (kept for its passes)."""
        key = (id(x),) + tuple(id(w) for w in self.weights.values())      # new weights (a training step): anew
        held = (x, *self.weights.values())
        if key in self._memo and all(a is b for a, b in zip(self._memo[key][0], held)):
            return self._memo[key][1]
        Q, K, V = (self._project(x, role) for role in ROLES)
        c = self._scale(Q.shape[1])
        S = tdot(Q, K.T) * c
        A = zeros(S.shape)
        for i, row in enumerate(self._allowed(x.shape[0])):
            kept = [j for j, keep in enumerate(row) if keep]
            top = max((S[i, j] for j in kept), key=_Largest)          # softmax(s) = softmax(s − max s), exactly
            exps = {j: scalar.exp(S[i, j] - top) for j in kept}
            total = sum(exps.values(), scalar.Exact(0))
            for j, e in exps.items():
                A[i, j] = e / total
        out = {"Q": Q, "K": K, "V": V, "S": S, "A": A, "Y": tdot(A, V), "c": c}
        self._memo[key] = (held, out)
        return out

    def forward_one(self, x):
        return self.parts(x)["Y"]

    def vjp_one(self, x, y, gy):
        p = self.parts(x)
        A, c = p["A"], p["c"]
        g = {"v": tdot(A.T, gy)}                                     # ∂L/∂V = Aᵀ ∂L/∂Y
        gA = tdot(gy, p["V"].T)                                     # ∂L/∂A = ∂L/∂Y Vᵀ
        gS = self.softmax_vjp(A, gA)
        g["q"], g["k"] = tdot(gS, p["K"]) * c, tdot(gS.T, p["Q"]) * c
        gx, grads = zeros(x.shape), {}
        for role in ROLES:
            W = self._matrix(role)
            if W is None:
                gx = gx + g[role]
                continue
            # ∂L/∂W = ∂L/∂Qᵀ X (out × in); stored in × out, its transpose Xᵀ ∂L/∂Q
            grads[f"W_{role}"] = tdot(x.T, g[role]) if self.transposed else tdot(g[role].T, x)
            if f"b_{role}" in self.weights:
                grads[f"b_{role}"] = g[role].sum(axis=0)
            gx = gx + tdot(g[role], W)
        return gx, grads

    @staticmethod
    def softmax_vjp(A, gA):
        """∂L/∂S = A ⊙ (∂L/∂A − rowsum(∂L/∂A ⊙ A)), row by row (masked entries: A = 0, so 0)."""
        rowsum = (gA * A).sum(axis=1)
        return A * (gA - rowsum.reshape(-1, 1))

    def torch(self, x, weights):
        """torch's own scaled_dot_product_attention after the projections (nn.Linear's layout: an
        in × out weight is given transposed)."""
        def proj(role):
            if f"W_{role}" not in weights:
                return x
            W = weights[f"W_{role}"] + (".T" if self.transposed else "")
            return f"F.linear({x}, {W}, {weights.get(f'b_{role}', 'None')})"
        options = ""
        if self.p.mask is not None:
            options += f", attn_mask=torch.tensor({self.p.mask})"
        if self.p.is_causal:
            options += ", is_causal=True"
        if self.p.scale is not None:
            options += f", scale={float(self.p.scale)!r}"
        return f"F.scaled_dot_product_attention({proj('q')}, {proj('k')}, {proj('v')}{options})"

    # formulas
    def _sym(self, flow: Flow, name: str) -> Sym:
        return Sym(name, bold=True).of_example(flow.n)

    def _scale_node(self, d_k: int):
        if self.p.scale is not None:
            return Const(self.p.scale), {}
        d = Sym("d", "k")
        return Frac(Const(1), call("sqrt", d)), {d: val(d_k)}

    def forward_steps(self, flow: Flow) -> list:
        p, X = self.parts(flow.x), flow.x_sym
        Q, K, V, S, A = (self._sym(flow, n) for n in ("Q", "K", "V", "S", "A"))
        steps = []
        for role, sym in zip(ROLES, (Q, K, V)):
            W = Sym("W", role, bold=True)
            if f"W_{role}" in self.weights:
                laid = W if self.transposed else W.T          # X W_q (in × out) or X W_qᵀ (out × in)
                form, bindings = mul(X, laid), {X: val(flow.x), laid: val(self._matrix(role).T)}
                if f"b_{role}" in self.weights:
                    b = Sym("b", role, bold=True)
                    form = Op("+", (form, b))
                    bindings[b] = val(self.weights[f"b_{role}"], "row")
                text = Phrase("attention.projections_in_out" if self.transposed else "attention.projections", {})
                steps.append(Step(lhs=sym, forms=[form], bindings=bindings, result=p[role.upper()],
                                  text=None if steps else text))
        scale, bindings = self._scale_node(p["Q"].shape[1])
        bindings.update({Q: val(p["Q"]), K.T: val(p["K"].T)})
        steps.append(Step(lhs=S, forms=[mul(scale, mul(Q, K.T))], bindings=bindings, result=p["S"],
                          text=Phrase("attention.scores", {})))
        steps.append(Step(lhs=A, forms=[call("softmax", S)], bindings={S: val(p["S"])}, result=p["A"],
                          text=Phrase("attention.weights_masked" if self.masked else "attention.weights", {})))
        steps.append(Step(lhs=flow.y_sym, forms=[mul(A, V)], bindings={A: val(p["A"]), V: val(p["V"])},
                          result=flow.y, text=Phrase("attention.output", {})))
        steps[0].text = Phrase("forward.attention", {"layer": self.name, "details": steps[0].text or ""})
        return steps

    def backward_steps(self, flow: Flow, gy, gx, grads, want_input) -> list:
        p = self.parts(flow.x)
        X, Y = flow.x_sym, flow.y_sym
        Q, K, V, S, A = (self._sym(flow, n) for n in ("Q", "K", "V", "S", "A"))
        d = flow.d
        gA = tdot(gy, p["V"].T)
        gS = self.softmax_vjp(p["A"], gA)
        values = {"q": tdot(gS, p["K"]) * p["c"], "k": tdot(gS.T, p["Q"]) * p["c"], "v": tdot(p["A"].T, gy)}
        scale, scale_bindings = self._scale_node(p["Q"].shape[1])
        rowsum = call("rowsum", Op("odot", (d(A), A)))
        steps = [
            Step(lhs=d(V), forms=[mul(A.T, d(Y))], bindings={A.T: val(p["A"].T), d(Y): val(gy)}, result=values["v"]),
            Step(lhs=d(A), forms=[mul(d(Y), V.T)], bindings={d(Y): val(gy), V.T: val(p["V"].T)}, result=gA),
            Step(lhs=d(S), forms=[Op("odot", (A, Paren(Op("-", (d(A), rowsum)))))],
                 bindings={A: val(p["A"]), d(A): val(gA), rowsum: val((gA * p["A"]).sum(axis=1))}, result=gS,
                 text=Phrase("attention.softmax_backward", {})),
            Step(lhs=d(Q), forms=[mul(scale, mul(d(S), K))],
                 bindings={**scale_bindings, d(S): val(gS), K: val(p["K"])}, result=values["q"]),
            Step(lhs=d(K), forms=[mul(scale, mul(d(S).T, Q))],
                 bindings={**scale_bindings, d(S).T: val(gS.T), Q: val(p["Q"])}, result=values["k"]),
        ]
        terms = []
        for role, sym in zip(ROLES, (Q, K, V)):
            W = Sym("W", role, bold=True)
            if f"W_{role}" not in self.weights:
                terms.append(d(sym))
                continue
            if f"W_{role}" in grads:
                form, bindings = (mul(X.T, d(sym)), {X.T: val(flow.x.T), d(sym): val(values[role])}) \
                    if self.transposed else (mul(d(sym).T, X), {d(sym).T: val(values[role].T), X: val(flow.x)})
                steps.append(Step(lhs=d(W), forms=[form], bindings=bindings, result=grads[f"W_{role}"]))
            if f"b_{role}" in grads:
                steps.append(Step(lhs=d(Sym("b", role, bold=True)), forms=[call("colsum", d(sym))],
                                  bindings={d(sym): val(values[role])}, result=grads[f"b_{role}"], layout="row"))
            terms.append(mul(d(sym), W.T if self.transposed else W))
        if want_input:
            steps.append(Step(lhs=d(X), forms=[Op("+", tuple(terms))], result=gx,
                              text=Phrase("attention.input_backward", {})))
        steps[0].text = Phrase("backward.attention", {"layer": self.name})
        return steps
