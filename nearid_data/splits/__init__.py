"""Identity-disjoint splits (and, later, galleries and instance splits)."""
