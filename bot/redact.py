"""Secrets cut out of text that goes to the logs: the bot token and the webhook secret.

The Bot API puts the token in every URL, and a local Bot API server in every file path, so
an error's text can carry it; whoever reads a log line must not get the bot with it.
"""

from __future__ import annotations

#: What a secret is replaced with.
CUT = "<token>"


def redact(text: str, *secrets: str) -> str:
    """``text`` with every occurrence of each (non-empty) secret replaced by ``<token>``."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, CUT)
    return text
