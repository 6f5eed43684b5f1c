"""What every layer and loss provides, and the registries the engine dispatches on.

A layer is one class holding everything about it: the schema of its spec
parameters, forward and vector-Jacobian product side by side, the formulas of
both passes (as mathnodes with the names left as slots), its parameter count
and its phrase keys (`forward.<kind>`, `backward.<kind>`).  The engine and the
renderers never branch on a layer's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from examsolver.engine.graph import GraphOp
from examsolver.mathnodes import Deriv, Node, Op, Paren, Sym, Through, Value
from examsolver.solution import Phrase, Step

LAYERS: dict = {}
LOSSES: dict = {}
DERIVATION_ONLY: dict = {}   # ops of matrix-calculus derivations only (a generic activation f)
MATRIX_NAME = r"^[A-Za-z][A-Za-z0-9_]{0,30}$"     # a name in a matrix-calculus derivation (W1, b1, h)


def layer(cls):
    """Class decorator: register a layer kind."""
    LAYERS[cls.kind] = cls
    return cls


def derivation_only(cls):
    """Class decorator: register an op that exists only in matrix-calculus derivations (no numbers)."""
    DERIVATION_ONLY[cls.kind] = cls
    return cls


def printed_functions(notation: str) -> dict:
    """fn name → how the layers say it is written in `notation` (latex, plain): printers read this."""
    return {cls.fn_name or cls.kind: cls.printed[notation] for cls in LAYERS.values() if notation in cls.printed}


def loss(cls):
    """Class decorator: register a loss kind."""
    LOSSES[cls.kind] = cls
    return cls


class NoParams(BaseModel):
    # defer_build: a layer's validator is built when a spec first uses that layer kind
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, validate_default=True,
                              defer_build=True)
    name: str | None = None
    out: str | None = None
    inputs: list[str] | None = None      # names of the nodes it reads (default: the layer before it)


class LossParams(NoParams):
    """A loss's options; `reduction` is PyTorch's over the minibatch (the tasks' `reduction` when not given)."""

    reduction: Literal["mean", "sum"] | None = None


@dataclass
class Flow:
    """One example's view of a layer: symbols and values in and out."""

    n: int | None          # example number (1-based), None when there is one example
    x_sym: Sym
    y_sym: Sym
    x: np.ndarray
    y: np.ndarray
    loss: Sym | None = None   # the loss differentiated; default L⁽ⁿ⁾ of this example
    more: tuple = ()          # (symbol, value) of the inputs after the first, for ops that read several
    gys: list | None = None   # every example's upstream gradient (None: zero), for ops that mix examples
    shared: frozenset = frozenset()   # inputs that other nodes read too: this layer gives a share of theirs
    via: Sym | None = None            # this layer's output, naming its share (∂L/∂x|via h₃)

    @property
    def loss_sym(self) -> Sym:
        return self.loss if self.loss is not None else Sym("L").of_example(self.n)

    def d(self, of: Node) -> Node:
        """∂L/∂(of) for this example's loss; for an input other nodes read too, this layer's share."""
        deriv = Deriv(self.loss_sym, of)
        return Through(deriv, self.via) if of in self.shared else deriv


def val(value, layout: str = "col") -> Value:
    return Value(value, layout)


def channels(sym: Sym, value: np.ndarray):
    """Feature maps one by one (h_{11}, h_{12}, …) when the tensor has channels."""
    if value.ndim >= 2:
        return [(sym.with_sub(str(k + 1)), value[k]) for k in range(value.shape[0])]
    return [(sym, value)]


def symbol_for(value, base: str, sub: str = "") -> Sym:
    return Sym(base, sub, bold=np.ndim(value) > 0)


class MatrixArgs(BaseModel):
    """A layer in a matrix-calculus layer list: the name of its output (a, h, z, o)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    out: str = Field(pattern=MATRIX_NAME)


class Layer:
    """A layer of a sequential model; subclasses register with @layer."""

    kind: ClassVar[str]
    Params: ClassVar[type] = NoParams
    is_activation: ClassVar[bool] = False
    positionwise: ClassVar[bool] = False    # each position on its own (batchnorm, dropout): receptive fields pass
    keeps_symbol: ClassVar[bool] = False    # batchnorm writes ĥ for the h it normalises
    arity: ClassVar[int] = 1                # how many nodes it reads (0: any number from two up)
    weight_aliases: ClassVar[dict] = {}     # other names a task may use for a weight (conv's W: kernels)
    fn_name: ClassVar[str | None] = None    # the function the printers write for it (sigma, avg, …); default: kind
    printed: ClassVar[dict] = {}            # how printers write that function: {"latex": …, "plain": …}
    size_symbols: ClassVar[dict] = {}       # counting: the letter of each size (hidden_size: d_h)
    count_options: ClassVar[tuple] = ()     # counting: options that are no sizes (an LSTM's biases: one/two)
    layout_weights: ClassVar[tuple] = ()    # weight matrices `conventions: {weights: in_out}` stores in × out
    stats: dict = {}                        # statistics a forward pass computed (batchnorm's μ, σ², x̂)
    # spatial-size algebra (engine/shapes.py infers an image size through these)
    spatial: ClassVar[bool] = False         # has out_extent / in_extent / out_channels (conv2d, pooling)
    padded: ClassVar[bool] = False          # its zero padding may be varied (the padding alternatives)
    flattens: ClassVar[bool] = False        # turns feature maps into one vector
    preserves_shape: ClassVar[bool] = False  # output shape = input shape (activations, normalisation)

    def __init__(self, params, position: int, conventions):
        self.p = params
        self.position = position           # 0-based index in the model
        self.conventions = conventions
        self.name = getattr(params, "name", None) or f"{self.kind}{position + 1}"
        self.weights: dict = self.init_weights()
        self.number = _trailing_digits(self.name) or str(position + 1)

    # ----- parameters -----------------------------------------------------
    def init_weights(self) -> dict:
        return {}

    def weight_sym(self, key: str) -> Sym:
        value = self.weights[key]
        return Sym(key, self.number, bold=np.ndim(value) > 0)

    def weight_layout(self, key: str) -> str:
        """A weight 'W' given as one row is printed as a row."""
        return "row" if key == "W" and np.ndim(self.weights[key]) == 1 else "col"

    def param_count(self) -> int:
        return sum(int(np.size(w)) for w in self.weights.values())

    @classmethod
    def param_shapes(cls, sizes: dict) -> dict[str, tuple[int, ...]]:
        """Trainable tensors' shapes from sizes alone (no weights): the counting problem kind asks this."""
        from examsolver.errors import EngineError

        raise EngineError(f"no parameter count for {cls.kind}")

    io_role: ClassVar[str] = "counting.role.io"      # the counting table's word for the io_shapes rows

    @classmethod
    def io_shapes(cls, sizes: dict) -> dict:
        """Shapes of the quantities it reads and writes (x(t), h(t) of a cell) for counting; none by default."""
        return {}

    @classmethod
    def window(cls, sizes: dict) -> tuple | None:
        """What one output position sees of the layer's input, for receptive fields: (span, stride) per
        spatial axis; () for a layer that maps every position on its own (activations, `positionwise`
        layers); None, the default otherwise: every output sees the whole input (fully connected, flatten,
        global pooling)."""
        return () if cls.is_activation or cls.positionwise else None

    @classmethod
    def buffer_shapes(cls, sizes: dict) -> dict[str, tuple[int, ...]]:
        """Stored but not trained tensors (batchnorm's running statistics); none by default."""
        return {}

    def input_channels(self) -> int | None:
        """The channels the layer expects (a convolution's kernels say it); None: any."""
        return None

    # ----- symbols --------------------------------------------------------
    def formula(self, x: Node) -> Node:
        """The layer applied to x as one formula (a model written out: avg(relu(x ⋆ w + b)))."""
        from examsolver.mathnodes import Call

        return Call(self.fn_name or self.kind, (x,))

    def output_symbol(self, x_sym: Sym, counter: int, y_example) -> tuple[Sym, int]:
        if self.p.out:
            return _parse_symbol(self.p.out, y_example), counter
        if self.keeps_symbol:
            return x_sym.hatted(), counter
        return symbol_for(y_example, "h", str(counter + 1)), counter + 1

    # ----- passes ----------------------------------------------------------
    def check_input(self, x: np.ndarray) -> None:
        """Raise EngineError when x cannot enter this layer."""

    def forward(self, xs: list) -> list:
        return [self.forward_one(x) for x in xs]

    def forward_one(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def vjp(self, xs: list, ys: list, gys: list) -> tuple[list, dict]:
        """Gradients for a batch; gys[m] is None where the upstream gradient is zero."""
        gxs, grads = [], {}
        for x, y, gy in zip(xs, ys, gys):
            if gy is None:
                gxs.append(None)
                continue
            gx, g = self.vjp_one(x, y, gy)
            gxs.append(gx)
            for key, value in g.items():
                grads[key] = grads[key] + value if key in grads else value
        return gxs, grads

    def vjp_one(self, x, y, gy) -> tuple[np.ndarray, dict]:
        raise NotImplementedError

    # ops that read several nodes (arity ≠ 1) implement these instead: one batch per input
    def forward_many(self, batches: list) -> list:
        raise NotImplementedError

    def vjp_many(self, batches: list, ys: list, gys: list) -> list:
        """One list of per-example gradients per input."""
        raise NotImplementedError

    # ----- presentation --------------------------------------------------
    def batch_steps(self, xs: list, x_syms: list) -> list:
        """Steps computed over the whole minibatch before the per-example ones."""
        return []

    def forward_steps(self, flow: Flow) -> list:
        return []

    def backward_steps(self, flow: Flow, gy, gx, grads: dict, want_input: bool) -> list:
        return []

    # ----- PyTorch reference (exported check scripts) ------------------------
    def torch(self, x: str, weights: dict) -> str | None:
        """The layer in PyTorch: an expression of x, a batch of inputs (first axis: the examples),
        with the layer's own settings and the problem's conventions applied; weights maps each key
        of self.weights to the script's variable holding it.  None: no PyTorch equivalent.
        Ops that read several nodes (arity ≠ 1) get x as a list, one expression per input."""
        return None

    def phrase(self, direction: str) -> Phrase:
        return Phrase(f"{direction}.{self.kind}", {"layer": self.name})

    # ----- matrix calculus (the symbolic kind's backprop task, engine/backprop.py) ------------
    # The rules receive `m`, the layer's view of the derivation: its args (MatrixArgs), the input's
    # name, node, size and entries, and the calls param / param_gradient / input_gradient / refuse.
    MatrixArgs: ClassVar[type] = MatrixArgs    # its keys in a layer list there (default: out only)

    @classmethod
    def matrix_forward(cls, m) -> Node:
        """Declare the parameters (m.param), set m.value (the output's entries, sympy) and m.out_size;
        return the output's formula.  Default: a function of the input alone, from sympy_forward."""
        layer = cls.with_defaults()
        m.value = layer.sympy_forward(m.x, m.exp) if layer else None
        if m.value is None:
            m.refuse(f"{cls.kind} has no symbolic (matrix-calculus) form")
        return layer.formula(m.x_node)

    @classmethod
    def matrix_backward(cls, m) -> None:
        """Give the gradients of the parameters (m.param_gradient) and, when m.wants_input, of the
        input (m.input_gradient), each in its general and its closed form.  Default: none known."""
        m.refuse(f"{cls.kind} has no symbolic (matrix-calculus) derivative rule")

    @classmethod
    def with_defaults(cls):
        """The layer with its default options (a derivation gives none); None when it needs some."""
        from pydantic import ValidationError

        try:
            return cls(cls.Params(), 0, _default_conventions())
        except ValidationError:
            return None

    def sympy_forward(self, x, exp):
        """The output's entries as sympy expressions of the input's (a column Matrix), with `exp` as
        the exponential; None: no symbolic form (the default)."""
        return None

    def conventions_used(self) -> list[Phrase]:
        """The choices this layer made that a reader must know (DESIGN.md table)."""
        return []

    def degeneracies(self, xs: list) -> list[Phrase]:
        """Warnings where this input sits exactly at a convention's edge."""
        return []


class LayerOp(GraphOp):
    """A layer as a graph op: inputs are the batches it reads, then its parameters (in `keys` order).

    The layer computes from its `weights`, so the parameter nodes' values are bound
    to it before each pass; state a forward pass leaves on the layer (batchnorm's
    statistics) is kept per node, so one layer may be applied at several nodes.
    """

    def __init__(self, layer: Layer, keys: tuple, arity: int):
        self.layer, self.keys, self.arity = layer, tuple(keys), arity
        self.state: dict = {}

    def _bind(self, values: list) -> None:
        self.layer.__dict__.update(self.state)
        self.layer.weights.update(zip(self.keys, values[self.arity:]))

    def forward(self, values: list):
        self._bind(values)
        batches = values[:self.arity]
        out = self.layer.forward(batches[0]) if self.layer.arity == 1 else self.layer.forward_many(batches)
        self.state = {k: v for k, v in vars(self.layer).items() if k == "stats"}
        return out

    def vjp(self, values: list, out, g, needs: list) -> list:
        self._bind(values)
        batches = values[:self.arity]
        if self.layer.arity == 1:
            gxs, grads = self.layer.vjp(batches[0], out, g)
            gins = [gxs]
        else:
            gins, grads = self.layer.vjp_many(batches, out, g), {}
            if isinstance(gins, tuple):
                gins, grads = gins
        return [gx if need else None for gx, need in zip(gins, needs)] + [grads.get(k) for k in self.keys]


class Loss:
    """A loss on the model output; subclasses register with @loss."""

    kind: ClassVar[str]
    Params: ClassVar[type] = LossParams
    output_name: ClassVar[str] = "s"     # what the slides call the model output it reads (MSE: o)
    fuses_with: ClassVar[str | None] = None  # final activation whose gradient combines to p − y
    class_index_targets: ClassVar[bool] = False  # a scalar label is a class index (PyTorch: an integer tensor)

    def __init__(self, params):
        self.p = params

    def check_target(self, output: np.ndarray, target) -> None:
        """Raise EngineError when the target does not fit the output."""

    def value(self, output, target):
        raise NotImplementedError

    def grad(self, output, target):
        raise NotImplementedError

    def fused_grad(self, output, target):
        """∂L/∂s through the final activation it fuses with (p − y)."""
        raise NotImplementedError

    def conventions_used(self) -> list[Phrase]:
        return []

    def fused_conventions(self) -> list[Phrase]:
        """What the solution says when the loss is differentiated together with its final activation."""
        return [Phrase(f"convention.fused_{self.kind}", {})]

    def degeneracies(self, outputs: list, targets: list) -> list[Phrase]:
        """Warnings where an example's output sits exactly at a kink of the loss (L1 at o = y)."""
        return []

    # ----- matrix calculus (the symbolic kind's backprop task): m gives the output o and the target
    # g as entries (m.o, m.g) and nodes (m.o_node, m.g_node), the output size m.K, sympy (m.sp)
    target_is_distribution: ClassVar[bool] = False   # its rules assume Σg = 1 (the check substitutes it)

    @classmethod
    def with_defaults(cls):
        """The loss with its default options (a derivation gives none); None when it needs some."""
        from pydantic import ValidationError

        try:
            return cls(cls.Params())
        except ValidationError:
            return None

    def sympy_value(self, output, target):
        """L from the entries of the output and the target (column Matrices); None: no symbolic form."""
        return None

    def matrix_loss(self, m) -> Node | None:
        """L written with o, g and K; None: no symbolic form (the default)."""
        return None

    def matrix_grad(self, m):
        """(∂L/∂o as a formula, its entries); None: no symbolic gradient on its own (the default)."""
        return None

    def matrix_fused_grad(self, m):
        """(∂L/∂z as a formula, its entries), z the input of the final activation it fuses with
        (m.z_node); None: none (the default)."""
        return None

    def torch(self, output: str, target: str) -> str | None:
        """The loss of each example in PyTorch (a vector over the batch's first axis), from the
        model's output and the targets.  None: no PyTorch equivalent."""
        return None

    def steps(self, flow: Flow, target, value) -> list[Step]:
        return []

    def grad_steps(self, flow: Flow, s_sym: Sym | None, target, grad) -> list[Step]:
        return []


class LossOp(GraphOp):
    """Per-example losses of a batch: inputs are the outputs p (and, when fused, the scores s before
    the final activation, through which the gradient p − y flows as in PyTorch's loss on logits)."""

    def __init__(self, loss: Loss, targets: list, fused: bool):
        self.loss, self.targets, self.fused = loss, targets, fused

    def forward(self, values: list):
        return [self.loss.value(p, y) for p, y in zip(values[0], self.targets)]

    def vjp(self, values: list, out, g, needs: list) -> list:
        grad = self.loss.fused_grad if self.fused else self.loss.grad
        gs = [None if gm is None else grad(p, y) * gm for p, y, gm in zip(values[0], self.targets, g)]
        return [None, gs] if self.fused else [gs]


class BatchLoss(GraphOp):
    """The minibatch loss: the mean or the sum of the examples' losses."""

    def __init__(self, reduction: str):
        self.reduction = reduction

    def _scale(self, n: int):
        from examsolver.engine.scalar import Exact

        return Exact(1) / n if self.reduction == "mean" else Exact(1)

    def forward(self, values: list):
        from examsolver.engine.scalar import Exact

        return sum(values[0], Exact(0)) * self._scale(len(values[0]))

    def vjp(self, values: list, out, g, needs: list) -> list:
        return [[g * self._scale(len(values[0]))] * len(values[0])]


def odot(a, b) -> Op:
    """a ⊙ b, a matrix product on the left parenthesized: (W₂ᵀ(o − g)) ⊙ 𝟙[a > 0]."""
    return Op("odot", (Paren(a) if isinstance(a, Op) and a.op == "mul" else a, b))


def grouped(n: Node) -> Node:
    """A sum or a Hadamard product parenthesized before ⊙ or a product."""
    return Paren(n) if isinstance(n, Op) and n.op in ("+", "-", "odot") else n


def _default_conventions():
    from examsolver.spec.model import Conventions

    return Conventions()


def _trailing_digits(name: str) -> str:
    digits = ""
    for ch in reversed(name):
        if not ch.isdigit():
            break
        digits = ch + digits
    return digits


def _parse_symbol(text: str, example) -> Sym:
    """'h_1' → h₁, 'hhat_1' → ĥ₁, 's' → s (bold when the value is a tensor)."""
    base, _, sub = text.partition("_")
    hat = base.endswith("hat") and len(base) > 3
    if hat:
        base = base[:-3]
    return Sym(base, sub, hat=hat, bold=np.ndim(example) > 0)
