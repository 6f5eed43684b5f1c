"""The op registries; importing this package registers every layer and loss.

Every module of this package is imported, so a new layer kind is one new file
with a class decorated by @layer (or @loss) — nothing else to edit.
"""

import pkgutil
from importlib import import_module

from examsolver.engine.ops.base import LAYERS, LOSSES  # noqa: F401

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    import_module(f"{__name__}.{_module}")
