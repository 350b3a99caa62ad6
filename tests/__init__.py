"""Test suite for Hashguard; a package so tests can share helpers like ``tests.fakebot``."""
