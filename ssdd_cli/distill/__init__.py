"""Distillation: the KRR closed form, the model pool, the parameterisation and the outer loop.

The package is also callable: `ssdd_cli.distill(...)` is the Python API's `distill`
(docs/python-api.md). Python binds a subpackage to its parent's attribute of the same name once
it is imported, so `import ssdd_cli as ssdd; ssdd.distill(...)` reaches this package as soon as
anything has imported it; calling it forwards to the package root's lazy API entry (which loads
`ssdd_cli.api`), so both spellings are the same function and the distillation modules never
import the API layer built on them.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import ssdd_cli

        return ssdd_cli.__getattr__("distill")(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
