"""What every backend shares: its typed config and model loading.

A backend (detector, segmenter, generator, embedder) is one file holding one class that subclasses
``Backend`` (through its family's base) and declares its ``Config``. Heavy imports happen inside the
backend's ``__init__`` through ``import_optional``, so a missing extra is one clear error.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, TypeVar

from nearid_data.errors import NearidError
from nearid_data.registry import Registry
from nearid_data.strict import StrictModel, validated

T = TypeVar("T")


class BackendConfig(StrictModel):
    """Base of each backend's own settings (the keys under its entry in the pipeline YAML)."""


class Backend:
    Config: ClassVar[type[BackendConfig]] = BackendConfig

    def __init__(self, config: BackendConfig, *, device: str = "cpu") -> None:
        self.config = config
        self.device = device

    def describe(self) -> dict[str, Any]:
        """What the manifest records about this backend: model id, revision, dtype, settings."""
        return {"backend": type(self).__name__, **self.config.model_dump(mode="json")}


def load_pretrained(loader: Callable[..., T], model: str, **kwargs: Any) -> T:
    """Call ``loader(model, **kwargs)`` (a ``from_pretrained``) with one clear error when the model is missing.

    ``model`` is a local directory or a Hugging Face hub id. Offline (``HF_HUB_OFFLINE=1``) a hub id
    resolves only from the local cache. A missing local path fails at once, without asking the hub.
    """
    check_local_path(model)
    try:
        return loader(model, **kwargs)
    except (OSError, ValueError) as exc:
        raise NearidError(missing_model_message(model, exc)) from exc


def checked_model_type(
    transformers: ModuleType,
    model: str,
    accepted: Sequence[str],
    *,
    revision: str | None,
    taker: str,
) -> str:
    """The ``model_type`` in the model's config, or one error saying what ``taker`` accepts."""
    family: str = load_pretrained(
        transformers.AutoConfig.from_pretrained, model, revision=revision
    ).model_type
    if family not in accepted:
        raise NearidError(
            f"model {model!r} is a {family!r} model; {taker} takes {' or '.join(accepted)} models"
        )
    return family


def looks_like_local_path(model: str) -> bool:
    """Whether ``model`` names a file or directory rather than a hub id (``owner/name``).

    A hub id has at most one ``/`` and no ``.``/``~`` prefix; ``models/...`` is the folder the
    README downloads weights into, so it is a path even before that folder exists.
    """
    first = model.split("/", 1)[0]
    return (
        Path(model).expanduser().is_absolute()
        or model.startswith((".", "~"))
        or "\\" in model
        or model.count("/") > 1
        or first == "models"
        or (model.count("/") == 1 and Path(first).is_dir())
    )


def check_local_path(model: str) -> None:
    """Fail with the path when ``model`` looks like a local path that does not exist."""
    path = Path(model).expanduser()
    if looks_like_local_path(model) and not path.exists():
        raise NearidError(
            f"model {model!r} could not be loaded: no such local path ({path.resolve()}). "
            "Put the weights there (see the README's Models section) or name a Hugging Face "
            "hub id instead"
        )


def missing_model_message(model: str, exc: BaseException | None = None) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")
    where = "a local directory" if Path(model).exists() else "the local Hugging Face cache"
    because = f" ({type(exc).__name__}: {exc})" if exc else ""
    hint = (
        f"fetch it on a machine with a network: hf download {model} --local-dir models/{Path(model).name}, "
        f"then name that directory as the model (model: models/{Path(model).name} in the pipeline "
        f"YAML for build; --model models/{Path(model).name} for eval)"
    )
    state = " HF_HUB_OFFLINE is set." if offline else ""
    return f"model {model!r} could not be loaded from {where}{because}.{state} To {hint}"


def resolve_backend(
    registry: Registry[Any], spec: dict[str, Any], *, where: str
) -> tuple[type[Any], BackendConfig]:
    """The backend class named by ``spec["name"]`` and the rest of ``spec`` validated as its config.

    Cheap (imports the backend's module, which keeps heavy imports inside methods), so stages call
    it when constructed and a typo fails before any model loads.
    """
    raw = dict(spec)
    name = raw.pop("name", None)
    if not isinstance(name, str):
        raise NearidError(f"{where}.name: required (one of: {', '.join(registry.names())})")
    backend_cls = registry.load(name)
    return backend_cls, validated(backend_cls.Config, raw, f"{where}.")


def build_backend(
    registry: Registry[Any], spec: dict[str, Any], *, where: str, device: str = "cpu"
) -> Any:
    backend_cls, config = resolve_backend(registry, spec, where=where)
    return backend_cls(config, device=device)
