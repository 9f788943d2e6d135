"""Exports: WebDataset shards per split with wids indexes and a dataset card; later, the anchors' layouts."""
