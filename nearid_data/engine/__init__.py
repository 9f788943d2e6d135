"""The engine: samples on disk (tar shards), manifests, fingerprints, the runner and its executors."""
