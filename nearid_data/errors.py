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


# Failures of the backend itself, whatever the input: a missing model or package, a bug in the
# code, memory or a device that is gone. Anything else raised while working on an input is taken
# to be caused by that input.
_BACKEND_ERRORS = (
    NearidError,
    MemoryError,
    ImportError,
    NameError,
    AttributeError,
    TypeError,
    NotImplementedError,
)
_DEVICE_MESSAGES = (
    "out of memory",
    "CUDA error",
    "device-side assert",
    "CUBLAS_STATUS",
    "CUDNN_STATUS",
    "NCCL error",
    "device lost",
)


def is_backend_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of the backend (stop the stage) rather than of one input
    (reject that input)."""
    if isinstance(exc, _BACKEND_ERRORS) or "OutOfMemory" in type(exc).__name__:
        return True
    return any(message in str(exc) for message in _DEVICE_MESSAGES)


def input_failure(exc: Exception, reason: str) -> Rejection:
    """``exc``, raised while working on one input, as that input's rejection with ``reason``;
    a backend failure is raised again instead, and a rejection the backend raised keeps its own
    reason (``non_finite_output``, ``flat_output``)."""
    if isinstance(exc, Rejection):
        return exc
    if is_backend_failure(exc):
        raise exc
    return Rejection(reason, f"{type(exc).__name__}: {exc}"[:500])
