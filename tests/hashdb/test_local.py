"""Local features: crops, captions, tilts and screenshots of a photo are found; other photos
are not; the index keeps to the banks a query names."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from hashdb.local import DEFAULT_MIN_POINTS, LocalFeatures, LocalIndex, consistent_points, extract
from tests.media import photo

ORIGINAL = photo(501, (1024, 768))
BANK, OTHER_BANK = 1, 2


def features(image: Image.Image) -> LocalFeatures:
    found = extract(image)
    assert found is not None
    return found


def captioned(image: Image.Image) -> Image.Image:
    copy = image.copy()
    draw = ImageDraw.Draw(copy)
    draw.rectangle((0, 330, copy.width, 430), fill=(20, 20, 20))
    draw.text((40, 360), "look at this", fill=(255, 255, 255))
    draw.ellipse((800, 60, 880, 140), fill=(250, 210, 40))
    return copy


def screenshot(image: Image.Image) -> Image.Image:
    canvas = Image.new("RGB", (720, 1560), (18, 18, 18))
    canvas.paste(image.resize((720, 540)), (0, 500))
    ImageDraw.Draw(canvas).rectangle((40, 1200, 680, 1230), fill=(90, 90, 90))
    return canvas


EDITS = {
    "crop to 75%": lambda im: im.crop((128, 96, 896, 672)),
    "caption banner and sticker": captioned,
    "tilted 4 degrees": lambda im: im.rotate(4, resample=Image.Resampling.BILINEAR),
    "inside a phone screenshot": screenshot,
    "padded to a square": lambda im: _padded(im),
}


def _padded(image: Image.Image) -> Image.Image:
    square = Image.new("RGB", (1024, 1024), (0, 0, 0))
    square.paste(image, (0, 128))
    return square


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_edited_copies_are_found(edit: str) -> None:
    index = LocalIndex()
    index.add(7, BANK, features(ORIGINAL))
    index.add(8, BANK, features(photo(502, (1024, 768))))
    hits = index.search(features(EDITS[edit](ORIGINAL)), [BANK], DEFAULT_MIN_POINTS)
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
    crop = features(EDITS["crop to 75%"](ORIGINAL))
    assert index.search(crop, [BANK], DEFAULT_MIN_POINTS) == []
    assert [h.entry_id for h in index.search(crop, [OTHER_BANK], DEFAULT_MIN_POINTS)] == [7]
    index.remove(7)
    assert len(index) == 0
    assert index.search(crop, [OTHER_BANK], DEFAULT_MIN_POINTS) == []
    index.remove(7)  # removing twice is harmless


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
