"""Plug-in discovery for the three things that grow: tasks, detector heads and sinks.

Each lives in one module (or package) inside its registry's package and exposes one
named object; adding one means adding that file, nothing else. Discovery lists the
package's modules without importing them, so naming the known entries (for a CLI
choice or an error) is cheap, and an entry is imported only when it is used.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Dict, List

from edgecnn.core.errors import UserError


class Registry:
    """The entries of `package` (a dotted name): module NAME's attribute `attribute`
    (names use '-' where module names use '_')."""

    def __init__(self, package: str, attribute: str, kind: str, submodule: str = "") -> None:
        # submodule: for entries that are packages, the module inside each that holds the attribute
        self.package, self.attribute, self.kind, self.submodule = package, attribute, kind, submodule
        self._loaded: Dict[str, Any] = {}

    def names(self) -> List[str]:
        module = importlib.import_module(self.package)
        return sorted(info.name.replace("_", "-") for info in pkgutil.iter_modules(module.__path__)
                      if not info.name.startswith("_"))

    def get(self, name: str) -> Any:
        """The entry called `name`; UserError listing the known names otherwise."""
        key = str(name).replace("-", "_")
        if key not in self._loaded:
            if str(name) not in self.names():
                raise UserError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
            module = importlib.import_module(f"{self.package}.{key}" + (f".{self.submodule}" if self.submodule else ""))
            self._loaded[key] = getattr(module, self.attribute)
        return self._loaded[key]

    def all(self) -> List[Any]:
        return [self.get(name) for name in self.names()]
