"""Named generator settings: NearID's reported ones, and ours where NearID has no counterpart.

NearID (Cvejic et al., 2026) reports per generator: SDXL inpainting 0.1 at 1024, 30 steps, CFG 8.0,
strength 0.99, a negative prompt against text/watermarks/low resolution; FLUX.1-Fill-dev 50 steps,
guidance 30, no negative prompt; PowerPaint-v2 (BrushNet on SD1.5) 45 steps, UniPC, CFG 7.5. Each
ran at 512 and at native resolution. Not reported, so ours: the exact negative-prompt wording, the
crop (NearID painted the whole image: ``crop: full``), and ``sd-inpaint-default``, which runs the
plain SD1.5 inpainting model (not PowerPaint) with PowerPaint's sampler settings.

NearID's last step, downsampling every output to 512 with Lanczos, is not a generator setting:
export resizes the reference and the distractor together so they stay pixel-aligned.

Presets leave ``model`` to the generator's config default (NearID's checkpoints: SDXL inpainting
0.1, FLUX.1-Fill-dev; SD1.5 inpainting for ``sd-inpaint``); an override points at a local copy.
"""

from __future__ import annotations

from typing import Any

from pydantic import model_serializer, model_validator

from nearid_data.errors import NearidError
from nearid_data.strict import StrictModel

# Our wording of NearID's "negative prompt against text/watermarks/low resolution".
NEARID_NEGATIVE_PROMPT = "text, watermark, logo, signature, low resolution, blurry, jpeg artifacts"

_SDXL_NEARID: dict[str, Any] = {
    "resolution": 1024,
    "steps": 30,
    "guidance": 8.0,
    "strength": 0.99,
    "negative_prompt": NEARID_NEGATIVE_PROMPT,
    "crop": "full",
}
_FLUX_NEARID: dict[str, Any] = {
    "resolution": 1024,
    "steps": 50,
    "guidance": 30.0,
    "strength": 1.0,
    "negative_prompt": "",
    "crop": "full",
}

# preset name -> (generator name, settings)
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "sdxl-inpaint-nearid": ("sdxl-inpaint", _SDXL_NEARID),
    "sdxl-inpaint-nearid-512": ("sdxl-inpaint", {**_SDXL_NEARID, "resolution": 512}),
    "flux-fill-nearid": ("flux-fill", _FLUX_NEARID),
    "flux-fill-nearid-512": ("flux-fill", {**_FLUX_NEARID, "resolution": 512}),
    "sd-inpaint-default": (
        "sd-inpaint",
        {
            "resolution": 512,
            "steps": 45,
            "scheduler": "UniPCMultistepScheduler",
            "guidance": 7.5,
            "strength": 1.0,
            "negative_prompt": NEARID_NEGATIVE_PROMPT,
            "crop": "full",
        },
    ),
}


def resolve_preset(
    generator_name: str, preset: str | None, overrides: dict[str, Any]
) -> dict[str, Any]:
    """The config dict for ``generator_name``: the preset's settings, then ``overrides`` on top."""
    if preset is None:
        return dict(overrides)
    if preset not in PRESETS:
        known = ", ".join(f"{name} ({gen})" for name, (gen, _) in sorted(PRESETS.items()))
        raise NearidError(f"unknown generator preset {preset!r}; known: {known}")
    target, settings = PRESETS[preset]
    if target != generator_name:
        raise NearidError(
            f"preset {preset!r} is for generator {target!r}, not {generator_name!r}; presets for "
            f"{generator_name!r}: {', '.join(presets_for(generator_name)) or 'none'}"
        )
    return {**settings, **overrides}


def presets_for(generator_name: str) -> list[str]:
    return sorted(name for name, (gen, _) in PRESETS.items() if gen == generator_name)


class GeneratorSpec(StrictModel):
    """One entry of the distractors stage's ``generators``, resolved once when the config loads.

    ``id`` names the output field ``distractor_<id>.png`` (default: ``name`` with ``_`` for
    ``-``); ``settings`` are the backend's config: the preset's settings, then the entry's own keys.
    It serialises as the entry was written, so fingerprints and YAML stay as they were.
    """

    name: str
    id: str
    preset: str | None = None
    settings: dict[str, Any]
    written: dict[str, Any]

    @model_validator(mode="before")
    @classmethod
    def _resolve(cls, entry: Any) -> Any:
        if not isinstance(entry, dict):
            return entry
        name, preset = entry.get("name"), entry.get("preset")
        own = {k: v for k, v in entry.items() if k not in ("name", "id", "preset")}
        fields: dict[str, Any] = {
            "id": str(entry.get("id") or str(name or "").replace("-", "_")),
            "preset": preset,
            "settings": own,
            "written": entry,
        }
        if "name" in entry:
            fields["name"] = name
        if isinstance(name, str) and (preset is None or isinstance(preset, str)):
            try:
                fields["settings"] = resolve_preset(name, preset, own)
            except NearidError as exc:  # a ValueError, so the message names the config key
                raise ValueError(str(exc)) from None
        return fields

    @model_serializer
    def _as_written(self) -> dict[str, Any]:
        return self.written

    def backend(self) -> dict[str, Any]:
        """The backend spec ``build_backend`` takes: ``name`` and the resolved settings."""
        return {"name": self.name, **self.settings}
