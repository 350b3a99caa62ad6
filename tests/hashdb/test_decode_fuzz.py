"""Fuzzing the photo decoder's wrapper with mutated real files.

Whatever bytes arrive under an image type, ``hash_photo`` (what the hashing workers run)
either fingerprints them or raises ``MediaDecodeError`` saying why; no other exception may
escape, since members control these bytes. Seeds are small real files in each format the
bot reads; hypothesis flips, overwrites, truncates and splices their bytes.

CI runs a short pass. ``HASHGUARD_FUZZ_EXAMPLES=20000 pytest tests/hashdb/test_decode_fuzz.py``
runs a longer one.
"""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from hashdb.fingerprint import MediaDecodeError
from hashdb.photo import hash_photo
from tests.media import photo

EXAMPLES = int(os.environ.get("HASHGUARD_FUZZ_EXAMPLES", "300"))
#: Small enough that decoding a mutant stays fast; big enough to exercise every stage.
MAX_PIXELS = 4_000_000


def _seed(fmt: str, **params: object) -> bytes:
    image = photo(7, (96, 64))
    if fmt == "GIF":
        frames = [image.quantize(16), image.rotate(90).quantize(16)]
        out = io.BytesIO()
        frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=50)
        return out.getvalue()
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


SEEDS = {
    "jpeg": _seed("JPEG", quality=80),
    "png": _seed("PNG"),
    "webp": _seed("WEBP", quality=80),
    "gif": _seed("GIF"),
    "bmp": _seed("BMP"),
    "tiff": _seed("TIFF"),
}


@st.composite
def mutants(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(sorted(SEEDS.values(), key=len))))
    for _ in range(draw(st.integers(1, 8))):
        action = draw(st.sampled_from(["flip", "overwrite", "truncate", "splice", "extend"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if action == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "overwrite":
            # Header fields (sizes, counts, offsets) live in the first bytes; big values
            # there are what hostile files use.
            at = draw(st.integers(0, min(len(data) - 1, 64)))
            chunk = draw(st.sampled_from([b"\xff\xff", b"\x00\x00", b"\x7f\xff\xff\xff"]))
            data[at : at + len(chunk)] = chunk
        elif action == "truncate":
            del data[at:]
        elif action == "splice":
            other = draw(st.sampled_from(list(SEEDS.values())))
            data[at:] = other[draw(st.integers(0, len(other) - 1)) :]
        else:
            data += draw(st.binary(min_size=1, max_size=64))
    return bytes(data)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutants())
def test_mutated_images_fingerprint_or_say_why(data: bytes) -> None:
    try:
        fingerprints = hash_photo(data, max_pixels=MAX_PIXELS)
    except MediaDecodeError as exc:
        assert str(exc)
        return
    assert fingerprints.stored and fingerprints.width * fingerprints.height <= MAX_PIXELS


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_every_seed_decodes(name: str) -> None:
    """The fuzzer starts from files that work, so its mutants probe real decoder paths."""
    fingerprints = hash_photo(SEEDS[name])
    assert (fingerprints.width, fingerprints.height) == (96, 64)
    Image.open(io.BytesIO(SEEDS[name])).verify()
