"""Lazy package exports: ``import rl_app.policy`` must not import torch or Ray (nothing heavy at import time)."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping, MutableMapping


def lazy_getattr(package: str, exports: Mapping[str, str], namespace: MutableMapping[str, Any]
                 ) -> Callable[[str], Any]:
    """A module ``__getattr__`` importing ``name`` from ``exports[name]`` on first access."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        namespace[name] = value
        return value

    return __getattr__
