"""Photo decoding and fingerprinting: image bytes -> PDQ (whole image + 8 dihedral) and pHash.

Plain synchronous functions; callers run them on a worker pool, never on the event loop.

PDQ is computed exactly as Meta's C++ reference CLI (``pdq-photo-hasher``) does, so hashes
exchanged with ThreatExchange / StopNCII lists compare bit for bit (checked against the
reference table in ``tests/hashdb/test_photo.py``):

* decode with Pillow and ``convert("RGB")`` (alpha is dropped, not composited: that is what
  the reference table expects for RGBA/LA/P images); EXIF orientation is ignored, like the
  reference. A rotated phone photo still matches because the 8 dihedral probes cover every
  rotation and flip;
* if either side is over 512 px, resize to exactly 512x512 by nearest neighbour, output row
  ``i`` taking source row ``i*h//512`` (same for columns), as ``pdq/cpp/io/pdqio.cpp`` does;
* hash with ``hashdb.pdq.compute_dihedral`` (our port of the reference, bit for bit), which
  gives all 8 rotations/flips from one DCT.

pHash is ``imagehash.phash`` on the full decoded RGB image, so values equal
``str(imagehash.phash(image))`` read as hex.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from typing import Final

import imagehash
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from hashdb import pdq
from hashdb.fingerprint import (
    Fingerprint,
    MediaDecodeError,
    MediaFingerprints,
    RegionProbes,
    SkipReason,
)
from hashdb.local import extract as extract_local
from hashdb.photo_regions import find_regions
from hashdb.signals import PDQ, PHASH

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "DIHEDRAL_TRANSFORMS",
    "MAX_SIDE",
    "PDQ_REFERENCE_DIMS",
    "PHOTO_KIND",
    "decode_image",
    "hash_image",
    "hash_photo",
    "pdq_fingerprints",
    "pdq_from_pixels",
    "phash_fingerprint",
    "reference_pixels",
    "region_probes",
    "to_rgb",
]

logger = logging.getLogger(__name__)

PHOTO_KIND: Final = "photo"

#: 40 Mpx covers every phone camera (a 200 Mpx sensor still saves 12-50 Mpx by default)
#: while capping a decode at ~120 MB of RGB; Pillow's own bomb limit (~89 Mpx) is higher.
DEFAULT_MAX_PIXELS: Final = 40_000_000
#: Telegram bots can download at most 20 MB through the cloud Bot API.
DEFAULT_MAX_BYTES: Final = 20 * 1024 * 1024
#: Longest side decoded. JPEG and GIF cannot exceed it (WebP stops at 16383); a PNG or TIFF
#: can, and Pillow keeps an 8-byte pointer per row of each copy: a 78 kB PNG of 1 x 40
#: million pixels, within the pixel limit, took 875 MB and 3 s to hash.
MAX_SIDE: Final = 65_535

#: The reference CLI squashes anything larger to exactly this size (``DOWNSAMPLE_DIMS``).
PDQ_REFERENCE_DIMS: Final = 512
#: imagehash's pHash works on a 32x32 greyscale copy.
_PHASH_SIDE: Final = 32

#: Order of the hashes ``hashdb.pdq.compute_dihedral`` (and C++ ``--pdqdih``) returns.
DIHEDRAL_TRANSFORMS: Final = pdq.DIHEDRAL_ORDER

# Only these decoders are ever tried: Pillow would otherwise sniff ~40 formats, some of them
# (EPS via Ghostscript, FITS, PSD) far larger attack surface than a moderation bot needs.
# MPO (multi-picture camera JPEGs) is opened by the JPEG plugin's factory.
_WANTED_FORMATS: Final = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF", "AVIF")
_FORMAT_NAMES: Final = "JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC/HEIF, AVIF"

_formats_lock = threading.Lock()
_open_formats: tuple[str, ...] | None = None

_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


def _formats() -> tuple[str, ...]:
    """Register pillow-heif's opener once (lazily: it loads libheif) and list the decoders."""
    global _open_formats
    if _open_formats is not None:
        return _open_formats
    with _formats_lock:
        if _open_formats is None:
            try:
                import pillow_heif

                pillow_heif.register_heif_opener()
            except ImportError:
                logger.warning("heif_decoder_unavailable", exc_info=True)
            Image.init()
            # Image.open raises KeyError for a format name no plugin registered (e.g. a
            # Pillow built without AVIF), so offer only the ones that exist.
            _open_formats = tuple(f for f in _WANTED_FORMATS if f in Image.OPEN)
    return _open_formats


def decode_image(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    draft_side: int | None = None,
) -> Image.Image:
    """Decode image bytes to an RGB image (first frame of animations), within size limits.

    ``draft_side``: a JPEG is decoded at 1/2, 1/4 or 1/8 scale in libjpeg (``Image.draft``,
    scaling in the DCT) as long as its longer side stays at least this long. About 40%
    faster for a 1280 px photo, but not the reference's pixels: PDQ hashes move
    by a few bits (``bench/fingerprint.py --draft`` measures it), so only checks of uploads
    use it, never what is stored or exported.

    Raises ``MediaDecodeError`` naming the problem for empty, oversized, unsupported,
    corrupt or truncated data and for images whose header promises more than
    ``max_pixels``; that check runs before any pixel is decoded, so a decompression bomb
    never allocates. Every exception a hostile file can provoke becomes ``MediaDecodeError``.
    """
    size = len(data)
    if size == 0:
        raise MediaDecodeError("image data is empty (0 bytes)", SkipReason.EMPTY)
    if size > max_bytes:
        raise MediaDecodeError(
            f"image data is {size} bytes; limit is {max_bytes}", SkipReason.TOO_LARGE
        )
    formats = _formats()
    try:
        image = Image.open(io.BytesIO(data), formats=list(formats))
    except UnidentifiedImageError as exc:
        raise MediaDecodeError(
            f"not a supported image format ({size} bytes); expected one of: {_FORMAT_NAMES}",
            SkipReason.UNSUPPORTED,
        ) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaDecodeError(_bomb_message(exc, max_pixels), SkipReason.TOO_LARGE) from exc
    except Exception as exc:  # hostile headers can trip any exception type in a plugin
        raise MediaDecodeError(f"cannot read image header: {type(exc).__name__}: {exc}") from exc

    fmt = image.format or "image"
    width, height = image.size
    try:
        _check_dimensions(width, height, max_pixels)
        if draft_side is not None and image.format == "JPEG":
            scale = next((k for k in (8, 4, 2) if max(width, height) // k >= draft_side), 1)
            if scale > 1:
                # Pillow picks the largest scale whose result covers the requested size:
                # rounding down asks for exactly ``scale`` whatever the sides' parity.
                image.draft("RGB", (max(1, width // scale), max(1, height // scale)))
        image.load()
        rgb = to_rgb(image)
    except MediaDecodeError:
        image.close()
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        image.close()
        raise MediaDecodeError(_bomb_message(exc, max_pixels), SkipReason.TOO_LARGE) from exc
    except Exception as exc:  # truncated/corrupt data: OSError, SyntaxError, ValueError, ...
        image.close()
        raise MediaDecodeError(
            f"cannot decode {fmt} image {width}x{height} (corrupt or truncated data): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if rgb is not image:
        # Drops the decoder's file object and source pixels now rather than at GC time.
        image.close()
    return rgb


def _check_dimensions(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise MediaDecodeError(f"image is {width}x{height}; both sides must be at least 1")
    if max(width, height) > MAX_SIDE:
        raise MediaDecodeError(
            f"image is {width}x{height}; sides may be at most {MAX_SIDE} px", SkipReason.TOO_LARGE
        )
    pixels = width * height
    limit = _pixel_limit(max_pixels)
    if pixels > limit:
        raise MediaDecodeError(
            f"image is {width}x{height} = {pixels} pixels; limit is {limit}", SkipReason.TOO_LARGE
        )


def _pixel_limit(max_pixels: int) -> int:
    # Pillow only warns (DecompressionBombWarning) between its MAX_IMAGE_PIXELS and twice
    # that; a warning is not a refusal, so its limit is enforced here too. Warnings filters
    # are not used to do it: they are process-global and this runs on worker threads.
    if Image.MAX_IMAGE_PIXELS is None:
        return max_pixels
    return min(max_pixels, int(Image.MAX_IMAGE_PIXELS))


def _bomb_message(exc: Exception, max_pixels: int) -> str:
    # Pillow refuses > 2 * MAX_IMAGE_PIXELS inside Image.open, before the size is visible
    # to us; its message carries the pixel count.
    found = _BOMB_PIXELS.search(str(exc))
    count = found.group(1) if found else "too many"
    return (
        f"image is {count} pixels (refused by Pillow as a possible decompression bomb); "
        f"limit is {_pixel_limit(max_pixels)}"
    )


def to_rgb(image: Image.Image) -> Image.Image:
    """Return ``image`` as RGB the way the reference table expects (no copy if already RGB).

    ``convert("RGB")`` drops alpha without compositing; that gives exact reference matches
    for RGBA, LA and P-with-transparency files. 16-bit greyscale is the one exception (see
    below).
    """
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16"):
        # Pillow's convert() clips 16-bit values at 255, leaving a near-white image
        # (quality 36 on the upstream I16.png test file) that PDQ would discard. Keeping
        # the high byte is what Pillow already does for 16-bit RGB PNG/TIFF, so a 16-bit
        # grey file hashes like its 8-bit copy. No reference agrees on this mode anyway
        # (see the refdata README), so we choose the useful one.
        high = (np.asarray(image) >> 8).astype(np.uint8)
        return Image.fromarray(high).convert("RGB")
    return image.convert("RGB")


def reference_pixels(image: Image.Image) -> npt.NDArray[np.uint8]:
    """The RGB uint8 array the C++ reference CLI would hash for ``image``.

    Images with a side over 512 px are resized to exactly 512x512 by nearest neighbour,
    row ``i`` from source row ``i*h//512`` and likewise for columns.
    """
    rgb = to_rgb(image)
    width, height = rgb.size
    if width > PDQ_REFERENCE_DIMS or height > PDQ_REFERENCE_DIMS:
        # Pillow's NEAREST resize samples pixel centres ((i+0.5)*h/512), one row off the
        # reference. An affine NEAREST transform shifted by half a step samples i*h/512;
        # the scale h/512 is exact in binary floating point, so the floor is exactly
        # i*h//512 (the tests check it against the numpy definition). It skips copying the
        # full-size image into numpy, which costs more than the resize itself.
        sx = width / PDQ_REFERENCE_DIMS
        sy = height / PDQ_REFERENCE_DIMS
        rgb = rgb.transform(
            (PDQ_REFERENCE_DIMS, PDQ_REFERENCE_DIMS),
            Image.Transform.AFFINE,
            (sx, 0.0, -0.5 * sx, 0.0, sy, -0.5 * sy),
            Image.Resampling.NEAREST,
        )
    return np.asarray(rgb)


def pdq_from_pixels(pixels: npt.NDArray[np.uint8]) -> tuple[Fingerprint, ...]:
    """The 8 dihedral PDQ fingerprints of an RGB uint8 array, in ``DIHEDRAL_TRANSFORMS`` order.

    The array is hashed as given (no 512 px step); the first hash equals
    ``hashdb.pdq.compute(pixels)``. Quality is computed once and applies to all 8.
    """
    vectors, quality = pdq.compute_dihedral(pixels)
    # Each vector is 256 0/1 values, most significant bit first; packbits gives the same
    # integer as int("".join(map(str, bits)), 2), ~20x faster.
    packed = np.packbits(np.asarray(vectors, dtype=np.uint8), axis=1)
    q = int(quality)
    return tuple(
        Fingerprint(PDQ.name, int.from_bytes(row.tobytes(), "big"), quality=q) for row in packed
    )


def pdq_fingerprints(image: Image.Image) -> tuple[Fingerprint, tuple[Fingerprint, ...]]:
    """Whole-image PDQ as the reference CLI computes it, and its 8 dihedral variants.

    Returns ``(whole, dihedral)`` where ``dihedral[0] == whole``.
    """
    dihedral = pdq_from_pixels(reference_pixels(image))
    return dihedral[0], dihedral


def mirrored_probe(image: Image.Image) -> tuple[Fingerprint, ...]:
    """PDQ of the left-right mirror of a large image, sampled as the reference samples.

    The dihedral hashes mirror the 512 px sample, whose nearest-neighbour columns are not
    those of the mirrored photo's own sample; on fine texture that moves a mirrored copy
    past the match radius (4% of the dev corpus's flipped photos). Stored with a blocked
    photo, this is the hash a mirrored copy of it has. Images of 512 px or less are not
    sampled, so their dihedral hashes are already exact.
    """
    if max(image.size) <= PDQ_REFERENCE_DIMS:
        return ()
    vector, quality = pdq.compute(reference_pixels(ImageOps.mirror(image)))
    packed = np.packbits(np.asarray(vector, dtype=np.uint8))
    return (Fingerprint(PDQ.name, int.from_bytes(packed.tobytes(), "big"), quality=int(quality)),)


def region_probes(image: Image.Image, *, local: bool = False) -> tuple[RegionProbes, ...]:
    """The picture's own rectangles inside an RGB image (an upload), each with its 8 PDQ
    orientations (see ``hashdb.photo_regions``), and with ``local`` a grid cell's own local
    features (see ``RegionProbes.local``).

    Each rectangle is hashed as the reference hashes a whole photo (``reference_pixels``):
    a blocked photo's hash was made that way, and a region hashed from a smoother copy
    (area-averaged to 128-256 px) lands 10-20 bits further from it.
    """
    found = find_regions(np.asarray(image.convert("L")))
    probes = []
    for region in found:
        crop = image.crop((region.left, region.top, region.right, region.bottom))
        features = extract_local(crop) if local and region.kind == "cell" else None
        probes.append(RegionProbes(region.kind, pdq_from_pixels(reference_pixels(crop)), features))
    return tuple(probes)


def phash_fingerprint(image: Image.Image, *, quick: bool = False) -> Fingerprint:
    """imagehash pHash of the full image; ``.hex`` equals ``str(imagehash.phash(image))``.

    ``quick`` (for checks only) shrinks by whole factors before the Lanczos step
    (``reducing_gap``): three times faster, within 2 bits of the exact value.
    """
    if quick:
        small = image.convert("L").resize(
            (_PHASH_SIDE, _PHASH_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0
        )
        # imagehash resizes an "L" image of the target size again: a no-op.
        bits = imagehash.phash(small).hash
    else:
        bits = imagehash.phash(image).hash  # 8x8 bools, row-major, MSB first in str()
    value = int.from_bytes(np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes(), "big")
    return Fingerprint(PHASH.name, value)


def hash_image(
    image: Image.Image,
    *,
    for_block: bool = False,
    local: bool = True,
    quick: bool = False,
    regions: bool = False,
) -> MediaFingerprints:
    """Fingerprint an already-decoded image (any mode; converted as ``decode_image`` does).

    ``for_block`` adds the mirrored photo's own PDQ hash to what is stored (see
    ``mirrored_probe``), and its local features (``local_mirror``): they cost as much as
    the photo's own, so they are paid once when an item is blocked rather than on every
    upload. ``local`` False skips the local
    features (a third of the time), for a check where no bank has any. ``quick``: see
    ``phash_fingerprint``. ``regions`` (checks only) adds the PDQ orientations of the
    picture's own rectangles found inside the image (borders, fills, interface, caption
    bars and grid cells trimmed; see ``region_probes``), for lists without local features.
    """
    if quick and for_block:
        raise ValueError("quick hashing is for checks; stored hashes use the exact pixels")
    if regions and for_block:
        raise ValueError("region probes are for checks; a blocked photo is stored whole")
    rgb = to_rgb(image)
    pixels = reference_pixels(rgb)
    dihedral = pdq_from_pixels(pixels)
    whole = dihedral[0]
    phash = phash_fingerprint(rgb, quick=quick)
    mirrored = mirrored_probe(rgb) if for_block else ()
    # A check looks twice at a washed-out or dim upload (see hashdb.local.SECOND_LOOK_SIDE).
    features = extract_local(rgb, second_look=not for_block) if local else None
    # ORB is not mirror-invariant: a blocked photo also keeps its mirror image's features,
    # so a copy that is mirrored and cropped is found (paid once here, not per upload).
    mirror_features = extract_local(ImageOps.mirror(rgb)) if local and for_block else None
    return MediaFingerprints(
        kind=PHOTO_KIND,
        # Whole-image PDQ first: it is what exchanged hash lists carry.
        stored=(whole, phash, *mirrored),
        probes=(*dihedral, phash),
        width=rgb.width,
        height=rgb.height,
        local=features,
        local_mirror=mirror_features if features is not None else None,
        regions=region_probes(rgb, local=local) if regions else (),
    )


def hash_photo(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    for_block: bool = False,
    quick: bool = False,
    local: bool = True,
    regions: bool = False,
) -> MediaFingerprints:
    """Decode image bytes and fingerprint them; raises ``MediaDecodeError`` if undecodable.

    ``quick`` decodes a large JPEG at reduced scale (see ``decode_image``'s ``draft_side``):
    for checking an upload, not for hashes that are stored. ``local`` and ``regions``: see
    ``hash_image``.
    """
    image = decode_image(
        data,
        max_pixels=max_pixels,
        max_bytes=max_bytes,
        draft_side=PDQ_REFERENCE_DIMS if quick else None,
    )
    return hash_image(image, for_block=for_block, local=local, quick=quick, regions=regions)
