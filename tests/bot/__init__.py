"""Tests of the application core: config, moderation service, CLI."""
