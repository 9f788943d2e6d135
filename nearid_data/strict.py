"""``StrictModel``: the base of every typed config and manifest record.

Unknown keys and wrong types are errors that name the key, so a typo in a pipeline YAML fails
before any work starts instead of being silently ignored.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from nearid_data.engine.names import check_safe_name
from nearid_data.errors import NearidError
from nearid_data.suggest import did_you_mean


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
            if error["type"] == "extra_forbidden":
                known = _fields_at(model, error["loc"][:-1])
                shown += did_you_mean(str(error["loc"][-1]), known)
            problems.append(f"{where}: {error['msg']}{shown}")
        raise NearidError("invalid pipeline config:\n  " + "\n  ".join(problems)) from None


def _fields_at(model: Any, loc: tuple[int | str, ...]) -> list[str]:
    """The field names of the model found by following ``loc`` from ``model`` (empty if unknown)."""
    for part in loc:
        model = _unwrap_optional(model)
        if _is_model(model):
            field = model.model_fields.get(str(part))
            model = field.annotation if field is not None else None
        else:  # list[X] or dict[str, X]: the part is an index or a key
            arguments = typing.get_args(model)
            model = arguments[-1] if arguments else None
    model = _unwrap_optional(model)
    return list(model.model_fields) if _is_model(model) else []


def _unwrap_optional(annotation: Any) -> Any:
    members = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(members) == 1:
        return members[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)
