"""Low-detail photos (dark, blurred, smooth): the tighter rule that matches their re-encodes
and resizes (``bot.matcher.dim_matches``), on a real SQLite store and on a hash list."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from PIL import Image, ImageFilter

from bot.config import load_config
from bot.core import Core
from bot.matcher import DIM_MAX_DISTANCE, Matcher
from bot.values import Person
from hashdb.fingerprint import Fingerprint, MediaFingerprints
from hashdb.index import BlocklistIndex
from hashdb.photo import hash_photo
from hashdb.signals import PDQ, PHASH
from hashdb.sqlite import SQLiteStore
from hashdb.store import Entry
from tests.media import dark, encode, photo

CHAT = -1001
ADMIN = Person(10, "Alice")
CONFIG = load_config(None, environ={"HASHGUARD_TELEGRAM_TOKEN": "x"})


def smooth(image: Image.Image) -> Image.Image:
    """A hazy copy: an eighth of the contrast, blurred."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    hazy = pixels.mean() + (pixels - pixels.mean()) * 0.12
    return Image.fromarray(hazy.astype(np.uint8)).filter(ImageFilter.GaussianBlur(3))


def uploads(image: Image.Image) -> dict[str, bytes]:
    """What people re-post: re-encodes and resizes."""
    half = image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)
    larger = image.resize((image.width * 3 // 2, image.height * 3 // 2), Image.Resampling.LANCZOS)
    return {
        "jpeg q50": encode(image, quality=50),
        "webp": encode(image, "WEBP", quality=75),
        "half size": encode(half, quality=80),
        "x1.5": encode(larger, quality=85),
    }


def check(data: bytes) -> MediaFingerprints:
    # As the bot checks an upload: quick decoding.
    return hash_photo(data, quick=True)


def pdq_quality(fingerprints: MediaFingerprints) -> int:
    return fingerprints.stored[0].quality or 0


@pytest_asyncio.fixture
async def core(tmp_path: Path) -> AsyncIterator[Core]:
    store = SQLiteStore(tmp_path / "db.sqlite3")
    await store.open()
    service = Core.build(store, CONFIG.matching, CONFIG.video, CONFIG.moderation)
    await service.load()
    yield service
    await service.close()
    await store.close()


async def block(core: Core, image: Image.Image, file_id: str) -> int:
    fingerprints = hash_photo(encode(image, quality=90), for_block=True)
    result = await core.blocklist.block(
        CHAT,
        fingerprints,
        actor=ADMIN,
        reason="r",
        message_id=None,
        sender=None,
        file_unique_id=file_id,
    )
    return result.entry.id


@pytest.mark.parametrize("make", [dark, lambda image, seed: smooth(image)], ids=["dark", "smooth"])
async def test_dim_photo_blocked_its_reencodes_and_resizes_match(core: Core, make: object) -> None:
    assert callable(make)
    picture = make(photo(3, (800, 600)), 3)
    blocked = hash_photo(encode(picture, quality=90), for_block=True)
    # The case this rule is for: under the normal rule's quality floor, yet not featureless.
    assert 1 <= pdq_quality(blocked) < CONFIG.matching.pdq_min_quality
    result = await core.blocklist.block(
        CHAT, blocked, actor=ADMIN, reason="r", message_id=None, sender=None, file_unique_id="F"
    )
    assert result.low_detail and not result.low_quality
    for name, data in uploads(picture).items():
        match = await core.matching.find_match(CHAT, check(data))
        assert match is not None, name
        assert match.entry_id == result.entry.id
        assert match.signal == PDQ.name and match.distance <= DIM_MAX_DISTANCE
        assert match.phash_distance is not None
        assert "low-detail photo" in match.describe()


async def test_dim_matches_survive_a_restart(tmp_path: Path) -> None:
    # Loaded from the store in bulk (add_columns), low-detail hashes are indexed too.
    store = SQLiteStore(tmp_path / "db.sqlite3")
    await store.open()
    first = Core.build(store, CONFIG.matching, CONFIG.video, CONFIG.moderation)
    await first.load()
    picture = dark(photo(5, (800, 600)), 5)
    entry_id = await block(first, picture, "F")
    await first.close()
    second = Core.build(store, CONFIG.matching, CONFIG.video, CONFIG.moderation)
    await second.load()
    match = await second.matching.find_match(CHAT, check(uploads(picture)["half size"]))
    await second.close()
    await store.close()
    assert match is not None and match.entry_id == entry_id


async def test_dark_and_flat_unrelated_photos_do_not_match(core: Core) -> None:
    for seed in range(4):
        await block(core, dark(photo(seed, (800, 600)), seed), f"F{seed}")
    others = [dark(photo(seed, (800, 600)), seed) for seed in range(10, 16)]
    others += [smooth(photo(seed, (800, 600))) for seed in range(10, 13)]
    # Pictures with next to nothing in them, whose hashes sit close to each other's.
    ramp = np.linspace(0, 60, 800)[None, :, None] * np.ones((600, 1, 3))
    others += [
        Image.new("RGB", (800, 600), (8, 8, 10)),
        Image.fromarray(ramp.astype(np.uint8)),
        dark(Image.new("RGB", (800, 600), (200, 180, 160)), 1),
    ]
    for number, image in enumerate(others):
        for name, data in uploads(image).items():
            assert await core.matching.find_match(CHAT, check(data)) is None, (number, name)


async def test_low_detail_probe_needs_phash_to_agree(core: Core) -> None:
    # A normal photo blocked; an upload with its very PDQ hash but a low quality (a darker
    # copy) matches only when pHash agrees too.
    fingerprints = hash_photo(encode(photo(8, (800, 600)), quality=90), for_block=True)
    await core.blocklist.block(
        CHAT,
        fingerprints,
        actor=ADMIN,
        reason="r",
        message_id=None,
        sender=None,
        file_unique_id="F",
    )
    dim = tuple(
        dataclasses.replace(p, quality=20) if p.signal == PDQ.name else p
        for p in fingerprints.probes
    )
    agreeing = dataclasses.replace(fingerprints, probes=dim, local=None)
    match = await core.matching.find_match(CHAT, agreeing)
    assert match is not None and match.phash_distance == 0
    far = tuple(
        dataclasses.replace(p, value=p.value ^ 0xFFFF) if p.signal == PHASH.name else p for p in dim
    )
    assert await core.matching.find_match(CHAT, dataclasses.replace(agreeing, probes=far)) is None
    # Quality 0 (no gradient at all) is never matched near, pHash or not.
    flat = tuple(dataclasses.replace(p, quality=0) if p.signal == PDQ.name else p for p in dim)
    assert await core.matching.find_match(CHAT, dataclasses.replace(agreeing, probes=flat)) is None


def _list_index(matcher: Matcher, fingerprints: tuple[Fingerprint, ...]) -> BlocklistIndex:
    entry = Entry(
        id=1,
        chat_id=0,
        fingerprints=fingerprints,
        added_by=None,
        added_at=0.0,
        reason="",
        source="list",
        bank_id=1,
    )
    return BlocklistIndex.build([matcher.indexable(entry)])


def test_hash_list_with_phash_catches_dim_copies_pdq_only_does_not() -> None:
    matcher = Matcher(CONFIG.matching, CONFIG.video)
    picture = dark(photo(6, (800, 600)), 6)
    blocked = hash_photo(encode(picture, quality=90), for_block=True)
    whole = blocked.stored[0]
    phash = next(f for f in blocked.stored if f.signal == PHASH.name)
    upload = dataclasses.replace(check(uploads(picture)["webp"]), local=None)

    def found(index: BlocklistIndex) -> bool:
        return bool(matcher.matches(index, [1], upload, include_phash=False, max_distance=31))

    # A list from ``hashguard hash`` (PDQ with its quality, and pHash) catches it.
    assert found(_list_index(matcher, (whole, phash)))
    # PDQ alone is not enough for a low-detail hash: nothing confirms it.
    assert not found(_list_index(matcher, (whole,)))
    # A chat's tighter radius bounds the low-detail rule too.
    tight = matcher.matches(
        _list_index(matcher, (whole, phash)), [1], upload, include_phash=False, max_distance=0
    )
    assert not tight or tight[0].distance == 0


def test_index_leaves_out_hashes_under_a_search_floor() -> None:
    index = BlocklistIndex()
    value = int(hash_photo(encode(photo(2)), local=False).stored[0].value)
    for entry_id, quality in ((1, 80), (2, 20)):
        index.add_entry(
            Entry(
                id=entry_id,
                chat_id=0,
                fingerprints=(Fingerprint(PDQ.name, value ^ entry_id, quality),),
                added_by=None,
                added_at=0.0,
                reason="",
                source="list",
                bank_id=1,
            )
        )
    probe = [Fingerprint(PDQ.name, value, 90)]
    assert {h.entry_id for h in index.query([1], probe, {PDQ.name: 4})} == {1, 2}
    kept = index.query([1], probe, {PDQ.name: 4}, {PDQ.name: 50})
    assert [h.entry_id for h in kept] == [1]
    assert [p[1] for p in index.pairs([1], PDQ.name, [value], 4, 50)] == [1]
    assert index.group_count(PDQ.name, 2) == 1 and index.group_count(PDQ.name, 2, 50) == 0
    assert index.count_below([1], PDQ.name, 50) == 1
    index.remove_entry(2)
    assert index.count_below([1], PDQ.name, 50) == 0
    assert [h.entry_id for h in index.query([1], probe, {PDQ.name: 4})] == [1]


def test_an_exempted_entry_does_not_keep_the_low_detail_rule_from_another() -> None:
    """The group exempted entry 1, which the normal rule matches; entry 2 is the same photo
    blocked dark (low detail, pHash agreeing), which only the low-detail rule matches."""
    matcher = Matcher(CONFIG.matching, CONFIG.video)
    upload = hash_photo(encode(photo(7, (800, 600)), quality=90), quick=True, local=False)
    pdq = next(f for f in upload.probes if f.signal == PDQ.name)
    phash = next(f for f in upload.probes if f.signal == PHASH.name)
    assert (pdq.quality or 0) >= 50

    def entry(entry_id: int, fingerprints: tuple[Fingerprint, ...]) -> Entry:
        return matcher.indexable(
            Entry(
                id=entry_id,
                chat_id=0,
                fingerprints=fingerprints,
                added_by=None,
                added_at=0.0,
                reason="",
                source="list",
                bank_id=1,
            )
        )

    index = BlocklistIndex.build(
        [
            entry(1, (Fingerprint(PDQ.name, pdq.value ^ 0b111, 100),)),
            entry(2, (Fingerprint(PDQ.name, pdq.value ^ 0b11, 30), phash)),
        ]
    )
    found = matcher.matches(
        index, [1], upload, include_phash=False, max_distance=31, exclude=frozenset({1})
    )
    assert [m.entry_id for m in found] == [2] and found[0].phash_distance == 0
