"""Fuzzing the decoders' wrappers with mutated real files.

Whatever bytes arrive under an image or video type, ``hash_photo`` and ``hash_animation``
(what the hashing workers run) either fingerprint them or raise ``MediaDecodeError`` saying
why; no other exception may escape, since members control these bytes. Seeds are small real
files in each format the bot reads; hypothesis flips, overwrites, truncates and splices
their bytes.

CI runs a short pass. ``HASHGUARD_FUZZ_EXAMPLES=20000 pytest tests/hashdb/test_decode_fuzz.py``
runs a longer one (videos get a tenth of that count: each decode costs more).
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
from hashdb.video import VideoBudget, hash_animation
from tests.media import gif, photo, video, webm

EXAMPLES = int(os.environ.get("HASHGUARD_FUZZ_EXAMPLES", "300"))
VIDEO_EXAMPLES = max(EXAMPLES // 10, 60)
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


VIDEO_SEEDS = {
    "mp4": video(8, seconds=1.0, fps=10, size=(64, 48)),
    "webm": webm(8, seconds=1.0, fps=10, size=(64, 48)),
    "gif": gif(8, seconds=1.0, fps=5, size=(64, 48)),
}
#: A short budget: a mutant that claims a long or large video is cut off, not decoded.
VIDEO_BUDGET = VideoBudget(
    seconds_per_sample=0.25, max_frames=20, max_seconds=2.0, max_pixels=MAX_PIXELS
)


@st.composite
def mutants(draw: st.DrawFn, seeds: dict[str, bytes] = SEEDS) -> bytes:
    data = bytearray(draw(st.sampled_from(sorted(seeds.values(), key=len))))
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
            other = draw(st.sampled_from(list(seeds.values())))
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


@settings(
    max_examples=VIDEO_EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutants(VIDEO_SEEDS))
def test_mutated_videos_fingerprint_or_say_why(data: bytes) -> None:
    try:
        fingerprints = hash_animation(data, VIDEO_BUDGET)
    except MediaDecodeError as exc:
        assert str(exc)
        return
    # A video may keep no hashes: frames too flat or dark to match anything are dropped
    # from a check (min_quality), and such a video simply matches nothing.
    assert fingerprints.frame_count <= VIDEO_BUDGET.max_frames
    assert all(f.signal in ("vpdq", "pdq", "phash") for f in fingerprints.stored)


@pytest.mark.parametrize("name", sorted(VIDEO_SEEDS))
def test_every_video_seed_decodes(name: str) -> None:
    fingerprints = hash_animation(VIDEO_SEEDS[name], VIDEO_BUDGET)
    assert fingerprints.frame_count >= 2


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_every_seed_decodes(name: str) -> None:
    """The fuzzer starts from files that work, so its mutants probe real decoder paths."""
    fingerprints = hash_photo(SEEDS[name])
    assert (fingerprints.width, fingerprints.height) == (96, 64)
    Image.open(io.BytesIO(SEEDS[name])).verify()
