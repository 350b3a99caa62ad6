"""Hashes and small helpers the hash-list tests share: ThreatExchange's sample vPDQ frames,
two PDQ hashes and a pHash, fingerprint builders, and how a list's items are compared."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable

from hashdb.fingerprint import Fingerprint
from hashdb.lists import (
    LIST_PDQ_QUALITY,
    ListItem,
    write_csv,
)

# Frames 0 and 1 of ThreatExchange's vpdq README sample output.
TX_A = "e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c"
TX_B = "c0f11178372c6aaccddea259648fbfd62f434c89c9e99b249772be216c8d055c"
PDQ_A = "f162eb9daab170c0567fe3632d9a5548c5612982dd5e374a7424ebbc8a835c95"
PDQ_B = "b062eb9d2ab170c0567fcb672d9a5548c5612982dd5e374a7424ebbc8b135cb5"
PHASH_A = "0123456789abcdef"


def groups(items: Iterable[ListItem]) -> list[frozenset[tuple[str, int]]]:
    """Each item's (signal, value) pairs, in item order: what a round trip must keep."""
    return [frozenset((f.signal, f.value) for f in item.fingerprints) for item in items]


def tx_frames(*frames: tuple[str, int, float]) -> str:
    """A frame list as python-threatexchange serializes a vPDQ hash (json.dumps)."""
    return json.dumps([f"{value},{quality},{seconds:.3f}" for value, quality, seconds in frames])


def write_csv_text(items: Iterable[ListItem], **kwargs: object) -> str:
    out = io.StringIO()
    write_csv(items, out, **kwargs)  # type: ignore[arg-type]
    return out.getvalue()


def pdq(value: str, quality: int | None = LIST_PDQ_QUALITY) -> Fingerprint:
    return Fingerprint("pdq", int(value, 16), quality)


def vpdq(value: str, quality: int, seconds: float) -> Fingerprint:
    return Fingerprint("vpdq", int(value, 16), quality, seconds)
