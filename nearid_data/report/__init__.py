"""``report``: one self-contained HTML page showing what a build holds.

``collect`` reads the manifests into a small model, ``thumbs`` draws (and caches) thumbnails,
``charts`` draws histograms, ``html`` renders the page and ``command`` is the CLI entry.
"""
