"""Contract of the distractors stage's generators.

A generator paints a different instance of the same kind of subject into the masked region of a
reference view. It returns the raw painted image; the stage composites the reference back outside
the mask (so the background stays bit-identical whatever the generator did) and runs QA. A request
whose output is unusable before any QA could judge it (a model output with NaN or infinities, a
flat or black painted region) comes back as a ``Rejection`` in its place; the stage retries it with
a new seed like a request that failed QA.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from nearid_data.backend import Backend
from nearid_data.errors import Rejection


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
    def generate(self, requests: Sequence[InpaintRequest]) -> Sequence[np.ndarray | Rejection]:
        """Per request, an RGB uint8 image of the request image's size or why there is none."""

    def request_figures(self, request: InpaintRequest) -> dict[str, float]:
        """Generator-specific QA figures for a request (cut-and-paste: how much of the donor was
        clipped); the stage records them and checks the ones it has thresholds for."""
        return {}

    def check(self, figures: dict[str, float]) -> None:
        """Raise ``Rejection`` when the figures fail this generator's own thresholds."""

    def request_record(self, request: InpaintRequest) -> dict[str, Any]:
        """How the last ``generate`` call painted ``request`` (working size, batch slot), for the
        distractor's record; empty for generators with nothing per request to say."""
        return {}
