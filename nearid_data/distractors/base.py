"""Contract of the distractors stage's generators.

A generator paints a different instance of the same kind of subject into the masked region of a
reference view. It returns the raw painted image; the stage composites the reference back outside
the mask (so the background stays bit-identical whatever the generator did) and runs QA.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from nearid_data.backend import Backend


@dataclass(frozen=True)
class Donor:
    """Another identity of the same category: its pixels and exact mask (for cut-and-paste)."""

    identity: str
    key: str
    image: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class InpaintRequest:
    """One distractor to paint.

    ``image``: the reference view, RGB uint8 (H, W, 3). ``mask``: bool (H, W), the region that may
    change (the dilated subject mask). ``subject_mask``: bool (H, W), the exact subject mask.
    ``prompt``/``negative_prompt``: the near-identity concept for text-driven generators.
    ``donor``: the sibling identity's pixels, for generators that paste rather than paint.
    ``seed``: derived from (run seed, generator, key, attempt).
    """

    key: str
    image: np.ndarray
    mask: np.ndarray
    subject_mask: np.ndarray
    prompt: str
    negative_prompt: str
    seed: int
    donor: Donor | None = None


class Generator(Backend):
    needs_donor: ClassVar[bool] = False

    @abstractmethod
    def generate(self, requests: Sequence[InpaintRequest]) -> list[np.ndarray]:
        """One RGB uint8 image per request, of the request image's size."""

    def request_figures(self, request: InpaintRequest) -> dict[str, float]:
        """Generator-specific QA figures for a request (cut-and-paste: how much of the donor was
        clipped); the stage records them and checks the ones it has thresholds for."""
        return {}

    def check(self, figures: dict[str, float]) -> None:
        """Raise ``Rejection`` when the figures fail this generator's own thresholds."""
