"""What the protocol tests share: running ``eval`` through its own argument parser, and the
colour-histogram vector of one image for independent recomputations."""

from __future__ import annotations

import argparse

import numpy as np

from nearid_data.evaluate.command import add_arguments, run
from nearid_data.vision.embedders.colorhist import ColorHistEmbedder


def run_eval(*argv: object) -> int:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return run(parser.parse_args([str(a) for a in argv]))


def colorhist_vector(rgb: np.ndarray) -> list[float]:
    embedder = ColorHistEmbedder(ColorHistEmbedder.Config.model_validate({}))
    return embedder.embed([rgb])[0].tolist()  # type: ignore[no-any-return]
