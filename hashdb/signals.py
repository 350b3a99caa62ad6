"""Signal types: how each kind of fingerprint is named, parsed, printed and compared.

A *signal type* says how media is hashed and compared (PDQ, pHash); its ``name`` is the
storage key in the database and in exported hash lists, so it is never renamed. Hash values
are held as Python ints (PDQ: 256 bits, pHash: 64 bits) and written as fixed-width
lowercase hex, the form StopNCII / ThreatExchange exchange.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

_HEX_DIGITS = frozenset(string.hexdigits)


class HashFormatError(ValueError):
    """A hash or algorithm name given by a user or a file is malformed."""


@dataclass(frozen=True, slots=True)
class SignalType:
    """One hash algorithm: its storage name, width and default match rule."""

    name: str
    bits: int
    default_max_distance: int
    description: str
    #: Whether the signal has a quality score; hashes below ``min_quality`` are too
    #: featureless (flat or tiny images) to act on automatically.
    has_quality: bool = False

    @property
    def hex_length(self) -> int:
        return self.bits // 4

    def parse(self, text: str) -> int:
        """Parse a hex hash, naming what is wrong and what is accepted."""
        value = text.strip().lower()
        if value.startswith("0x"):
            value = value[2:]
        if len(value) != self.hex_length or not set(value) <= _HEX_DIGITS:
            bad = [c for c in value if c not in _HEX_DIGITS]
            problem = (
                f"contains non-hex character {bad[0]!r}" if bad else f"has {len(value)} characters"
            )
            raise HashFormatError(
                f"{self.name} hash {_clip(text)!r} {problem}; expected "
                f"{self.hex_length} hexadecimal characters (0-9, a-f)"
            )
        return int(value, 16)

    def format(self, value: int) -> str:
        return f"{value:0{self.hex_length}x}"

    @staticmethod
    def distance(a: int, b: int) -> int:
        """Hamming distance: the number of differing bits."""
        return (a ^ b).bit_count()


PDQ = SignalType(
    name="pdq",
    bits=256,
    # Meta's recommended confident-match radius (pdq/README, python-threatexchange
    # PDQ_CONFIDENT_MATCH_THRESHOLD); unrelated images average ~128 bits apart.
    default_max_distance=31,
    description="PDQ photo hash (Meta/ThreatExchange, StopNCII), 64 hex characters",
    has_quality=True,
)

PHASH = SignalType(
    name="phash",
    bits=64,
    # pHash is far less discriminative than PDQ (64 bits, look-alike photos collide), so its
    # radius is kept tight and it does not delete on its own unless configured to.
    default_max_distance=6,
    description="imagehash pHash (DCT), 16 hex characters",
)

VPDQ = SignalType(
    name="vpdq",
    bits=256,
    # vPDQ compares video frames with PDQ's own radius (python-threatexchange vpdq).
    default_max_distance=31,
    description="vPDQ video frame hash (PDQ of one frame), 64 hex characters",
    has_quality=True,
)

SIGNAL_TYPES: dict[str, SignalType] = {s.name: s for s in (PDQ, PHASH, VPDQ)}


def get_signal_type(name: str) -> SignalType:
    """Look up a signal type by name, naming the accepted ones on failure."""
    signal = SIGNAL_TYPES.get(name.strip().lower())
    if signal is None:
        raise HashFormatError(
            f"unknown algorithm {_clip(name)!r}; expected one of: {', '.join(SIGNAL_TYPES)}"
        )
    return signal


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
