"""The Hashguard application: config, wiring, the moderation core and the CLI."""
