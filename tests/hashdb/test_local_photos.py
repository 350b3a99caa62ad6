"""Local features on copies that show a blocked photo among other things: a phone photo of a
monitor showing it (perspective, washed-out contrast, glare, grain), and a cell of a collage.
Unrelated screen photos and collages are not found."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from hashdb.local import (
    DEFAULT_MIN_POINTS,
    MAX_FEATURES,
    SECOND_LOOK_SHARE,
    LocalIndex,
    consistent_points,
    extract,
    takes_second_look,
)
from hashdb.local_format import LocalFeatures
from hashdb.photo import hash_photo
from tests.media import collage, encode, photo, screen_photo, textured

BANK = 1


def blocked_index(*pictures: Image.Image) -> LocalIndex:
    """Pictures blocked as the bot blocks them (their features and their mirror's), with
    entry ids 1, 2..."""
    index = LocalIndex()
    for entry_id, picture in enumerate(pictures, 1):
        fingerprints = hash_photo(encode(picture, quality=95), for_block=True)
        assert fingerprints.local is not None and fingerprints.local_mirror is not None
        index.add(entry_id, BANK, (fingerprints.local, fingerprints.local_mirror))
    return index


def query(image: Image.Image) -> LocalFeatures:
    """An upload's features, as the bot's check takes them (quick decode)."""
    found = hash_photo(encode(image, quality=90), quick=True).local
    assert found is not None
    return found


BLOCKED = textured(41)
OTHER = textured(42)


def test_a_photo_of_a_screen_showing_a_blocked_photo_is_found() -> None:
    index = blocked_index(BLOCKED, OTHER)
    for tilt, washed in ((0.3, 0.1), (0.8, 0.3)):
        hits = index.search(
            query(screen_photo(BLOCKED, tilt=tilt, washed=washed)), [BANK], DEFAULT_MIN_POINTS
        )
        assert [hit.entry_id for hit in hits] == [1], (tilt, washed)


def test_a_washed_out_screen_photo_takes_a_second_look() -> None:
    # Reflected light and glare leave ORB's corner test little to find at 512 px; the
    # second look (larger, contrast equalised) is what finds the picture.
    washed = screen_photo(BLOCKED, tilt=0.8, washed=0.45)
    features = query(washed)
    assert len(features) > SECOND_LOOK_SHARE * MAX_FEATURES
    stored = extract(BLOCKED)
    assert stored is not None
    assert consistent_points(features, stored, perspective_below=DEFAULT_MIN_POINTS) >= (
        DEFAULT_MIN_POINTS
    )


def test_only_washed_out_dim_or_defocused_uploads_take_the_second_look() -> None:
    # A smooth but well-exposed photo has few corners too; looking again would cost every
    # such upload a second ORB pass at a larger size, for contrast it already has.
    smooth = photo(3, (1280, 960)).filter(ImageFilter.GaussianBlur(4))
    first = extract(smooth)
    assert first is not None and len(first) < SECOND_LOOK_SHARE * MAX_FEATURES
    assert not takes_second_look(smooth)
    checked = extract(smooth, second_look=True)
    assert checked is not None and len(checked) == len(first)
    pixels = np.asarray(smooth, dtype=np.float32)
    washed = Image.fromarray((pixels * 0.45 + 110).astype(np.uint8))
    dim = Image.fromarray((pixels * 0.35).astype(np.uint8))
    assert takes_second_look(washed)
    assert takes_second_look(dim)
    # Defocus can keep the grey range yet leave neighbouring pixels alike.
    defocused = smooth.convert("L").filter(ImageFilter.GaussianBlur(40))
    assert takes_second_look(ImageOps.autocontrast(defocused, cutoff=1))


def test_a_blocked_photo_is_found_as_one_cell_of_a_3x3_collage() -> None:
    fillers = [photo(700 + k, (800, 600)) for k in range(8)]
    index = blocked_index(BLOCKED, OTHER)
    for position in (0, 4, 8):
        cells = [*fillers[:position], BLOCKED, *fillers[position:]]
        hits = index.search(query(collage(cells, 3)), [BANK], DEFAULT_MIN_POINTS)
        assert [hit.entry_id for hit in hits] == [1], position


def test_unrelated_screen_photos_and_collages_are_not_found() -> None:
    index = blocked_index(BLOCKED, OTHER)
    unrelated = [textured(43 + k) for k in range(4)]
    uploads = [screen_photo(p, tilt=0.8, washed=0.3, seed=k) for k, p in enumerate(unrelated)]
    uploads += [collage([*unrelated, *(photo(710 + k, (800, 600)) for k in range(5))], 3)]
    uploads += [collage(unrelated, 2, gutter=0)]
    for upload in uploads:
        assert index.search(query(upload), [BANK], DEFAULT_MIN_POINTS) == []
