"""What every optimizer shares: the registry, one parameter's step, exact elementwise helpers.

An optimizer is one class per module of this package, registered with @optimizer under
PyTorch's name, holding its spec (`Params`, PyTorch's option names and defaults) and its
step rule.  The rule computes each new state tensor and shows it in the same call
(`ParamStep.show`: formula → numbers → result), so the value and its worked step
cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

import numpy as np
from pydantic import Field

from examsolver.engine.scalar import Exact, exact, factorize, sqrt
from examsolver.errors import EngineError
from examsolver.mathnodes import Call, Const, Deriv, Expr, Frac, Node, Op, Paren, Power, Sym, Value, children, mul
from examsolver.solution import Phrase, Step
from examsolver.spec.model import Strict

OPTIMIZERS: dict = {}
RING_LIMIT = 10**12          # scalar.py factors integers up to this size


def optimizer(name: str):
    """Class decorator: registers an optimizer under PyTorch's (lower-case) name."""

    def register(cls):
        cls.name = name
        OPTIMIZERS[name] = cls
        return cls

    return register


class Conventions(Strict):
    """Textbook variants of the update rules; the defaults are PyTorch's."""

    momentum: Literal["pytorch", "ema", "velocity"] = Field(
        "pytorch", description="SGD momentum: pytorch v ← μv + (1 − τ)g, θ ← θ − ηv (v = g at the first step); "
                               "ema v ← βv + (1 − β)g from v = 0; velocity v ← μv − ηg, θ ← θ + v")
    bias_correction: bool = Field(True, description="Adam/AdamW: divide the moments by 1 − βᵗ")
    clip_norm: Literal["pytorch", "exact"] = Field(
        "pytorch", description="clip_grad_norm_: pytorch scales by min(1, c/(‖g‖ + 10⁻⁶)); exact by min(1, c/‖g‖)")


# ----- hyperparameter symbols (one place for how each is written) -----------------
ETA, MU, LAMBDA, EPS, ALPHA = Sym("eta"), Sym("mu"), Sym("lambda"), Sym("epsilon"), Sym("alpha")
BETA1, BETA2, BETA = Sym("beta", sub="1"), Sym("beta", sub="2"), Sym("beta")


def shown_value(array, layout: str = "col") -> Node:
    """A value to put in a formula; a scalar other than a non-negative rational is parenthesized, so
    `0,5 · (−6√2/5)` and `(4,5 − 81√85/680)²` read right (inside √(…) and as a whole form it is not).
    Symbolic values (sympy, in symbolic update rules) are shown as expressions."""
    array = as_array(array)
    v = array[()] if array.ndim == 0 else None
    if v is not None and getattr(v, "is_Rational", False):      # a sympy number is written as one
        array, v = as_array(Exact(Fraction(int(v.p), int(v.q)))), Exact(Fraction(int(v.p), int(v.q)))
    if not is_exact(array):
        node = Expr(v if v is not None else _matrix(array))
        compound = v is not None and not v.is_Atom
        return Paren(node) if compound else node
    if v is not None and not (v.is_rational() and v.sign() >= 0):
        return Paren(Value(array, layout))
    return Value(array, layout)


def displayed(array, layout: str = "col"):
    """A result as a Step shows it: the array itself, or a sympy expression for symbolic values."""
    array = as_array(array)
    if is_exact(array):
        return array
    return Expr(array[()] if array.ndim == 0 else _matrix(array))


def is_exact(array) -> bool:
    return all(isinstance(v, Exact) for v in as_array(array).flat)


def _matrix(array):
    import sympy

    return sympy.Matrix(array.tolist()) if array.ndim == 2 else sympy.Matrix(list(array.flat))


def filled(theta: np.ndarray, value) -> np.ndarray:
    """theta's shape filled with value: Exact for exact parameters, sympy for symbolic ones."""
    out = np.empty(theta.shape, dtype=object)
    if is_exact(theta):
        out.fill(Exact(value) if not isinstance(value, Exact) else value)
    else:
        out.fill(exact(value).sympy())        # a number of the spec (0, an accumulator's start value)
    return out


def _walk(node):
    yield node
    for child in children(node):
        yield from _walk(child)


def with_eps(denominator: Node, eps) -> Node:
    """(denominator + ε), or the denominator alone when ε = 0 (as exam problems often take it)."""
    return Paren(denominator + EPS) if eps != 0 else denominator


@dataclass
class ParamStep:
    """One parameter in one step: its values before and after, and the steps that show them."""

    name: str
    sym: Sym                      # how the parameter is written (θ, W₁)
    tag: str                      # subscript of its state symbols ('' when there is one parameter)
    layout: str
    t: int
    theta: np.ndarray             # θ⁽ᵗ⁻¹⁾
    raw_grad: np.ndarray          # ∂L/∂θ at θ⁽ᵗ⁻¹⁾
    state: dict                   # state after step t − 1 (symbol key → array), updated in place
    loss: Node
    grad: np.ndarray = None       # the gradient after clipping (raw_grad without clipping)
    grad_form: Node = None        # how that gradient is written: ∂L/∂θ⁽ᵗ⁻¹⁾, c·∂L/∂θ⁽ᵗ⁻¹⁾, clip(…)
    grad_bindings: dict = field(default_factory=dict)
    blocks: list = field(default_factory=list)
    tidy: object = None           # applied to every symbolic result (e.g. collected by parameter)

    def __post_init__(self):
        if self.grad is None:
            self.grad = self.raw_grad
        if self.grad_form is None:
            self.grad_form = self.deriv()
        self.grad_bindings = {self.deriv(): self.raw_grad, **self.grad_bindings}

    def deriv(self) -> Deriv:
        return Deriv(self.loss, self.param(self.t - 1))

    def param(self, t: int) -> Sym:
        return self.sym.with_sup(f"({t})")

    def sym_of(self, key: str, t: int) -> Sym:
        """State symbol `key` at step t: m → m⁽ᵗ⁾, 'mhat' → m̂⁽ᵗ⁾, with the parameter's tag."""
        hat = key.endswith("hat")
        base = key[:-3] if hat else key
        sub = self.tag if base != "vmax" else ("max" + ("," + self.tag if self.tag else ""))
        return Sym("v" if base == "vmax" else base, sub=sub, sup=f"({t})", bold=self.theta.ndim > 0, hat=hat)

    def square(self, a: Node) -> Node:
        """a ⊙ a, or a² for a scalar parameter."""
        return Power(a, Const(2)) if self.theta.ndim == 0 else Op("odot", (a, a))

    def ratio(self, a: Node, b: Node) -> Node:
        """a ⊘ b, or a/b for a scalar parameter."""
        return Frac(a, b) if self.theta.ndim == 0 else Op("oslash", (a, b))

    def show(self, key: str, text: str | None, lhs: Node, form: Node, bindings: dict, result) -> np.ndarray:
        """Store `result` as state `key` (unless key is None) and add the step lhs = form = numbers = result."""
        result = as_array(result)
        if self.tidy is not None and not is_exact(result):
            result = as_array(np.frompyfunc(self.tidy, 1, 1)(result))
        if key is not None:
            self.state[key] = result
        bare = {form} | {a for node in _walk(form) if isinstance(node, Call) for a in node.args}
        shown = {node: v if isinstance(v, Node) else Value(v, self.layout) if node in bare else shown_value(v, self.layout)
                 for node, v in bindings.items()}
        self.blocks.append(Step(lhs=lhs, forms=[form], bindings=shown, result=displayed(result), layout=self.layout,
                                text=Phrase(text, {"name": self.sym}) if text else None))
        return result


class Optimizer:
    """Base of the optimizers: `Params` is the spec; `update` does one step of one parameter."""

    name = ""
    Params: type = Strict

    def __init__(self, params, conventions: Conventions):
        self.p, self.conventions = params, conventions
        try:
            self.check()
        except TypeError:       # a comparison of symbols (a symbolic update rule): nothing to refuse
            pass

    def check(self) -> None:
        """Raise ValueError for option combinations PyTorch (or the chosen convention) refuses."""

    # ----- PyTorch reference (exported check scripts) -----
    torch_state: dict = {}          # a state key → torch.optim's name for it (SGD's v: momentum_buffer)

    def torch(self, params: str) -> str | None:
        """torch.optim's optimizer over the script's `params` with these options (the Params are its
        names and defaults); None where a textbook convention departs from its rule."""
        if not self.torch_rules():
            return None
        options = ", ".join(f"{key}={_python(value)}" for key, value in self.p)
        return f"torch.optim.{type(self).__name__}({params}, {options})"

    def torch_rules(self) -> bool:
        """The update is torch.optim's (no textbook variant chosen in the conventions)."""
        return True

    def initial_state(self, theta: np.ndarray) -> dict:
        """State before the first step (symbol key → array); keys shown as results from step 1 on."""
        return {}

    def scalars(self, t: int) -> dict:
        """Step-wide scalars (bias corrections, the decayed learning rate): result name → value."""
        return {}

    def step_blocks(self, t: int) -> list:
        """Steps shared by every parameter of step t (the decayed learning rate), shown before theirs."""
        return []

    def update(self, ps: ParamStep) -> np.ndarray:
        """θ⁽ᵗ⁾ from ps (state updated in ps.state, steps in ps.blocks)."""
        raise NotImplementedError

    def conventions_used(self) -> list[Phrase]:
        return [Phrase(f"optim.convention.{self.name}", {})]

    def gradient(self, ps: ParamStep) -> np.ndarray:
        """g⁽ᵗ⁾: the (clipped) gradient, plus λθ⁽ᵗ⁻¹⁾ where weight decay is L2 (SGD, Adagrad, RMSprop, Adam)."""
        g_sym = ps.sym_of("g", ps.t)
        if self.l2_decay():
            lam, prev = self.p.weight_decay, ps.param(ps.t - 1)
            return ps.show("g", "optim.gradient_l2", g_sym, ps.grad_form + mul(LAMBDA, prev),
                           {**ps.grad_bindings, LAMBDA: lam, prev: ps.theta}, ps.grad + ps.theta * lam)
        return ps.show("g", "optim.gradient", g_sym, ps.grad_form, ps.grad_bindings, ps.grad)

    def l2_decay(self) -> bool:
        return getattr(self.p, "weight_decay", 0) != 0


# ----- exact elementwise arithmetic ------------------------------------------------
def as_array(value) -> np.ndarray:
    """Object array of Exact, also for 0-d results (numpy returns bare scalars for those)."""
    if isinstance(value, np.ndarray):
        return value
    out = np.empty((), dtype=object)
    out[()] = value
    return out


def elementwise(fn, *arrays) -> np.ndarray:
    return as_array(np.frompyfunc(fn, len(arrays), 1)(*arrays))


def esqrt(array) -> np.ndarray:
    return elementwise(root, array)


def root(x: Exact) -> Exact:
    """√x: exact where the ring holds it, a certified value past it (the value tower's sqrt; no factoring
    of large numbers here, which could take minutes)."""
    return sqrt(x)


def edivide(num, den) -> np.ndarray:
    return elementwise(divide, num, den)


def emax(a, b) -> np.ndarray:
    return elementwise(lambda x, y: y if y > x else x, a, b)


def divide(num, den) -> Exact:
    """num/den with square roots cleared from the denominator.

    Exact.reciprocal leaves a sum with a square root (√v̂ + ε, the denominator of every
    adaptive step) to sympy; here 1/(a + b√p) = (a − b√p)/(a² − p b²), one prime at a time,
    keeps it in the exact ring.  Written with Exact's public API only.
    """
    if den == 0:
        raise EngineError("the denominator √v + ε is 0 (a zero gradient entry with ε = 0; PyTorch gives nan): "
                          "give ε > 0 or other starting values")
    while not den.is_symbolic and len(den.terms) > 1 and (prime := _root_prime(den)) is not None:
        conjugate = _conjugate(den, prime)      # den · conjugate has no √ of a multiple of prime
        num, den = num * conjugate, den * conjugate
    return num / den


def _root_prime(x: Exact) -> int | None:
    """A prime under one of x's square roots, or None."""
    for mono in x.terms:
        for atom, _ in mono:
            if atom[0] == "sqrt":
                return min(factorize(atom[1]))
    return None


def _conjugate(x: Exact, prime: int) -> Exact:
    """x with √p ↦ −√p: every term whose square root's radicand p divides changes sign."""
    out = Exact(0)
    for mono, c in x.terms.items():
        term = Exact(c)
        for atom, k in mono:
            term = term * Exact.atom(atom, k)
        flips = any(atom[0] == "sqrt" and atom[1] % prime == 0 for atom, _ in mono)
        out = out - term if flips else out + term
    return out


def _python(value) -> str:
    """An option's value as Python: floats to the nearest float64, flags and tuples as they are."""
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_python(v) for v in value) + ")"
    return repr(float(value))
