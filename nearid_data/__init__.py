"""nearid-data: build identity-focused image datasets (near-identity distractors, galleries, splits)."""

__version__ = "0.1.0"
