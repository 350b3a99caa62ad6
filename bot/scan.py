"""Checking files without the bot: hash image and video files as the bot hashes them and
match them against a hash list or a bank with the bot's own rules (``bot.matcher``).

Used by ``hashguard hash``, ``match`` and ``block``. Files are hashed in a process pool, one
file per task, so a folder of thousands of photos uses every core and one undecodable file
is reported without stopping the rest.
"""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing
import os
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bot.config import Config, MatchingConfig
from bot.hashing import video_budgets
from bot.matcher import Match, Matcher, needs_regions
from hashdb.fingerprint import MediaDecodeError, MediaFingerprints
from hashdb.index import BlocklistIndex
from hashdb.lists import ListItem
from hashdb.local import LocalIndex
from hashdb.local_format import unpack
from hashdb.store import Entry
from hashdb.video import VideoBudget

#: Suffixes taken for videos and animations; everything else is tried as an image first.
VIDEO_SUFFIXES = frozenset(
    [
        ".mp4",
        ".m4v",
        ".mov",
        ".mkv",
        ".webm",
        ".avi",
        ".3gp",
        ".mpg",
        ".mpeg",
        ".ts",
        ".wmv",
        ".flv",
        ".gif",
    ]
)
#: Suffixes a folder scan picks up (a single file named on the command line is always tried).
MEDIA_SUFFIXES = VIDEO_SUFFIXES | frozenset(
    [
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".webp",
        ".bmp",
        ".tif",
        ".tiff",
        ".heic",
        ".heif",
        ".avif",
        ".jfif",
    ]
)


def media_files(paths: Iterable[str]) -> Iterator[Path]:
    """The files named, and the media files under the folders named (sorted, recursive)."""
    for name in paths:
        path = Path(name)
        if path.is_dir():
            for found in sorted(path.rglob("*")):
                if found.is_file() and found.suffix.lower() in MEDIA_SUFFIXES:
                    yield found
        else:
            yield path


@dataclass(frozen=True, slots=True)
class Hashed:
    path: Path
    fingerprints: MediaFingerprints | None
    error: str = ""


#: What a file is hashed for: ``check`` as the bot checks an upload (a large JPEG decoded
#: at reduced scale; a video sampled quickly, read mirrored and re-framed too, with local
#: features of a few moments), ``block`` as ``/block`` stores it (exact pixels, the mirror's
#: hash and features; a video sampled densely, every frame kept), ``list`` as ``block``
#: but a video's frames too dark or flat to match on left out (``hashguard hash``).
Purpose = Literal["check", "block", "list"]


def hash_file(
    path: Path, budget: VideoBudget, max_pixels: int, purpose: Purpose, regions: bool = False
) -> Hashed:
    """Fingerprint one file as the bot would for ``purpose``; a photo checked with
    ``regions`` brings the picture's own rectangles inside it too (for lists without local
    features)."""
    from hashdb.photo import hash_photo
    from hashdb.video import hash_animation

    check = purpose == "check"
    video = functools.partial(hash_animation, budget=budget, check=check, local=True)
    try:
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return Hashed(path, video(str(path)))
        data = path.read_bytes()
        try:
            photo = hash_photo(
                data,
                max_pixels=max_pixels,
                for_block=not check,
                quick=check,
                regions=regions and check,
            )
            return Hashed(path, photo)
        except MediaDecodeError as photo_error:
            try:
                return Hashed(path, video(data))
            except MediaDecodeError:
                raise photo_error from None
    except (OSError, MediaDecodeError) as exc:
        return Hashed(path, None, str(exc))


def hash_files(
    paths: list[Path],
    config: Config,
    *,
    jobs: int = 0,
    purpose: Purpose = "check",
    regions: bool = False,
) -> Generator[Hashed, None, None]:
    """``hash_file`` over many files, in input order, ``jobs`` processes (0: one per core).
    ``regions``: see ``hash_file``."""
    min_quality = config.matching.pdq_min_quality
    check, block = video_budgets(config.media, config.video, min_quality)
    budget = {
        "check": check,
        "block": block,
        "list": dataclasses.replace(block, min_quality=min_quality),
    }[purpose]
    workers = jobs or os.cpu_count() or 1
    if workers == 1 or len(paths) < 2:
        for path in paths:
            yield hash_file(path, budget, config.media.max_image_pixels, purpose, regions)
        return
    # "spawn", as the bot's own pool does: a forked child inherits the locks that the
    # parent's other threads (the store's, numba's, a test runner's) held at that moment,
    # and a decoder waiting on one of them never returns.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(
            hash_file,
            paths,
            [budget] * len(paths),
            [config.media.max_image_pixels] * len(paths),
            [purpose] * len(paths),
            [regions] * len(paths),
            chunksize=4,
        )


@dataclass(frozen=True, slots=True)
class ListIndex:
    """An in-memory index of hash list items, for matching files offline."""

    index: BlocklistIndex
    #: entry id -> what to call it in output (its label, or its line in the list).
    names: dict[int, str]
    #: Local features of a bank's blocked photos (hash lists carry none).
    local: LocalIndex | None = None

    @classmethod
    def of_items(cls, items: Iterable[ListItem], matcher: Matcher) -> ListIndex:
        entries: list[Entry] = []
        names: dict[int, str] = {}
        for number, item in enumerate(items, start=1):
            entry = Entry(
                id=number,
                chat_id=0,
                fingerprints=item.fingerprints,
                added_by=None,
                added_at=0.0,
                reason=item.reason,
                source="list",
                bank_id=1,
            )
            entries.append(matcher.indexable(entry))
            names[number] = item.label or f"line {item.line}"
        return cls(BlocklistIndex.build(entries), names)

    @classmethod
    def of_entries(
        cls,
        entries: Iterable[Entry],
        matcher: Matcher,
        features: Iterable[tuple[int, int, bytes]] = (),
    ) -> ListIndex:
        kept = [matcher.indexable(e) for e in entries]
        local = LocalIndex()
        local.add_many((i, b, unpack(data)) for i, b, data in features)
        return cls(BlocklistIndex.build(kept), {e.id: f"entry {e.id}" for e in kept}, local or None)

    def needs_regions(self, matching: MatchingConfig) -> bool:
        """Whether files are checked with the picture's own rectangles inside them too: by
        ``matching.region_probes`` (always, by default; with ``hash_only``, when some entry
        has no local features to find it re-framed: every entry of a hash list, a bank's
        photos blocked without them)."""
        return needs_regions(matching, self.index, self.local, self.banks())

    def banks(self) -> list[int]:
        return sorted({b for e in self.names if (b := self.index.bank_of(e)) is not None})


def best_match(
    lists: ListIndex, matcher: Matcher, fingerprints: MediaFingerprints, config: Config
) -> Match | None:
    """The closest entry the file matches under the config's rules, if any."""
    found = matcher.matches(
        lists.index,
        lists.banks(),
        fingerprints,
        include_phash=config.matching.phash_auto_delete,
        max_distance=config.matching.pdq_max_distance,
        local=lists.local if config.matching.local_match != "off" else None,
    )
    return found[0] if found else None
