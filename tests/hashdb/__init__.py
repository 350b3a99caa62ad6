"""Tests of the fingerprint database: store, index, hashing."""
