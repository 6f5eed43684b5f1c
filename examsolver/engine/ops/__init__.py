"""The op registries; importing this package registers every layer and loss."""

from examsolver.engine.ops.base import LAYERS, LOSSES  # noqa: F401
from examsolver.engine.ops import activation, conv, linear, loss, norm, pool  # noqa: F401
