"""``StrictModel``: the base of every typed config and manifest record.

Unknown keys and wrong types are errors that name the key, so a typo in a pipeline YAML fails
before any work starts instead of being silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from nearid_data.engine.names import check_safe_name
from nearid_data.errors import NearidError


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


def _safe_name(value: str) -> str:
    try:
        return check_safe_name(value, "name")
    except NearidError as exc:  # a ValueError, so the message names the config key
        raise ValueError(str(exc)) from None


SafeName = Annotated[str, AfterValidator(_safe_name)]
"""A config value that becomes part of a path (pipeline, split, group names)."""


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
