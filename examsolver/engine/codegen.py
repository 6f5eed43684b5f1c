"""numpy source generated from sympy expressions the engine built (never from spec text).

Why a printer of our own: sympy's NumPy printer writes softplus as
log(exp(x) + 1), which overflows at x = 1000 (exp → inf) and turns the backward
pass into nan.  Here σ and softplus (see symfuncs) are printed as stable numpy:
softplus(u) → np.logaddexp(0, u), σ(u) → a helper that only ever takes exp(−|u|).
The classes follow the `Layer` interface of the course's second lab:
forward(inputs), backward_inputs(grads), backward_params(grads).

User symbols keep their names in the code (it is read by students); every name the generator
adds itself starts with an underscore, which no symbol name can (they start with a letter), and
the code calls no builtin a symbol could shadow, so no declared name can change what it computes.
A name reaches the code only when it is a plain identifier (`_plain`: the spec's schema asks the
same, this is the printer's own guard), and text in docstrings is escaped (examsolver.pysource).
"""

from __future__ import annotations

import textwrap
from functools import lru_cache

from examsolver.errors import EngineError
from examsolver.pysource import escaped, is_plain_name, literal

SIGMOID_HELPER = '''
def _sigmoid(x):
    """σ(x) without overflow: exp is only ever taken of −|x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))
'''

LAYER_BASE = '''
class Layer:
    """The interface of the second lab: forward, backward_inputs, backward_params."""

    def forward(self, inputs):
        raise NotImplementedError

    def backward_inputs(self, grads):
        raise NotImplementedError

    def backward_params(self, grads):
        raise NotImplementedError
'''


@lru_cache(maxsize=None)
def _printer_class():
    from sympy.printing.numpy import NumPyPrinter

    from examsolver.engine.symfuncs import functions

    Sigmoid, Softplus = functions()

    class StablePrinter(NumPyPrinter):
        def _module_format(self, fqn, register=True):
            """numpy.exp → np.exp: the code imports numpy once, under the course's name."""
            if fqn.startswith("numpy."):
                fqn = "np." + fqn[len("numpy."):]
            return super()._module_format(fqn, register)

        def _print_Function(self, expr):
            if isinstance(expr, Sigmoid):
                return f"_sigmoid({self._print(expr.args[0])})"
            if isinstance(expr, Softplus):
                return f"np.logaddexp(0, {self._print(expr.args[0])})"
            return super()._print_Function(expr)

    return StablePrinter


class NoNumericForm(EngineError):
    """The spec asks for code or a plot of an expression numpy cannot compute (J(θ) left unspecified)."""


class UnsafeName(EngineError):
    """A name that cannot stand in generated code as it is."""


def _plain(name: str) -> str:
    """name, written into code as it is: a plain identifier, else refused."""
    if not is_plain_name(name):
        raise UnsafeName(f"{name!r} cannot name anything in generated code (ASCII letters, digits and _, "
                         "a letter first, no Python keyword)")
    return name


def to_numpy(expr) -> str:
    """One numpy expression; names are the sympy symbols' names."""
    from sympy.printing.codeprinter import PrintMethodNotImplementedError

    for symbol in expr.free_symbols:
        _plain(symbol.name)
    try:
        return _printer_class()().doprint(expr)
    except PrintMethodNotImplementedError:      # e.g. J(θ), a function the spec leaves unspecified
        raise NoNumericForm(f"{expr} has no numeric form (an unspecified function?): it cannot become code "
                            "or a plot") from None


def _header(source: str) -> str:
    head = "import numpy as np\n"
    if "_sigmoid(" in source:
        head += SIGMOID_HELPER
    return head


def _stability_notes(*exprs) -> list[str]:
    from examsolver.engine.symfuncs import functions

    Sigmoid, Softplus = functions()
    notes = []
    if any(e.has(Softplus) for e in exprs):
        notes.append("symbolic.code_stable_softplus")
    if any(e.has(Sigmoid) for e in exprs):
        notes.append("symbolic.code_stable_sigmoid")
    return notes


def _elementwise(expr, x) -> str:
    """A numpy expression that has the shape of x even when expr does not depend on x."""
    text = to_numpy(expr)
    return text if expr.has(x) else f"np.full_like({x.name}, {text})"


def activation_layer(class_name: str, f, x) -> tuple[str, list[str]]:
    """An elementwise activation y = f(x) on tensors of any rank, and f′ for the backward pass."""
    import sympy as sp

    from examsolver.engine.symfuncs import recognize, tidy

    df = tidy(recognize(sp.diff(f, x)))
    class_name, x_name = _plain(class_name), _plain(x.name)
    body = f'''
class {class_name}(Layer):
    """y = {escaped(sp.sstr(f))} elementwise; tensors of any rank and shape."""

    def __init__(self, name={literal(class_name.lower())}):
        self.name = name
        self.has_params = False

    def forward(self, inputs):
        self.inputs = np.asarray(inputs, dtype=np.float64)
        {x_name} = self.inputs
        return {_elementwise(f, x)}

    def backward_inputs(self, grads):
        {x_name} = self.inputs
        return grads * {_elementwise(df, x)}

    def backward_params(self, grads):
        return None  # an activation has no parameters
'''
    source = _header(body) + LAYER_BASE + body
    return source, _stability_notes(f, df)


def equations_layer(class_name: str, inputs: list, params: list, outputs: list) -> tuple[str, list[str]]:
    """A layer q = F(p; w) given by one equation per output, on a batch (inputs[..., j] = p_j)."""
    import sympy as sp

    from examsolver.engine.symfuncs import recognize, tidy

    outputs = [recognize(q) for q in outputs]
    class_name = _plain(class_name)
    for symbol in [*inputs, *params]:
        _plain(symbol.name)
    unpack_in = "\n".join(f"{p.name} = inputs[..., {j}]" for j, p in enumerate(inputs))
    unpack_w = (", ".join(w.name for w in params) + (",", "")[len(params) > 1] + " = self.params") if params \
        else "pass  # no parameters"
    unpack_g = "\n".join(f"_g{i} = grads[..., {i}]" for i in range(len(outputs)))

    def term(q, v):
        d = tidy(sp.diff(q, v))
        return None if d == 0 else to_numpy(d)

    def total(v):
        parts = [f"_g{i} * ({t})" for i, q in enumerate(outputs) if (t := term(q, v)) is not None]
        return " + ".join(parts) if parts else "0 * _g0"

    outs = ",\n            ".join(f"np.broadcast_to({to_numpy(q)}, {inputs[0].name}.shape)" for q in outputs)
    d_in = ",\n            ".join(f"np.broadcast_to({total(p)}, _g0.shape)" for p in inputs)
    d_w = "".join(f"np.sum({total(w)}),\n            " for w in params).rstrip()
    indent = "        "
    body = f'''
class {class_name}(Layer):
    """{escaped("; ".join(f"q{i + 1} = {sp.sstr(q)}" for i, q in enumerate(outputs)))}.

    inputs: array (..., {len(inputs)}) holding {", ".join(p.name for p in inputs)} (any batch shape);
    params: [{", ".join(w.name for w in params)}].  Parameter gradients are summed over the batch.
    """

    def __init__(self, params, name={literal(class_name.lower())}):
        self.params = np.asarray(params, dtype=np.float64)
        self.name = name
        self.has_params = True

    def forward(self, inputs):
        inputs = np.asarray(inputs, dtype=np.float64)
        self.inputs = inputs
{textwrap.indent(unpack_in, indent)}
        {unpack_w}
        return np.stack([
            {outs},
        ], axis=-1)

    def backward_inputs(self, grads):
        inputs = self.inputs
{textwrap.indent(unpack_in, indent)}
        {unpack_w}
{textwrap.indent(unpack_g, indent)}
        return np.stack([
            {d_in},
        ], axis=-1)

    def backward_params(self, grads):
        inputs = self.inputs
{textwrap.indent(unpack_in, indent)}
        {unpack_w}
{textwrap.indent(unpack_g, indent)}
        _grad_params = np.array([
            {d_w}
        ], dtype=np.float64)
        return [[self.params, _grad_params], self.name]
'''
    source = _header(body) + LAYER_BASE + body
    return source, _stability_notes(*outputs)


def loss_function(name: str, loss, z, inputs: list, reduction: str) -> tuple[str, list[str]]:
    """def name(z, y, …) → (loss over the batch, ∂loss/∂z with z's shape); vectorised."""
    import sympy as sp

    from examsolver.engine.symfuncs import tidy

    grad = tidy(sp.diff(loss, z))
    name, z_name = _plain(name), _plain(z.name)
    args = ", ".join(_plain(v.name) for v in inputs)
    convert = "\n".join(f"    {v.name} = np.asarray({v.name}, dtype=np.float64)" for v in inputs)
    scale = "1.0 / _size" if reduction == "mean" else "1.0"
    reduce = "np.mean" if reduction == "mean" else "np.sum"
    body = f'''
def {name}({args}):
    """Loss {escaped(sp.sstr(loss))} over a batch of any size ({reduction} over all entries),
    and its gradient with respect to {z_name} (same shape as {z_name})."""
{convert}
    _size = {z_name}.size
    _loss = {reduce}(np.broadcast_to({to_numpy(loss)}, {z_name}.shape))
    _grad = np.broadcast_to({to_numpy(grad)}, {z_name}.shape) * ({scale})
    return _loss, _grad
'''
    return _header(body) + body, _stability_notes(loss, grad)


def sample(expr, x, grid):
    """expr at the float points of grid, through the same stable printer (for plots)."""
    import numpy as np

    x_name = _plain(x.name)
    source = f"def _f({x_name}):\n    return np.broadcast_to({to_numpy(expr)}, {x_name}.shape)\n"
    namespace: dict = {}
    exec(compile(_header(source) + source, "<examsolver-sample>", "exec"), namespace)   # code we generated
    with np.errstate(all="ignore"):
        return np.asarray(namespace["_f"](np.asarray(grid, dtype=float)), dtype=float)
