"""Exact tensors: numpy object arrays of Exact, plus the few helpers the ops need.

numpy gives shapes, slicing and matmul on object arrays for free; every entry
stays an exact scalar, so decisions taken on them are exact.
"""

from __future__ import annotations

import numpy as np

from examsolver.engine.scalar import Cert, Exact, dot, exact
from examsolver.errors import EngineError


def tensor(nested) -> np.ndarray:
    """Nested lists of int/Fraction/Exact → object array of Exact."""
    array = np.array(nested, dtype=object)
    return emap(exact, array)


def emap(fn, array: np.ndarray) -> np.ndarray:
    """Apply fn to every entry; keeps the shape (also for 0-d arrays)."""
    array = np.asarray(array, dtype=object)
    out = np.empty(array.shape, dtype=object)
    for index, value in np.ndenumerate(array):
        out[index] = fn(value)
    return out


def tdot(a, b, axes: int = 1) -> np.ndarray:
    """np.tensordot(a, b, axes) of exact tensors; where certified values take part, each output
    entry is one node (scalar.dot) instead of a chain of products and sums."""
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    if not any(type(v) is Cert for v in a.flat) and not any(type(v) is Cert for v in b.flat):
        return np.asarray(np.tensordot(a, b, axes=axes), dtype=object)
    k = int(np.prod(a.shape[a.ndim - axes:], dtype=int))
    if k != int(np.prod(b.shape[:axes], dtype=int)):
        raise EngineError(f"cannot contract shapes {a.shape} and {b.shape}")
    left, right = a.reshape(-1, k), b.reshape(k, -1)
    out = np.empty((left.shape[0], right.shape[1]), dtype=object)
    columns = [list(right[:, j]) for j in range(right.shape[1])]
    for i in range(left.shape[0]):
        row = list(left[i])
        for j, column in enumerate(columns):
            out[i, j] = dot(row, column)
    return out.reshape(a.shape[:a.ndim - axes] + b.shape[axes:])


def zeros(shape) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    out.fill(Exact(0))
    return out


def ones(shape) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    out.fill(Exact(1))
    return out


def is_zero(array) -> bool:
    return all(v.sign() == 0 for v in np.asarray(array, dtype=object).flat)


def to_float(array) -> np.ndarray | float:
    array = np.asarray(array, dtype=object)
    if array.ndim == 0:
        return float(array[()])
    return np.vectorize(float, otypes=[float])(array)


def _float_or_none(value):
    """A float, or None for a symbolic entry with free symbols."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def to_list(array):
    """Floats as nested lists (for JSON); None where an entry has free symbols."""
    array = np.asarray(array, dtype=object)
    if array.ndim == 0:
        return _float_or_none(array[()])
    return [to_list(a) for a in array]


def scalar_of(value) -> Exact:
    array = np.asarray(value, dtype=object)
    if array.size != 1:
        raise EngineError(f"expected a single number, got shape {array.shape}")
    return array.reshape(())[()]


def total(array) -> Exact:
    result = Exact(0)
    for v in np.asarray(array, dtype=object).flat:
        result = result + v
    return result


def check_shape(value: np.ndarray, shape: tuple, what: str) -> None:
    if tuple(value.shape) != tuple(shape):
        raise EngineError(f"{what} has shape {_fmt(value.shape)}, expected {_fmt(shape)}")


def _fmt(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")" if len(shape) != 1 else f"({shape[0]},)"
