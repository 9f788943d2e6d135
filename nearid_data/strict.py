"""``StrictModel``: the base of every typed config and manifest record.

Unknown keys and wrong types are errors that name the key, so a typo in a pipeline YAML fails
before any work starts instead of being silently ignored.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from nearid_data.errors import NearidError


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


def validated(model: type[StrictModel], raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise NearidError(f"{prefix.rstrip('.') or 'pipeline'}: expected a mapping, got {raw!r}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = prefix + ".".join(str(part) for part in error["loc"])
            shown = "" if error["type"] == "missing" else f" (got {error.get('input')!r})"
            problems.append(f"{where}: {error['msg']}{shown}")
        raise NearidError("invalid pipeline config:\n  " + "\n  ".join(problems)) from None
