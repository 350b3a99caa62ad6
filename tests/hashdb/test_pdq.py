"""Tests of hashdb.pdq, our PDQ: the same bits and quality as the ``pdqhash`` package (Meta's
C++ reference behind Cython), on generated images of many sizes and kinds.

The golden values below were made with ``pdqhash`` 0.2.8 and checked equal to ``hashdb.pdq``
bit for bit (22 of 22 cases here, plus 39 random-noise images of 13 shapes, 4x9 to
1600x1004, in RGB and grey) before ``pdqhash`` was dropped; conformance with Meta's C++ CLI
on its reference images is in ``tests/hashdb/test_photo.py``. Where ``pdqhash`` is still
installed, it is compared live as well.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt
import pytest

from hashdb import pdq


def generated(height: int, width: int, kind: str) -> npt.NDArray[np.uint8]:
    """A test image from integer arithmetic only (no RNG whose stream could change)."""
    y, x = (a.astype(np.uint64) for a in np.mgrid[0:height, 0:width])
    if kind in ("noise", "grey"):
        mixed = (x * np.uint64(0x9E3779B97F4A7C15)) ^ (y * np.uint64(0xBF58476D1CE4E5B9))
        mixed ^= mixed >> np.uint64(29)
        mixed *= np.uint64(0x94D049BB133111EB)
        mixed ^= mixed >> np.uint64(32)
        channels = [(mixed >> np.uint64(8 * c)) & np.uint64(255) for c in range(3)]
        if kind == "grey":
            channels = [channels[0]] * 3
    elif kind == "stripes":
        channels = [((x // 3 + y // 5 + c) % 2) * np.uint64(200) for c in range(3)]
    elif kind == "flat":
        channels = [np.full_like(x, 90 + 40 * c) for c in range(3)]
    else:
        w, h = np.uint64(width), np.uint64(height)
        disc = (x * 5 - w * 3) ** 2 + (y * 5 - h * 2) ** 2 < (
            np.uint64(min(width, height)) * 5 // 4
        ) ** 2
        channels = [
            np.where(disc, np.uint64(230), x * 255 // max(w - 1, 1)),
            ((x // 37 + y // 23) % 2) * 170 + 40,
            np.where(disc, y * 255 // max(h - 1, 1), (x + 2 * y) // 45 % 4 * 60),
        ]
    return np.ascontiguousarray(np.stack(channels, axis=-1).astype(np.uint8))


def _hex(bits: npt.NDArray[np.uint8]) -> str:
    return f"{int(''.join(str(int(b)) for b in bits), 2):064x}"


def _digest(rows: npt.NDArray[np.uint8]) -> str:
    return hashlib.sha256(" ".join(_hex(row) for row in rows).encode()).hexdigest()[:16]


# (height, width, kind): (PDQ hex, quality, sha256 prefix of the 8 dihedral hexes, quality)
# as pdqhash 0.2.8 computes them. Below 5 px a side the hash is all zeros, quality 0.
GOLDEN = {
    (512, 512, "noise"): (
        "2a4b19a0d6f2aea799638cd2d2e5e3d83ad39129141cc446e7a57e9712f7152b",
        100,
        "4f31a51e192fd5fd",
        100,
    ),
    (512, 512, "card"): (
        "e228e232eae6ea6deae0e1cae80cea6a639d618cea5be233e29c68e668e3e28c",
        100,
        "ad18871cca75d692",
        100,
    ),
    (512, 512, "grey"): (
        "325de80dd228b883ad370012d4e079f2e6f6a7ea1a7c242cbf6d261f00f6b1fd",
        100,
        "e3cd7d013a99d7b1",
        100,
    ),
    (64, 64, "noise"): (
        "9db500e37fe3ef22c720a27821a1a3b211860da658ff75d4fcd05bc2348a75f9",
        100,
        "58bbc80c38dd6019",
        100,
    ),
    (64, 64, "card"): (
        "bba664d9329993666643913e8ccd6cd9b336b3266cd1c3326c996ccb93669324",
        100,
        "27f8903e24a8dc66",
        100,
    ),
    (960, 1280, "card"): (
        "977d91939d9742641373ccccce6c42639d9ccccc133333939d9cce63c673118c",
        100,
        "0551773ebada7478",
        100,
    ),
    (1004, 1600, "noise"): (
        "5afe95fac76cb4c39a6def8b5f30111e243e10cb017d6e3211a8841a56ed5e54",
        84,
        "5b3dd7a4557d1cf3",
        84,
    ),
    (1600, 1004, "card"): (
        "93ec886cce677199719cc873c673ca3339cc38c6c739e318e39c18e31c63e31c",
        100,
        "b9c2cd2b0147ae6d",
        100,
    ),
    (333, 777, "grey"): (
        "6ea4dc9bf1e0ba566d4712ce8936698410a53a288dc1b73d47f464f64a37b49e",
        100,
        "b097611a59cf33f1",
        100,
    ),
    (777, 333, "card"): (
        "cf43ee53ee133b443b44eb51c711eb103e46ba43ef10eb1ce3143a433a63eb14",
        100,
        "d6ea8618e4fcbaa8",
        100,
    ),
    (7, 3000, "card"): (
        "4d930010b26cffffb26c6dbb4d93b76c4d936dbfb26c4d93b26c924c4d930000",
        100,
        "a519ec55725682de",
        100,
    ),
    (3000, 7, "noise"): (
        "9386b12a392cca776dad658b652da0de6dc9c19f38d43d28918e4f216ed16f81",
        100,
        "45b0163e8b42ba30",
        100,
    ),
    (128, 128, "stripes"): (
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        100,
        "832a9c506f0c399a",
        100,
    ),
    (129, 257, "stripes"): (
        "0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff",
        100,
        "f3eba68b7815fb81",
        100,
    ),
    (63, 65, "noise"): (
        "b9b090b5f5e3af62c760067821218bb131421da418ff79d4fc90dbc235dba5f9",
        100,
        "8d0228d93611ddef",
        100,
    ),
    (34, 42, "card"): (
        "55aa95baaad5552a333a2ad5556a6662aad595ea11832b9555aace63aa5555aa",
        72,
        "ce8f98fbc4469d09",
        72,
    ),
    (5, 5, "noise"): (
        "9b267e1f649981e064d9c1f0cb723e0f3e0f3e0f9b263e1f64d9c1f0c0f0c1f0",
        100,
        "44502e544ed73f55",
        100,
    ),
    (5, 200, "grey"): (
        "ad5b219c52a4da236fc78b7baf5314849020259cad5b21dc52a4da636fc7c37b",
        100,
        "ac2e8a454e9a23d0",
        100,
    ),
    (200, 5, "card"): (
        "348d318c94a5ce736b5a348d318c6c9bcb72cb72318cb48dd6b5cb72ce73318c",
        100,
        "14ad0cda8f4689a0",
        100,
    ),
    (300, 400, "flat"): (
        "2c4b8200000011340000cc531134554b000011342c4b11340000a7a11134cc53",
        0,
        "e619909946633bcc",
        0,
    ),
    (4, 100, "noise"): (
        "0000000000000000000000000000000000000000000000000000000000000000",
        0,
        "e47f4361d5f7fd48",
        0,
    ),
    (100, 4, "card"): (
        "0000000000000000000000000000000000000000000000000000000000000000",
        0,
        "e47f4361d5f7fd48",
        0,
    ),
}


@pytest.mark.parametrize("case", sorted(GOLDEN), ids=lambda c: f"{c[0]}x{c[1]}-{c[2]}")
def test_hashes_equal_pinned_pdqhash_values(case: tuple[int, int, str]) -> None:
    pixels = generated(*case)
    expected_hex, expected_quality, expected_digest, expected_dihedral_quality = GOLDEN[case]
    bits, quality = pdq.compute(pixels)
    rows, dihedral_quality = pdq.compute_dihedral(pixels)
    assert (_hex(bits), quality) == (expected_hex, expected_quality)
    assert rows.shape == (8, 256)
    assert (_digest(rows), dihedral_quality) == (expected_digest, expected_dihedral_quality)


@pytest.mark.parametrize("case", sorted(GOLDEN), ids=lambda c: f"{c[0]}x{c[1]}-{c[2]}")
def test_hashes_equal_pdqhash_where_installed(case: tuple[int, int, str]) -> None:
    pdqhash = pytest.importorskip("pdqhash", reason="pdqhash not installed (no longer needed)")
    pixels = generated(*case)
    bits, quality = pdq.compute(pixels)
    theirs, their_quality = pdqhash.compute(pixels)
    assert (_hex(bits), quality) == (_hex(theirs), their_quality)
    rows, dihedral_quality = pdq.compute_dihedral(pixels)
    their_rows, their_dihedral_quality = pdqhash.compute_dihedral(pixels)
    assert [_hex(r) for r in rows] == [_hex(r) for r in their_rows]
    assert dihedral_quality == their_dihedral_quality


def test_the_first_dihedral_hash_is_the_plain_hash() -> None:
    pixels = generated(240, 320, "card")
    bits, quality = pdq.compute(pixels)
    rows, dihedral_quality = pdq.compute_dihedral(pixels)
    assert (_hex(rows[0]), dihedral_quality) == (_hex(bits), quality)
    # The 8 orientations of an asymmetric picture are 8 different hashes.
    assert len({_hex(row) for row in rows}) == 8


def test_views_hash_like_contiguous_copies() -> None:
    pixels = generated(300, 400, "card")
    view = pixels[::-1, 10:-10]
    assert _hex(pdq.compute(view)[0]) == _hex(pdq.compute(np.ascontiguousarray(view))[0])


@pytest.mark.parametrize(
    "pixels",
    [np.zeros((20, 20), np.uint8), np.zeros((20, 20, 4), np.uint8), np.zeros((20, 20, 3))],
    ids=["grey", "rgba", "float"],
)
def test_anything_but_rgb_uint8_is_refused_with_what_it_was(pixels: npt.NDArray[np.uint8]) -> None:
    with pytest.raises(ValueError, match=r"height x width x 3 uint8 array, not .* of shape"):
        pdq.compute(pixels)
