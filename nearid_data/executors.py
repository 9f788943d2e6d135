"""The executor registry: pipeline ``executor.name`` -> executor classes (imported lazily)."""

from __future__ import annotations

from nearid_data.engine.executor import Executor
from nearid_data.registry import Registry

EXECUTORS: Registry[Executor] = Registry(
    "executor",
    {
        "local": "nearid_data.engine.local:LocalExecutor",
        "ray": "nearid_data.engine.ray_executor:RayExecutor",
    },
)
