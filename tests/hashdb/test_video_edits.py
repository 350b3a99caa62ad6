"""Edited copies of a blocked video, checked as the bot checks an upload (``check=True``):
mirrored, re-timed, sampled at keyframes. Each test makes its own clips and matches them with
the bot's ``Matcher`` over an index of the blocked video's hashes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from bot.config import load_config
from bot.matcher import Match, Matcher
from hashdb.fingerprint import MediaFingerprints
from hashdb.index import BlocklistIndex
from hashdb.local import LocalIndex
from hashdb.store import Entry
from hashdb.video import VideoBudget, hash_video, scan_video
from tests import media

CONFIG = load_config(None, environ={"HASHGUARD_TELEGRAM_TOKEN": "x"})
UPLOAD = VideoBudget()
BLOCK = VideoBudget(seconds_per_sample=0.2, max_frames=3000, max_seconds=120, min_quality=0)
BANK = 1
Frame = npt.NDArray[np.uint8]


@dataclasses.dataclass
class Blocklist:
    """Blocked videos as the bot indexes them (hashes, and local features of moments)."""

    matcher: Matcher = dataclasses.field(
        default_factory=lambda: Matcher(CONFIG.matching, CONFIG.video)
    )
    entries: list[Entry] = dataclasses.field(default_factory=list)
    local: LocalIndex = dataclasses.field(default_factory=LocalIndex)

    def block(self, data: bytes) -> int:
        fingerprints = hash_video(data, BLOCK, local=True)
        entry_id = len(self.entries) + 1
        entry = Entry(entry_id, 0, fingerprints.stored, None, 0.0, "", "test", bank_id=BANK)
        self.entries.append(self.matcher.indexable(entry))
        if fingerprints.moments:
            self.local.add(entry_id, BANK, fingerprints.moments)
        return entry_id

    def matches(self, upload: bytes | MediaFingerprints, *, local: bool = True) -> list[Match]:
        fingerprints = (
            hash_video(upload, UPLOAD, check=True, local=local)
            if isinstance(upload, bytes)
            else upload
        )
        return self.matcher.matches(
            BlocklistIndex.build(self.entries),
            [BANK],
            fingerprints,
            include_phash=False,
            max_distance=CONFIG.matching.pdq_max_distance,
            local=self.local if local else None,
        )


def _speed(data: bytes, factor: float) -> bytes:
    """Played ``factor`` times as fast, at the same frame rate (frames dropped or repeated)."""
    frames, fps = media.decode_video(data)
    count = max(1, round(len(frames) / factor))
    return media.encode_video(
        [frames[min(len(frames) - 1, int(i * factor))] for i in range(count)], fps=fps
    )


def test_a_mirrored_copy_matches_through_its_mirrored_frames() -> None:
    blocklist = Blocklist()
    original = media.video(301, seconds=8)
    entry = blocklist.block(original)
    mirrored = media.edit_frames(original, media.mirror)

    found = blocklist.matches(mirrored, local=False)
    assert [m.entry_id for m in found] == [entry]
    # The whole frames alone (no mirrored view) do not meet the blocked ones.
    plain = dataclasses.replace(hash_video(mirrored, UPLOAD, check=True), views=())
    assert blocklist.matches(plain, local=False) == []


@pytest.mark.parametrize("factor", [0.75, 1.5, 2.0])
def test_a_sped_up_or_slowed_copy_matches(factor: float) -> None:
    """The rule counts frames found anywhere in the blocked video, not frames at the same
    time, so a copy played faster or slower still matches."""
    blocklist = Blocklist()
    original = media.video(302, seconds=12)
    entry = blocklist.block(original)
    found = blocklist.matches(_speed(original, factor), local=False)
    assert [m.entry_id for m in found] == [entry]
    assert blocklist.matches(media.video(303, seconds=12), local=False) == []


def test_an_upload_with_frequent_keyframes_is_sampled_at_its_keyframes() -> None:
    dense = media.video(304, seconds=12, gop=30)  # a keyframe every second
    scan = scan_video(dense, UPLOAD, check=True)
    assert scan.spacing == pytest.approx(1.0)
    assert [round(f.seconds, 3) for f in scan.frames] == [float(s) for s in range(12)]
    # A keyframe every 10 s: the frames between are decoded and sampled every second.
    sparse = media.encode_video(
        media.video_frames(304, seconds=12),
        gop=300,
        options={"x264-params": "scenecut=0"},  # no extra keyframes at cuts
    )
    assert scan_video(sparse, UPLOAD, check=True).spacing == pytest.approx(1.0)
    # Either way the checked hashes stay near the full-size ones a block stores.
    exact = scan_video(sparse, UPLOAD).frames
    for checked, stored in zip(scan_video(sparse, UPLOAD, check=True).frames, exact, strict=True):
        assert checked.seconds == pytest.approx(stored.seconds, abs=0.05)
        assert (checked.value ^ stored.value).bit_count() <= 24


def test_a_clip_inside_a_longer_video_sampled_every_two_seconds_is_found() -> None:
    """An upload sampled at keyframes 2 s apart hits every other second of a blocked clip;
    the blocked clip's seconds are counted in 2 s windows, so the share found stays high."""
    blocklist = Blocklist()
    # A new picture every second: a sample meets only the second it was taken in.
    pictures = [np.asarray(media.photo(310 + i, (320, 180))) for i in range(10)]
    frames = [picture for picture in pictures for _ in range(30)]
    entry = blocklist.block(media.encode_video(frames, fps=30))
    before, _ = media.decode_video(media.video(306, seconds=16))
    after, _ = media.decode_video(media.video(307, seconds=16))
    compilation = media.encode_video(
        before + frames + after, fps=30, gop=60, options={"x264-params": "scenecut=0"}
    )
    fingerprints = hash_video(compilation, UPLOAD, check=True)
    assert fingerprints.sample_spacing == pytest.approx(2.0)
    found = blocklist.matches(fingerprints, local=False)
    assert [m.entry_id for m in found] == [entry]
    assert found[0].query_pct is not None and found[0].query_pct < 50
    # Half the clip's seconds were sampled, and every sampled one was found.
    assert found[0].compared_pct == pytest.approx(100)


def _fixed_camera(seed: int, *, seconds: float = 8, fps: int = 15) -> bytes:
    """A fixed camera's clip: one unmoving textured background (a room), and textured
    figures walking across it; ``seed`` picks the figures and their paths."""
    rng = np.random.default_rng(seed)
    width, height, figure = 480, 270, (72, 144)
    background = np.asarray(media.photo(400, (width, height))).copy()
    scenery = np.random.default_rng(400)
    for _ in range(300):  # shelves, frames, tiles: a room's worth of corners
        x, y = scenery.integers(0, (width, height))
        w, h = scenery.integers(4, 30, size=2)
        colour = tuple(int(c) for c in scenery.integers(0, 256, 3))
        cv2.rectangle(background, (int(x), int(y)), (int(x + w), int(y + h)), colour, -1)
    figures = [np.asarray(media.photo(seed * 10 + i, (144, 288)).resize(figure)) for i in range(6)]
    starts = rng.uniform((0, 0), (width - figure[0], height - figure[1]), size=(6, 2))
    speeds = rng.uniform(10, 30, size=(6, 2)) * rng.choice((-1, 1), size=(6, 2))
    frames = []
    for number in range(round(seconds * fps)):
        frame = background.copy()
        for picture, start, speed in zip(figures, starts, speeds, strict=True):
            x, y = (start + speed * number / fps) % (width - figure[0], height - figure[1])
            frame[int(y) : int(y) + figure[1], int(x) : int(x) + figure[0]] = picture
        frames.append(frame)
    return media.encode_video(frames, fps=fps)


def test_another_clip_from_the_same_fixed_camera_is_not_a_copy() -> None:
    """The same unmoving background fits one transform with hundreds of points; only what
    moves tells two clips of one camera apart, and a cropped copy still shows it."""
    blocklist = Blocklist()
    original = _fixed_camera(1)
    entry = blocklist.block(original)
    assert blocklist.matches(_fixed_camera(2)) == []

    def crop(frame: np.ndarray) -> np.ndarray:
        cut = frame[20:236, 30:414]  # 80% of each side, off centre
        return np.ascontiguousarray(cv2.resize(cut, (480, 270)))

    found = blocklist.matches(media.edit_frames(original, crop))
    assert [(m.entry_id, m.signal) for m in found] == [(entry, "local")]


REFRAMINGS = [media.letterbox, media.vertical_blur, media.caption_bar]


@pytest.mark.parametrize("reframe", REFRAMINGS, ids=["letterbox", "blur", "caption"])
def test_a_reframed_copy_matches_through_its_pictures_own_rectangle(
    reframe: Callable[[Frame], Frame],
) -> None:
    blocklist = Blocklist()
    original = media.video(320, seconds=8, size=(320, 180))
    entry = blocklist.block(original)
    copy = hash_video(media.edit_frames(original, reframe), UPLOAD, check=True)
    # Hashes alone (no local features), so the region view is what finds it.
    assert [m.entry_id for m in blocklist.matches(copy, local=False)] == [entry]
    assert blocklist.matches(dataclasses.replace(copy, views=copy.views[:1]), local=False) == []
    # An unrelated video re-framed the same way matches nothing.
    other = media.edit_frames(media.video(321, seconds=8, size=(320, 180)), reframe)
    assert blocklist.matches(other) == []


def test_a_blocked_reframed_video_also_catches_the_plain_picture_and_other_reframings() -> None:
    """The admin blocked a letterboxed repost; the clip without bars, or re-framed another
    way, must match too: the blocked video keeps its picture's own rectangle."""
    blocklist = Blocklist()
    original = media.video(322, seconds=8, size=(320, 180))
    entry = blocklist.block(media.edit_frames(original, media.letterbox))
    for copy in (original, media.edit_frames(original, media.vertical_blur)):
        assert [m.entry_id for m in blocklist.matches(copy, local=False)] == [entry]
    assert blocklist.matches(media.video(323, seconds=8, size=(320, 180)), local=False) == []


@pytest.mark.parametrize("first_part_seconds", [8, 70], ids=["early", "late"])
def test_a_stream_that_changes_size_midway_is_still_checked(first_part_seconds: int) -> None:
    """MPEG-TS parts joined end to end, letterboxed 320x240 then 32x24: the picture's
    rectangle is found and used in frames of the first size only, early (before it is
    known) or late (after)."""
    first = media.encode_video(
        (
            media.letterbox(f)
            for f in media.iter_video_frames(330, seconds=first_part_seconds, fps=5)
        ),
        fps=5,
        fmt="mpegts",
        gop=5,  # a keyframe a second: 60 samples before the size changes in the late case
    )
    second = media.encode_video(
        media.iter_video_frames(331, seconds=8, fps=5, size=(32, 24)),
        fps=5,
        fmt="mpegts",
        first_pts=first_part_seconds * 5,
    )
    for check in (True, False):
        found = hash_video(first + second, UPLOAD, check=check)
        # Both parts are read: samples come from past the size change.
        assert max(f.seconds or 0 for f in found.stored) > first_part_seconds + 4


def test_a_video_of_unknown_length_still_gets_several_moments() -> None:
    """A live-recorded WebM says nothing of its length; its moments are taken every few
    seconds instead of all at its first frame."""
    frames = media.ken_burns(media.textured(332), seconds=12, fps=10)
    live = media.encode_video(frames, fps=10, codec="libvpx-vp9", fmt="webm", options={"live": "1"})
    fingerprints = hash_video(live, UPLOAD, check=True, local=True)
    assert len({m.seconds for m in fingerprints.moments}) >= 3
