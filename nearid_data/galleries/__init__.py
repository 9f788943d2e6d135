"""Retrieval galleries (Finer-Personalization Rank): reference / gallery / extra roles per subject."""
