"""Generator presets: NearID's settings, overrides on top, clear errors."""

from __future__ import annotations

import pytest

from nearid_data.distractors.flux_fill import FluxFillGenerator
from nearid_data.distractors.presets import (
    NEARID_NEGATIVE_PROMPT,
    PRESETS,
    GeneratorSpec,
    resolve_preset,
)
from nearid_data.distractors.sd_inpaint import SdInpaintGenerator
from nearid_data.distractors.sdxl_inpaint import SdxlInpaintGenerator
from nearid_data.distractors.stage import DistractorsConfig
from nearid_data.errors import NearidError
from nearid_data.strict import validated

GENERATORS = {
    "sd-inpaint": SdInpaintGenerator,
    "sdxl-inpaint": SdxlInpaintGenerator,
    "flux-fill": FluxFillGenerator,
}


def test_sdxl_nearid_carries_the_reported_settings() -> None:
    settings = resolve_preset("sdxl-inpaint", "sdxl-inpaint-nearid", {})
    assert settings["resolution"] == 1024 and settings["steps"] == 30
    assert settings["guidance"] == 8.0 and settings["strength"] == 0.99
    assert settings["negative_prompt"] == NEARID_NEGATIVE_PROMPT
    config = SdxlInpaintGenerator.Config(**settings)
    assert config.model == "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"


def test_flux_nearid_has_no_negative_prompt() -> None:
    config = FluxFillGenerator.Config(**resolve_preset("flux-fill", "flux-fill-nearid", {}))
    assert (config.steps, config.guidance, config.negative_prompt) == (50, 30.0, "")
    assert config.model == "black-forest-labs/FLUX.1-Fill-dev"


def test_overrides_win() -> None:
    settings = resolve_preset(
        "sd-inpaint", "sd-inpaint-default", {"steps": 4, "model": "/models/sd-inpaint"}
    )
    config = SdInpaintGenerator.Config(**settings)
    assert config.steps == 4 and config.model == "/models/sd-inpaint"
    assert config.scheduler == "UniPCMultistepScheduler" and config.guidance == 7.5


def test_no_preset_is_just_the_overrides() -> None:
    assert resolve_preset("sd-inpaint", None, {"steps": 3}) == {"steps": 3}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_a_valid_config_of_its_generator(name: str) -> None:
    generator, _ = PRESETS[name]
    GENERATORS[generator].Config(**resolve_preset(generator, name, {}))


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(NearidError, match=r"known: .*sdxl-inpaint-nearid"):
        resolve_preset("sdxl-inpaint", "sdxl-fast", {})


def test_a_preset_of_another_generator_is_refused() -> None:
    with pytest.raises(NearidError, match="flux-fill-nearid"):
        resolve_preset("sdxl-inpaint", "flux-fill-nearid", {})


def test_a_generator_spec_resolves_its_preset_once_and_dumps_as_written() -> None:
    entry = {"name": "sdxl-inpaint", "preset": "sdxl-inpaint-nearid", "steps": 3}
    spec = GeneratorSpec.model_validate(entry)
    assert spec.id == "sdxl_inpaint" and spec.preset == "sdxl-inpaint-nearid"
    assert spec.backend() == {
        "name": "sdxl-inpaint",
        **resolve_preset("sdxl-inpaint", "sdxl-inpaint-nearid", {"steps": 3}),
    }
    assert spec.model_dump(mode="json") == entry
    assert GeneratorSpec.model_validate({"name": "cut_paste", "id": "cp"}).id == "cp"


def test_a_bad_preset_fails_at_config_load_naming_the_entry() -> None:
    raw = {"generators": [{"name": "cut_paste"}, {"name": "sdxl-inpaint", "preset": "nope"}]}
    with pytest.raises(NearidError, match=r"stages\.distractors\.generators\.1: .*known: "):
        validated(DistractorsConfig, raw, "stages.distractors.")
