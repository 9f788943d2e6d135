"""Evaluation protocols over the toolkit's exports: NearID SSR/PA, FPR mAP, PODS classification and
retrieval, scored with pluggable image embedders and an on-disk embedding cache."""
