"""How much work one input file may ask for: bounds checked before the work, and a budget around it.

Exam problems are small; a file that asks for a 4,000-digit number, exp of a huge argument, a
200×200 convolution with 64 kernels or an integral sympy cannot finish is refused with a located
message instead of hanging or eating the machine's memory.  Most limits are a cost model checked
*before* the work (spec/expr.py while parsing, `check_work` before solving); the CPU-time and memory
budgets catch what no model foresees (sympy's simplification and integration).  Every value here is
documented in the README and can be raised on the command line for trusted input.
"""

from __future__ import annotations

import math
import signal
from contextlib import contextmanager
from dataclasses import dataclass, fields

from examsolver.errors import EngineError, SpecError


@dataclass
class Limits:
    seconds: float = 3.0            # CPU seconds to solve (and check) one file
    memory_mb: int = 1024           # address space of the process, in MB (0: unlimited)
    digits: int = 1000              # decimal digits of a number's numerator or denominator
    exp_argument: int = 2000        # |x| in exp, cosh, sinh, tanh, sigmoid of a number (e^2000 ≈ 10^869)
    terms: int = 1000               # terms of a sum of ln p, √n, π, e products (before sympy takes over)
    degree: int = 256               # degree of a symbolic expression in its symbols
    elements: int = 100_000         # entries of one tensor
    work: int = 1_000_000           # multiply-adds of a network over its data (an upper estimate)
    steps: int = 10                 # time steps of a sequence (exact tanh/σ values nest once per step)


LIMITS = Limits()
DEFAULTS = Limits()
FLAGS = {f.name: "--max-" + f.name.replace("_mb", "").replace("_", "-") for f in fields(Limits)}


class BudgetExceeded(BaseException):
    """CPU time ran out.  A BaseException: library code catching Exception must not swallow it."""


class LimitError(EngineError):
    """A bound of the cost model is exceeded; the message names the command-line flag that raises it."""

    def __init__(self, what: str, field: str):
        super().__init__(f"{what} ({FLAGS[field]} raises the limit for a trusted file)")


def configure(**values) -> None:
    """Set the limits of a command (None: the default); nothing stays from an earlier command."""
    for field in fields(Limits):
        value = values.get(field.name)
        setattr(LIMITS, field.name, getattr(DEFAULTS, field.name) if value is None else value)


# ----- the cost model, checked before the work ---------------------------------------
def check_digits(n: int) -> None:
    """An integer of a numerator or denominator, by its bit length (no conversion to text)."""
    if n.bit_length() * 0.30103 > LIMITS.digits:
        raise LimitError(f"a number with more than {LIMITS.digits} digits", "digits")


def check_power_digits(bits: int, exponent: int) -> None:
    """Before raising a number of `bits` bits to `exponent`: would the result be too long?"""
    if bits * abs(exponent) * 0.30103 > LIMITS.digits:
        raise LimitError(f"a power with more than {LIMITS.digits} digits", "digits")


def check_terms(count: int) -> None:
    if count > LIMITS.terms:
        raise LimitError(f"a sum of more than {LIMITS.terms} terms", "terms")


def power_terms(terms: int, exponent: int) -> int:
    """Most terms a sum of `terms` terms can have when raised to `exponent`."""
    return math.comb(abs(exponent) + terms - 1, terms - 1) if terms > 1 else 1


def check_exp_argument(x) -> None:
    """x of exp(x) and its relatives (an Exact): is |x| small enough?"""
    try:
        magnitude = abs(x.decimal(5))
    except (ArithmeticError, ValueError, TypeError, EngineError):
        magnitude = None
    if magnitude is None or not magnitude <= LIMITS.exp_argument:
        raise LimitError(f"exp of a number larger than {LIMITS.exp_argument} in magnitude", "exp_argument")


def check_sympy_exponentials(expr) -> None:
    """Every exp/tanh/sinh/cosh of a number in a sympy expression, innermost first (so that the
    magnitude of an outer argument is estimated only from bounded inner ones): e^(10^18) would make
    mpmath overflow GMP and abort the process."""
    import sympy as sp

    kinds = (sp.exp, sp.tanh, sp.sinh, sp.cosh)
    for node in sp.postorder_traversal(expr):
        if isinstance(node, kinds) and node.args[0].is_number:
            magnitude = abs(node.args[0].evalf(5))
            if not (magnitude.is_number and magnitude <= LIMITS.exp_argument):
                raise LimitError(f"exp of a number larger than {LIMITS.exp_argument} in magnitude", "exp_argument")


def check_degree(degree) -> None:
    if degree > LIMITS.degree:
        raise LimitError(f"an expression of degree more than {LIMITS.degree}", "degree")


def check_elements(shape) -> None:
    count = math.prod(shape)
    if count > LIMITS.elements:
        dims = " × ".join(str(d) for d in shape)
        raise LimitError(f"a tensor of {dims} = {count} entries", "elements")


def check_work(macs: int, what: str = "the network") -> None:
    if macs > LIMITS.work:
        raise LimitError(f"{what} needs about {macs} multiply-adds", "work")


def check_spec(doc, spec) -> None:
    """Before solving: every tensor's size (sparse ones before they are built), the length of a
    sequence, and an upper estimate of a network's multiply-adds, each refused where it is written."""
    weights, steps = 0, 0
    for loc, shape, sparse in _tensors(spec, ()):
        with located(doc, loc):
            check_elements(shape)
        if loc[:1] in (("model",), ("cell",)):
            weights += math.prod(shape)
        if loc[:1] == ("inputs",) or loc[-1:] == ("inputs",):
            steps = max(steps, shape[0] if shape else 0)
            if shape and shape[0] > LIMITS.steps:
                with located(doc, loc):
                    raise LimitError(f"a sequence of {shape[0]} steps", "steps")
    data = getattr(spec, "data", None)
    examples = data if isinstance(data, list) else [data] if data is not None else []
    for i, example in enumerate(examples):
        shape = _shape_of(getattr(example, "x", None))
        if shape:    # every weight at most once per input entry: a bound for convolutions and linear layers
            with located(doc, ("data",) + ((i,) if isinstance(data, list) else ())):
                check_work(len(examples) * weights * math.prod(shape))


def _shape_of(value):
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.shape
    shape = getattr(value, "shape", None)
    return tuple(shape) if isinstance(shape, list) else None


def _tensors(value, loc: tuple):
    """(YAML path, shape, sparse) of every tensor in a validated spec, its layers included."""
    import numpy as np
    from pydantic import BaseModel

    if isinstance(value, np.ndarray):
        yield loc, value.shape, False
    elif isinstance(value, BaseModel):
        shape = getattr(value, "shape", None)
        if isinstance(shape, list) and all(isinstance(d, int) for d in shape):   # a sparse tensor
            yield loc, tuple(shape), True
        for name, item in {**vars(value), **(value.__pydantic_private__ or {})}.items():
            yield from _tensors(item, loc + (name,) if not name.startswith("_") else _private_loc(name))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            if isinstance(item, (np.ndarray, BaseModel, list, tuple, dict)):   # a scalar entry holds no tensor
                yield from _tensors(item, loc + (i,) if loc[:1] != ("model",) or len(loc) == 1 else loc)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, loc + (key,))


def _private_loc(name: str) -> tuple:
    """Where the entries kept in private attributes (network layers, a recurrent cell) were written."""
    return {"_layers": ("model",), "_cell_entry": ("cell",), "_loss_entry": ("loss",)}.get(name, ())


# ----- budgets around the work -------------------------------------------------------
@contextmanager
def cpu_budget(seconds: float | None = None):
    """Raise BudgetExceeded in this thread after `seconds` of CPU time (a no-op off the main thread or
    where there is no SIGPROF; 0 means no budget).  Nested budgets keep the outer one."""
    seconds = LIMITS.seconds if seconds is None else seconds
    usable = seconds and hasattr(signal, "setitimer") and _main_thread()
    if not usable or signal.getitimer(signal.ITIMER_PROF)[0]:
        yield
        return

    def expire(signum, frame):
        raise BudgetExceeded

    previous = signal.signal(signal.SIGPROF, expire)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def budget_message() -> str:
    return (f"needs more than {LIMITS.seconds:g} s of CPU time to solve (raise the limit with "
            f"{FLAGS['seconds']} for a trusted file)")


def memory_message() -> str:
    return (f"needs more than {LIMITS.memory_mb} MB of memory to solve (raise the limit with "
            f"{FLAGS['memory_mb']} for a trusted file)")


@contextmanager
def located(doc, loc: tuple, *also: type):
    """Inside: a cost-model refusal (or an error of the kinds `also`), an exhausted budget or memory
    becomes a SpecError at loc (an inner `located` names a more precise place)."""
    try:
        yield
    except BudgetExceeded:
        raise SpecError([doc.problem(loc, budget_message())]) from None
    except MemoryError:
        raise SpecError([doc.problem(loc, memory_message())]) from None
    except (LimitError, *also) as err:
        raise SpecError([doc.problem(loc, str(err))]) from None


def limit_memory() -> None:
    """Cap the process's address space, so a runaway allocation is a MemoryError, not the OOM killer."""
    if not LIMITS.memory_mb:
        return
    try:
        import resource
    except ImportError:      # not on POSIX
        return
    cap = LIMITS.memory_mb << 20
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
