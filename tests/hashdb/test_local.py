"""Local features: crops, captions, tilts and screenshots of a photo are found; other photos
are not; the index keeps to the banks a query names. Videos: a cropped, mirrored copy is found
when two of its moments agree, not on one; unrelated clips are not found."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageDraw, ImageOps

from hashdb.local import (
    DEFAULT_MIN_POINTS,
    MOMENT_FEATURES,
    LocalIndex,
    consistent_points,
    extract,
    extract_array,
)
from hashdb.local_format import LocalFeatures, pack_moments, unpack
from tests.media import PHOTO_EDITS, decode_video, encode_video, ken_burns, photo, textured

ORIGINAL = photo(501, (1024, 768))
BANK, OTHER_BANK = 1, 2


def features(image: Image.Image) -> LocalFeatures:
    found = extract(image)
    assert found is not None
    return found


@pytest.mark.parametrize("edit", sorted(PHOTO_EDITS))
def test_edited_copies_are_found(edit: str) -> None:
    index = LocalIndex()
    index.add(7, BANK, features(ORIGINAL))
    index.add(8, BANK, features(photo(502, (1024, 768))))
    hits = index.search(features(PHOTO_EDITS[edit](ORIGINAL)), [BANK], DEFAULT_MIN_POINTS)
    assert [hit.entry_id for hit in hits] == [7]
    assert hits[0].points >= DEFAULT_MIN_POINTS


def test_other_photos_are_not_found() -> None:
    index = LocalIndex()
    index.add(7, BANK, features(ORIGINAL))
    for seed in range(510, 516):
        other = features(photo(seed, (1024, 768)))
        assert index.search(other, [BANK], DEFAULT_MIN_POINTS) == []
        assert consistent_points(other, features(ORIGINAL)) < DEFAULT_MIN_POINTS


def test_search_keeps_to_the_named_banks_and_forgets_removed_entries() -> None:
    index = LocalIndex()
    index.add(7, OTHER_BANK, features(ORIGINAL))
    # Which banks hold features decides whether a check extracts any.
    assert index.holds_any([OTHER_BANK, BANK]) and not index.holds_any([BANK])
    crop = features(PHOTO_EDITS["crop to 75%"](ORIGINAL))
    assert index.search(crop, [BANK], DEFAULT_MIN_POINTS) == []
    assert [h.entry_id for h in index.search(crop, [OTHER_BANK], DEFAULT_MIN_POINTS)] == [7]
    index.remove(7)
    assert len(index) == 0 and not index.holds_any([OTHER_BANK])
    assert index.search(crop, [OTHER_BANK], DEFAULT_MIN_POINTS) == []
    index.remove(7)  # removing twice is harmless
    index.add_many([(8, BANK, features(ORIGINAL)), (8, BANK, features(ORIGINAL))])
    index.add(8, OTHER_BANK, features(ORIGINAL))  # re-adding an id moves it
    assert index.holds_any([OTHER_BANK]) and not index.holds_any([BANK])


def test_featureless_images_have_no_local_features() -> None:
    assert extract(Image.new("RGB", (800, 600), (120, 130, 140))) is None


def test_features_round_trip_through_bytes_and_refuse_garbage() -> None:
    original = features(ORIGINAL)
    back = LocalFeatures.from_bytes(original.to_bytes())
    assert (back.width, back.height) == (original.width, original.height)
    assert (back.points == original.points).all()
    assert (back.descriptors == original.descriptors).all()
    with pytest.raises(ValueError, match="unknown format"):
        LocalFeatures.from_bytes(b"\x09" + original.to_bytes()[1:])
    with pytest.raises(ValueError, match="do not hold"):
        LocalFeatures.from_bytes(original.to_bytes()[:-5])


def app_screenshot(picture: Image.Image, user: str, caption: str) -> Image.Image:
    """A phone screenshot of one app's post layout: its chrome, with ``picture`` in it."""
    shot = Image.new("RGB", (720, 1560), (250, 250, 250))
    draw = ImageDraw.Draw(shot)
    draw.rectangle((0, 0, 720, 60), fill=(240, 240, 240))
    draw.text((20, 20), "9:41   LTE  87%", fill=(0, 0, 0))
    draw.ellipse((20, 90, 80, 150), fill=(200, 80, 80))
    draw.text((100, 110), user, fill=(0, 0, 0))
    shot.paste(picture.resize((720, 720)), (0, 180))
    for x in (30, 110, 190):
        draw.ellipse((x, 920, x + 50, 970), outline=(0, 0, 0), width=3)
    draw.text((30, 1000), "Liked by bob and 1,024 others", fill=(0, 0, 0))
    draw.text((30, 1040), caption, fill=(0, 0, 0))
    for x in range(40, 720, 140):
        draw.rectangle((x, 1480, x + 40, 1520), outline=(0, 0, 0), width=3)
    return shot


def test_a_blocked_screenshot_matches_its_copies_not_the_same_apps_other_posts() -> None:
    blocked = app_screenshot(textured(519), "alice", "so much fun today")
    index = LocalIndex()
    index.add(7, BANK, features(blocked))
    # The app's chrome fits one transform with many points, but not the photo in between.
    for seed in range(520, 528):
        other_post = app_screenshot(textured(seed), "bob", "another day")
        assert index.search(features(other_post), [BANK], DEFAULT_MIN_POINTS) == []
    cropped = blocked.crop((0, 100, 720, 1300))
    assert [h.entry_id for h in index.search(features(cropped), [BANK], DEFAULT_MIN_POINTS)] == [7]


def test_the_same_photo_blocked_twice_is_found_in_either_bank() -> None:
    index = LocalIndex()
    index.add(7, BANK, features(ORIGINAL))
    index.add(8, OTHER_BANK, features(ORIGINAL))
    crop = features(PHOTO_EDITS["crop to 75%"](ORIGINAL))
    assert [h.entry_id for h in index.search(crop, [BANK], DEFAULT_MIN_POINTS)] == [7]
    assert [h.entry_id for h in index.search(crop, [OTHER_BANK], DEFAULT_MIN_POINTS)] == [8]
    assert [h.entry_id for h in index.search(crop, [BANK, OTHER_BANK], DEFAULT_MIN_POINTS)] in (
        [7, 8],
        [8, 7],
    )


def test_entries_added_after_a_build_are_searched_until_the_next_build() -> None:
    index = LocalIndex()
    index.add_many([(1, BANK, features(photo(530, (1024, 768))))])
    index.add(7, BANK, features(ORIGINAL))  # into the recent part, searched by brute force
    crop = features(PHOTO_EDITS["crop to 75%"](ORIGINAL))
    assert [h.entry_id for h in index.search(crop, [BANK], DEFAULT_MIN_POINTS)] == [7]
    index.build()
    assert [h.entry_id for h in index.search(crop, [BANK], DEFAULT_MIN_POINTS)] == [7]


@pytest.mark.parametrize("size", [(96, 1), (1, 96), (4000, 20), (31, 31)])
def test_slivers_have_no_local_features_and_do_not_break_the_extractor(
    size: tuple[int, int],
) -> None:
    """Found by the decoder fuzzer: a BMP header claiming a height of -1 decoded to 96x1,
    and ORB's image pyramid raised on it, failing the whole fingerprint."""
    noise = np.random.default_rng(1).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    assert extract(Image.fromarray(noise)) is None


# --- videos: moments --------------------------------------------------------------------------

FPS = 10


def cropped_mirrored(frames: list[npt.NDArray[np.uint8]]) -> list[npt.NDArray[np.uint8]]:
    """A 75% crop, off-centre (towards the lower left), mirrored: as a repost edits it."""
    return [
        cv2.resize(np.ascontiguousarray(f[72:342, 32:512][:, ::-1]), (480, 270)) for f in frames
    ]


def decoded_grey(frames: list[npt.NDArray[np.uint8]]) -> list[npt.NDArray[np.uint8]]:
    """The frames through a real H.264 encode and decode, in grey as the decoder gives them."""
    back, _ = decode_video(encode_video(frames, fps=FPS))
    return [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in back]


def stored_moments(grey: list[npt.NDArray[np.uint8]]) -> list[LocalFeatures]:
    """A moment every second, as a blocked video is stored."""
    found = [
        extract_array(g, MOMENT_FEATURES, seconds=i / FPS)
        for i, g in enumerate(grey)
        if i % FPS == 0
    ]
    assert all(m is not None for m in found)
    return [m for m in found if m is not None]


def query_moments(grey: list[npt.NDArray[np.uint8]], at: list[float]) -> list[LocalFeatures]:
    """The upload's frames at these seconds, each with its mirror (the same moment)."""
    found = []
    for seconds in at:
        frame = grey[round(seconds * FPS)]
        for view in (frame, np.ascontiguousarray(frame[:, ::-1])):
            moment = extract_array(view, MOMENT_FEATURES, seconds=seconds)
            assert moment is not None
            found.append(moment)
    return found


BLOCKED_CLIP = decoded_grey(ken_burns(textured(540)))


def test_a_cropped_mirrored_copy_of_a_video_is_found_by_two_moments_not_one() -> None:
    index = LocalIndex()
    index.add(7, BANK, stored_moments(BLOCKED_CLIP))
    index.add(8, BANK, stored_moments(decoded_grey(ken_burns(textured(541)))))
    copy = decoded_grey(cropped_mirrored(ken_burns(textured(540))))
    # Between the stored moments, as an upload's samples fall.
    two = query_moments(copy, [0.5, 2.5])
    hits = index.search_moments(two, [BANK], DEFAULT_MIN_POINTS, min_moments=2)
    assert [(hit.entry_id, hit.moments) for hit in hits] == [(7, 2)]
    assert hits[0].points >= DEFAULT_MIN_POINTS
    # One moment (a frame and its mirror) is not enough, however well it matches...
    one = query_moments(copy, [1.5])
    assert index.search_moments(one, [BANK], DEFAULT_MIN_POINTS, min_moments=2) == []
    # Moments are told apart by their seconds: the same frame twice is still one.
    assert index.search_moments(one + one, [BANK], DEFAULT_MIN_POINTS, min_moments=2) == []
    # ...though it is a match of that one moment.
    assert [h.entry_id for h in index.search_moments(one, [BANK], DEFAULT_MIN_POINTS, 1)] == [7]
    # ORB is not mirror-invariant: without the mirrors, the copy is not found.
    unmirrored = two[::2]
    assert index.search_moments(unmirrored, [BANK], DEFAULT_MIN_POINTS, min_moments=1) == []


def test_the_same_video_blocked_twice_is_found_in_either_bank() -> None:
    """Near-identical moments of two entries share each descriptor's nearest neighbours;
    both entries must still get the votes to be verified."""
    dense = [
        extract_array(g, MOMENT_FEATURES, seconds=i / FPS) for i, g in enumerate(BLOCKED_CLIP)
    ][::5]
    moments = [m for m in dense if m is not None]
    index = LocalIndex()
    index.add(7, BANK, moments)
    index.add(8, OTHER_BANK, moments)
    copy = query_moments(decoded_grey(cropped_mirrored(ken_burns(textured(540)))), [0.7, 2.3])
    for banks, expected in (([BANK], {7}), ([OTHER_BANK], {8}), ([BANK, OTHER_BANK], {7, 8})):
        hits = index.search_moments(copy, banks, DEFAULT_MIN_POINTS)
        assert {hit.entry_id for hit in hits} == expected
        assert all(hit.moments == 2 for hit in hits)


def test_unrelated_clips_are_not_found() -> None:
    index = LocalIndex()
    index.add(7, BANK, stored_moments(BLOCKED_CLIP))
    for seed in (542, 543, 544):
        other = decoded_grey(ken_burns(textured(seed)))
        moments = query_moments(other, [0.5, 1.5, 2.5, 3.5])
        assert index.moment_points(moments, [BANK], DEFAULT_MIN_POINTS) == {}
        assert index.search_moments(moments, [BANK], DEFAULT_MIN_POINTS, min_moments=1) == []


def test_a_video_showing_a_cropped_blocked_photo_is_found() -> None:
    blocked = textured(545)
    index = LocalIndex()
    index.add(7, BANK, features(blocked))
    index.add(8, BANK, stored_moments(BLOCKED_CLIP))
    index.add(9, BANK, features(textured(546)))
    clip = decoded_grey(cropped_mirrored(ken_burns(blocked)))
    moments = query_moments(clip, [0.5, 2.0, 3.5])
    hits = index.search_moments(moments, [BANK], DEFAULT_MIN_POINTS)
    assert [(hit.entry_id, hit.moments) for hit in hits] == [(7, 3)]


def test_a_photo_is_never_matched_to_a_blocked_video_by_one_moment() -> None:
    """A video counts as shown only when two moments agree, and a photo is one moment: a
    photo showing one frame of a blocked video matches nothing, a blocked photo it shows
    still matches. Votes count per moment, so the one moment that shows the frame is
    verified, not drowned by the video's others."""
    unrelated = [
        dataclasses.replace(features(textured(seed)), seconds=float(number))
        for number, seed in enumerate(range(550, 560))
    ]
    index = LocalIndex()
    index.add(7, BANK, [*unrelated, dataclasses.replace(features(ORIGINAL), seconds=10.0)])
    crop = features(PHOTO_EDITS["crop to 75%"](ORIGINAL))
    assert index.search(crop, [BANK], DEFAULT_MIN_POINTS) == []
    index.add(9, BANK, features(ORIGINAL))
    assert [h.entry_id for h in index.search(crop, [BANK], DEFAULT_MIN_POINTS)] == [9]
    # Two moments of a video upload that show the frame find the blocked video.
    upload = [dataclasses.replace(crop, seconds=1.0), dataclasses.replace(crop, seconds=2.0)]
    found = index.search_moments(upload, [BANK], DEFAULT_MIN_POINTS)
    assert 7 in [hit.entry_id for hit in found]


def test_extract_array_takes_grey_frames_only() -> None:
    grey = np.asarray(ORIGINAL.convert("L"))
    found = extract_array(grey, seconds=2.5)
    assert found is not None and found.seconds == 2.5
    assert max(found.width, found.height) == 512 and len(found) <= 1000
    with pytest.raises(ValueError, match=r"shape \(768, 1024, 3\).*expected a 2-D uint8"):
        extract_array(np.asarray(ORIGINAL))
    assert extract_array(np.full((360, 640), 128, dtype=np.uint8)) is None
    assert extract_array(np.zeros((20, 4000), dtype=np.uint8)) is None


def test_moments_round_trip_through_bytes_and_refuse_garbage() -> None:
    moments = [
        dataclasses.replace(features(photo(560 + i, (1024, 768))), seconds=s)
        for i, s in enumerate([0.0, 1.5, None])
    ]
    # A fixed camera's background marks travel with the moment.
    moving = np.arange(len(moments[1])) % 3 == 0
    moments[1] = dataclasses.replace(moments[1], moving=moving)
    back = unpack(pack_moments(moments))
    assert len(back) == 3
    assert back[0].moving is None and back[2].moving is None
    assert back[1].moving is not None and (back[1].moving == moving).all()
    for original, copy in zip(moments, back, strict=True):
        assert copy.seconds == original.seconds
        assert (copy.width, copy.height) == (original.width, original.height)
        assert (copy.points == original.points).all()
        assert (copy.descriptors == original.descriptors).all()
    # A photo's version 1 blob reads as one moment.
    (single,) = unpack(moments[0].to_bytes())
    assert single.seconds is None and (single.descriptors == moments[0].descriptors).all()
    data = pack_moments(moments)
    with pytest.raises(ValueError, match=r"unknown format \(version 9\); expected one of 1, 2"):
        unpack(b"\x09" + data[1:])
    with pytest.raises(ValueError, match=r"version \?"):
        unpack(b"\x02")
    with pytest.raises(ValueError, match="do not hold moment 3 of 3"):
        unpack(data[:-5])
    with pytest.raises(ValueError, match="5 bytes after their 3 moments"):
        unpack(data + b"extra")
    with pytest.raises(ValueError, match="claim 0 moments; expected 1 to 64"):
        unpack(data[:4] + b"\x00\x00\x00\x00")
    with pytest.raises(ValueError, match="end inside the header of moment 1"):
        unpack(data[:12])
    flagged = bytearray(data)
    flagged[8 + 12] = 6  # the first moment's flags
    with pytest.raises(ValueError, match="has flags 0x6; expected 0 or 0x1"):
        unpack(bytes(flagged))
    with pytest.raises(ValueError, match="0 moments to pack"):
        pack_moments([])
    # The photo reader does not take a video's blob for a photo's.
    with pytest.raises(ValueError, match="unknown format"):
        LocalFeatures.from_bytes(data)
    with pytest.raises(ValueError, match="has no seconds"):
        LocalIndex().search_moments([moments[2]], [BANK], DEFAULT_MIN_POINTS)


def test_a_mirrored_and_cropped_copy_is_found_through_the_blocked_photos_mirror() -> None:
    """ORB is not mirror-invariant: a blocked photo keeps its mirror image's features too,
    so a copy that is both mirrored and cropped (which beats the dihedral hashes) is found."""
    from hashdb.photo import hash_image

    blocked = hash_image(ORIGINAL, for_block=True)
    assert blocked.local is not None and blocked.local_mirror is not None
    copy = hash_image(ImageOps.mirror(ORIGINAL).crop((40, 60, 860, 676)), quick=True)
    assert copy.local is not None
    index = LocalIndex()
    index.add(3, BANK, (blocked.local, blocked.local_mirror))
    index.add(4, BANK, features(photo(533, (1024, 768))))
    assert [h.entry_id for h in index.search(copy.local, [BANK], DEFAULT_MIN_POINTS)] == [3]
    # The photo's own features alone do not find it.
    alone = LocalIndex()
    alone.add(3, BANK, blocked.local)
    assert alone.search(copy.local, [BANK], DEFAULT_MIN_POINTS) == []
    # A photo with its mirror is still a photo: stored and read back as two moments.
    (first, second) = unpack(pack_moments((blocked.local, blocked.local_mirror)))
    assert first.seconds is None and second.seconds is None
