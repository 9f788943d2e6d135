"""Name -> backend registries with lazy imports.

Each entry maps a short name (as written in a pipeline YAML) to ``"module:attribute"``. The module
is imported only when the backend is asked for, so heavy dependencies (torch, diffusers, ...) load
inside the backend and ``--help`` or the demo never pay for them.
"""

from __future__ import annotations

import importlib
from typing import Generic, TypeVar

from nearid_data.errors import NearidError
from nearid_data.suggest import did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, family: str, entries: dict[str, str]) -> None:
        self.family = family
        self._entries = dict(entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def load(self, name: str) -> type[T]:
        try:
            target = self._entries[name]
        except KeyError:
            raise NearidError(
                f"unknown {self.family} {name!r}{did_you_mean(name, self.names())}; "
                f"known: {', '.join(self.names())}"
            ) from None
        module_name, _, attribute = target.partition(":")
        return getattr(importlib.import_module(module_name), attribute)  # type: ignore[no-any-return]
