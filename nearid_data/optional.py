"""Optional dependencies: imported where they are used, with one clear error when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from nearid_data.errors import NearidError


def import_optional(module: str, *, extra: str, needed_for: str = "this backend") -> ModuleType:
    """Import an optional dependency, or fail with the install command of the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise NearidError(
            f"{needed_for} needs the Python package {module!r} ({exc}); "
            f"install it with: pip install 'nearid-data[{extra}]'"
        ) from exc
