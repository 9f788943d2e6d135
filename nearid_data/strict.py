"""``StrictModel``: the base of every typed config and manifest record.

Unknown keys and wrong types are errors that name the key, so a typo in a pipeline YAML fails
before any work starts instead of being silently ignored.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())
