"""The two stages of an upload's check (``bot.uploads`` with a ``bot.second_stage``), without
Telegram: the hashes decide a copy at once while the local-feature search of a crop waits
its turn in the second stage, and a full second stage sends its oldest upload to review."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from PIL import Image

from bot.albums import AlbumTracker
from bot.core import Core
from bot.fair_queue import FairQueue
from bot.fingerprint_cache import FingerprintCache
from bot.jobs import DeleteMessages
from bot.second_stage import OVERLOADED, Pending, SecondStage
from bot.uploads import Fetched, MediaFacts, Upload, UploadChecker, Verdict
from hashdb.fingerprint import MediaFingerprints
from hashdb.photo import hash_image
from hashdb.signals import PDQ
from hashdb.sqlite import SQLiteStore
from tests.bot.core_parts import ADMIN, CHAT, SENDER, StandInUpload, core_parts
from tests.media import edited_copy, photo


@dataclasses.dataclass
class Staged:
    core: Core
    queue: FairQueue
    hashes: FingerprintCache[Fetched]
    checker: UploadChecker
    stage: SecondStage

    async def check(self, upload: Upload, platform: StandInUpload) -> Verdict:
        platform.file_id = upload.media.file_unique_id
        verdict = await self.checker.check(upload, platform)
        await self.queue.wait_idle()
        return verdict

    async def settle(self) -> None:
        await self.queue.wait_idle()
        await self.stage.wait_idle()

    async def block(self, image: Image.Image) -> int:
        result = await self.core.blocklist.block(
            CHAT,
            hash_image(image, for_block=True),
            actor=ADMIN,
            reason="r",
            message_id=1,
            sender=SENDER,
            file_unique_id="orig",
        )
        return result.entry.id

    async def events(self) -> list[tuple[str, int | None, str]]:
        return [
            (e.event, e.message_id, e.detail)
            for e in reversed(await self.core.audit.recent(CHAT, 50))
        ]


def upload(message_id: int, file_unique_id: str) -> Upload:
    return Upload(
        CHAT, "The group", message_id, SENDER, MediaFacts("photo", "photo", file_unique_id)
    )


async def make_staged(store: SQLiteStore, *, size: int = 200) -> Staged:
    parts = await core_parts(store)
    stage = SecondStage(size=size)
    checker = UploadChecker(
        parts.core,
        parts.enforcer,
        queue=parts.queue,
        hashes=parts.hashes,
        albums=AlbumTracker(),
        album_action="album",
        second_stage=stage,
    )
    return Staged(parts.core, parts.queue, parts.hashes, checker, stage)


@pytest_asyncio.fixture
async def staged(sqlite_store: SQLiteStore) -> AsyncIterator[Staged]:
    harness = await make_staged(sqlite_store)
    yield harness
    await harness.queue.close()
    await harness.stage.close()
    await harness.core.close()


def crop_only(image: Image.Image) -> Fetched:
    """An edited copy whose PDQ hashes are all far off: only its local features find the
    original (as a crop's or a caption's would be)."""
    fingerprints: MediaFingerprints = hash_image(edited_copy(image), local=True)
    far = tuple(
        dataclasses.replace(p, value=p.value ^ ((1 << 256) - 1)) if p.signal == PDQ.name else p
        for p in fingerprints.probes
    )
    return Fetched(dataclasses.replace(fingerprints, probes=far))


def hold(stage: SecondStage) -> asyncio.Event:
    """Occupy the stage's one search with a job that waits for the returned event."""
    gate = asyncio.Event()

    async def run() -> None:
        await gate.wait()

    async def skipped(reason: str) -> None:
        raise AssertionError(f"the holding job was skipped: {reason}")

    assert stage.submit(Pending(run, skipped))
    return gate


def deleted(platform: StandInUpload) -> list[int]:
    return [i for step in platform.made if isinstance(step, DeleteMessages) for i in step.messages]


async def test_a_copy_is_deleted_at_once_while_the_crop_search_waits(staged: Staged) -> None:
    original = photo(1)
    await staged.block(original)
    gate = hold(staged.stage)

    crop = StandInUpload(staged, fingerprints=crop_only(original), strict=True)
    await staged.check(upload(41, "crop"), crop)
    # No hash matched: the crop waits for its local search, nothing decided yet.
    assert crop.made == [] and staged.stage.waiting == 1

    plain = StandInUpload(staged, edited_copy(original), strict=True)
    await staged.check(upload(42, "plain"), plain)
    # The first stage did not wait for the second: the copy is gone while it is blocked.
    assert deleted(plain) == [42] and staged.stage.busy
    assert crop.made == []

    gate.set()
    await staged.settle()
    assert deleted(crop) == [41]
    events = [(e, m) for e, m, _ in await staged.events()]
    assert ("match_deleted", 41) in events and ("match_deleted", 42) in events


async def test_a_crop_is_deleted_by_the_second_stage(staged: Staged) -> None:
    original = photo(1)
    entry = await staged.block(original)
    crop = StandInUpload(staged, fingerprints=crop_only(original), strict=True)
    assert await staged.check(upload(41, "crop"), crop) == Verdict("queued")
    await staged.settle()
    assert deleted(crop) == [41]
    [detail] = [d for e, m, d in await staged.events() if e == "match_deleted" and m == 41]
    assert "local features:" in detail
    assert crop.flagged == []
    assert await staged.core.strikes.count(CHAT, SENDER.id) == 1
    assert [e for e, m, _ in await staged.events() if m == 41] == ["match_deleted"]
    assert entry in [e.entry_id for e in await staged.core.audit.recent(CHAT, 10) if e.entry_id]


async def test_an_unrelated_upload_passes_both_stages(staged: Staged) -> None:
    await staged.block(photo(1))
    platform = StandInUpload(staged, photo(2), strict=True)
    await staged.check(upload(41, "other"), platform)
    await staged.settle()
    assert platform.made == [] and platform.flagged == []
    assert [e for e, _, _ in await staged.events()] == ["block"]


async def test_review_setting_holds_a_crop_found_by_the_second_stage(staged: Staged) -> None:
    original = photo(1)
    entry = await staged.block(original)
    await staged.core.settings.change(CHAT, "local_match", "review", actor=ADMIN)
    crop = StandInUpload(staged, fingerprints=crop_only(original), strict=True)
    await staged.check(upload(41, "crop"), crop)
    await staged.settle()
    assert crop.made == []
    [note] = crop.flagged
    assert note.startswith(f"entry #{entry}, ") and note.endswith("matching points")


async def test_a_full_second_stage_sends_its_oldest_upload_to_review(
    sqlite_store: SQLiteStore,
) -> None:
    staged = await make_staged(sqlite_store, size=2)
    original = photo(1)
    await staged.block(original)
    gate = hold(staged.stage)
    crops = [StandInUpload(staged, fingerprints=crop_only(original), strict=True) for _ in range(3)]
    for n, platform in enumerate(crops):
        await staged.check(upload(41 + n, f"crop{n}"), platform)
    await staged.queue.wait_idle()
    gate.set()
    await staged.settle()

    # The oldest was taken out unchecked: seen by the admins, audited, not deleted.
    oldest, *rest = crops
    assert oldest.made == [] and oldest.flagged == [f"not checked for crops: {OVERLOADED}"]
    [audit] = [d for e, m, d in await staged.events() if e == "crop_check_skipped"]
    assert OVERLOADED in audit
    assert [(e, m) for e, m, _ in await staged.events() if e == "crop_check_skipped"] == [
        ("crop_check_skipped", 41)
    ]
    # The newer ones were searched and deleted.
    assert [deleted(p) for p in rest] == [[42], [43]]
    assert staged.stage.skipped == 1
    await staged.queue.close()
    await staged.stage.close()
    await staged.core.close()


async def test_closing_sends_what_still_waits_to_review(sqlite_store: SQLiteStore) -> None:
    staged = await make_staged(sqlite_store)
    original = photo(1)
    await staged.block(original)
    hold(staged.stage)  # never released: the search in progress is cut short
    crop = StandInUpload(staged, fingerprints=crop_only(original), strict=True)
    await staged.check(upload(41, "crop"), crop)
    await staged.queue.close()
    await staged.stage.close(grace=0.1)
    assert crop.flagged == ["not checked for crops: the bot was stopping"]
    assert ("crop_check_skipped", 41) in [(e, m) for e, m, _ in await staged.events()]
    assert not staged.stage.busy
    await staged.core.close()


def test_second_stage_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="size=0"):
        SecondStage(size=0)
