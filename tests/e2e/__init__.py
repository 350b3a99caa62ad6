"""End-to-end tests: the real bot driven over HTTP through the fake Bot API server."""
