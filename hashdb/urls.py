"""Database URLs in messages and logs: the password is never shown."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit


def redact_url(url: str) -> str:
    """``url`` with its password (in the user part or a ``password`` parameter) shown as
    ``***``: the form every message and log line uses."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<a database URL that cannot be parsed>"
    netloc = parts.netloc
    user_part, at, hosts = netloc.rpartition("@")
    if at and ":" in user_part:
        netloc = f"{user_part.split(':', 1)[0]}:***@{hosts}"
    query = "&".join(
        "password=***" if pair.split("=", 1)[0].lower() == "password" else pair
        for pair in parts.query.split("&")
    )
    # Put together by hand: urlunsplit drops the "//" of a URL without a host.
    shown = f"{parts.scheme}://{netloc}{parts.path}"
    return shown + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def url_passwords(url: str) -> list[str]:
    """The password as it may appear in a message: as written in the URL and decoded."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [parts.password or ""]
    found += [
        pair.split("=", 1)[1]
        for pair in parts.query.split("&")
        if "=" in pair and pair.split("=", 1)[0].lower() == "password"
    ]
    found += [unquote(one) for one in found]
    return sorted({one for one in found if one}, key=len, reverse=True)
