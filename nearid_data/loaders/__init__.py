"""Training loaders for exported NearID datasets: (anchor, positive, distractor, negative) tuples.

- ``streaming.NearIDStream``: a webdataset pipeline over shards, split across DDP ranks and
  DataLoader workers;
- ``random_access.NearIDMapDataset``: a map-style dataset over a split's ``wids`` index, with
  ``random_access.distributed_sampler``;
- ``tuples``: what both share (records, picks, decoding, ``collate``).

Nothing is imported here: webdataset and wids import torch, which takes seconds.
"""
