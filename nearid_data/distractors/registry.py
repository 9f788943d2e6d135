"""Generator registry: pipeline names -> generator classes (imported lazily)."""

from __future__ import annotations

from nearid_data.distractors.base import Generator
from nearid_data.registry import Registry

GENERATORS: Registry[Generator] = Registry(
    "generator",
    {
        "cut_paste": "nearid_data.distractors.cut_paste:CutPasteGenerator",
        "sd-inpaint": "nearid_data.distractors.sd_inpaint:SdInpaintGenerator",
        "sdxl-inpaint": "nearid_data.distractors.sdxl_inpaint:SdxlInpaintGenerator",
        "flux-fill": "nearid_data.distractors.flux_fill:FluxFillGenerator",
    },
)
