"""Synthetic positives from a few real images (the PODS recipe): DreamBooth-LoRA per identity
(``personalize``), generation with and without the adapter plus cut-and-paste (``synthesize``),
and a similarity filter."""
