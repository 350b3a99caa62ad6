"""Local features on copies that show a blocked photo among other things: a phone photo of a
monitor showing it (perspective, washed-out contrast, glare, grain), and a cell of a collage.
Unrelated screen photos and collages are not found."""

from __future__ import annotations

import io

import cv2
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
from tests.media import encode, photo, textured

BANK = 1


def screen_photo(picture: Image.Image, *, tilt: float, washed: float, seed: int = 0) -> Image.Image:
    """A 1600x1200 phone photo of a monitor showing ``picture``: the screen's plane turned
    by ``tilt`` (0..1 of the frame's side, how much nearer the left edge is), light of the
    room lifting its blacks by ``washed``, a glare spot, a dark bezel, a blurred backdrop,
    defocus and sensor grain, saved as a JPEG."""
    rng = np.random.default_rng(seed)
    width, height = 1600, 1200
    backdrop = photo(seed + 900, (width, height)).filter(ImageFilter.GaussianBlur(20))
    frame = np.asarray(backdrop, dtype=np.float32) * 0.5
    # The monitor's corners: the right edge farther away, so shorter (keystone).
    top, bottom = 300 - 120 * tilt, 900 + 120 * tilt
    screen = np.array([[330, top], [1320, 320], [1320, 880], [330, bottom]], dtype=np.float32)
    bezel = screen + np.array([[-24, -24], [24, -20], [24, 20], [-24, 24]], dtype=np.float32)
    mask = np.zeros((height, width), dtype=np.uint8)
    cv2.fillConvexPoly(mask, np.round(bezel).astype(np.int32), 255)
    frame[mask > 0] = 25
    # The viewer shows the picture on black, fitted to the screen.
    viewer = Image.new("RGB", (1280, 720), (0, 0, 0))
    shown = picture.copy()
    shown.thumbnail((1200, 680))
    viewer.paste(shown, ((1280 - shown.width) // 2, (720 - shown.height) // 2))
    corners = np.array([[0, 0], [1280, 0], [1280, 720], [0, 720]], dtype=np.float32)
    homography = cv2.getPerspectiveTransform(corners, screen)
    warped = cv2.warpPerspective(np.asarray(viewer), homography, (width, height))
    inside = cv2.warpPerspective(np.full((720, 1280), 255, np.uint8), homography, (width, height))
    lit = warped.astype(np.float32) * (1 - washed) + 255 * washed
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    glare = 0.45 * np.exp(-((xs - 1000) ** 2 + (ys - 450) ** 2) / (2 * 160.0**2))
    lit += (255 - lit) * glare[..., None]
    alpha = (inside.astype(np.float32) / 255)[..., None]
    frame = frame * (1 - alpha) + lit * alpha
    frame = cv2.GaussianBlur(frame, (0, 0), 1.2) + rng.normal(0, 4, frame.shape)
    image = Image.fromarray(np.clip(frame, 0, 255).astype(np.uint8))
    return Image.open(io.BytesIO(encode(image, quality=75)))


def collage(cells: list[Image.Image], n: int, gutter: int = 10) -> Image.Image:
    """``cells`` cropped to squares in an n x n grid on white, 1200 px wide, as collage
    apps export them."""
    side = (1200 - gutter * (n + 1)) // n
    canvas = Image.new("RGB", (1200, 1200), (255, 255, 255))
    for k, cell in enumerate(cells):
        row, column = divmod(k, n)
        edge = min(cell.size)
        x, y = (cell.width - edge) // 2, (cell.height - edge) // 2
        square = cell.crop((x, y, x + edge, y + edge)).resize((side, side))
        canvas.paste(square, (gutter + column * (side + gutter), gutter + row * (side + gutter)))
    return Image.open(io.BytesIO(encode(canvas, quality=85)))


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
