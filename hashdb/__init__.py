"""Fingerprints and their database: hashing, the store, the near-match index."""
