"""The two kinds of failure: a user-facing configuration/input error, and a per-sample rejection."""

from __future__ import annotations


class NearidError(Exception):
    """A problem the user can fix (bad config, missing input, missing model). Printed without a traceback."""


class Rejection(Exception):
    """One sample cannot be used. Caught per sample and recorded in the manifest with its reason.

    ``reason`` is a short snake_case code that manifests count by (``not_an_image``, ``mask_too_small``);
    ``detail`` is free text for a human.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
