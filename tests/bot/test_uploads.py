"""The core's decision about an upload (``bot.uploads``), without Telegram: a real SQLite
store, the real fair queue, fingerprint cache and outbox, and a stand-in for the platform that
hashes test images and records the steps it is asked to make."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest_asyncio
from PIL import Image

from bot.albums import AlbumTracker
from bot.core import Core
from bot.enforcement import StrikeOutcome
from bot.fair_queue import FairQueue
from bot.fingerprint_cache import FingerprintCache
from bot.jobs import DeleteMessages, Restrict, Warn
from bot.uploads import Fetched, MediaFacts, Unchecked, Upload, UploadChecker, Verdict
from bot.values import Person
from hashdb.fingerprint import SkipReason
from hashdb.photo import hash_image
from hashdb.signals import PDQ
from hashdb.sqlite import SQLiteStore
from tests.bot.core_parts import ADMIN, CHAT, DEFAULTS, SENDER, StandInUpload, core_parts
from tests.media import edited_copy, photo

OTHER = Person(30, "Oscar")
MUTE_MINUTES = DEFAULTS.moderation.mute_minutes


@dataclass
class Harness:
    core: Core
    queue: FairQueue
    hashes: FingerprintCache[Fetched]
    checker: UploadChecker

    async def check(self, upload: Upload, platform: StandInUpload) -> Verdict:
        platform.file_id = upload.media.file_unique_id
        verdict = await self.checker.check(upload, platform)
        await self.queue.wait_idle()
        return verdict

    async def block(self, image: Image.Image, file_unique_id: str = "orig") -> int:
        result = await self.core.blocklist.block(
            CHAT,
            hash_image(image, for_block=True),
            actor=ADMIN,
            reason="r",
            message_id=1,
            sender=SENDER,
            file_unique_id=file_unique_id,
        )
        return result.entry.id

    async def events(self) -> list[tuple[str, int | None, str]]:
        return [
            (e.event, e.message_id, e.detail)
            for e in reversed(await self.core.audit.recent(CHAT, 50))
        ]


def upload(
    message_id: int, file_unique_id: str, *, sender: Person = SENDER, album: str | None = None
) -> Upload:
    return Upload(
        CHAT,
        "The group",
        message_id,
        sender,
        MediaFacts("photo", "photo", file_unique_id),
        album=album,
    )


async def make_harness(store: SQLiteStore, *, per_chat: int = 20) -> Harness:
    parts = await core_parts(store, per_chat=per_chat)
    checker = UploadChecker(
        parts.core,
        parts.enforcer,
        queue=parts.queue,
        hashes=parts.hashes,
        albums=AlbumTracker(),
        album_action="album",
    )
    return Harness(parts.core, parts.queue, parts.hashes, checker)


@pytest_asyncio.fixture
async def harness(sqlite_store: SQLiteStore) -> AsyncIterator[Harness]:
    harness = await make_harness(sqlite_store)
    yield harness
    await harness.queue.close()
    await harness.core.close()


async def test_a_re_upload_is_deleted_audited_struck_and_warned(harness: Harness) -> None:
    original = photo(1)
    entry = await harness.block(original)
    limit = (await harness.core.settings.get(CHAT)).warn_limit
    platform = StandInUpload(harness, edited_copy(original))
    # Downloading and hashing wait their turn in the queue: decided there.
    assert await harness.check(upload(41, "copy"), platform) == Verdict("queued")
    assert platform.made == [
        DeleteMessages((41,), audited_by_record=True),
        Warn(SENDER, 1, limit, None, entry=entry),
    ]
    assert [(e, m) for e, m, _ in await harness.events()][-1] == ("match_deleted", 41)

    # A forward of the same file is answered from the cache, at once.
    verdict = await harness.check(upload(42, "copy"), platform)
    assert verdict.outcome == "delete" and verdict.match is not None
    assert verdict.match.entry_id == entry
    assert verdict.strike == StrikeOutcome(2, limit, None, MUTE_MINUTES)
    assert platform.hashed == 1
    assert await harness.core.strikes.count(CHAT, SENDER.id) == 2


async def test_an_unrelated_upload_is_allowed(harness: Harness) -> None:
    await harness.block(photo(1))
    platform = StandInUpload(harness, photo(2))
    assert await harness.check(upload(41, "other"), platform) == Verdict("queued")
    assert await harness.check(upload(42, "other"), platform) == Verdict("allow")
    assert platform.made == [] and (platform.fetches, platform.hashed) == (2, 1)
    assert [e for e, _, _ in await harness.events()] == ["block"]


async def test_the_file_an_admin_blocked_is_known_without_a_download(harness: Harness) -> None:
    entry = await harness.block(photo(1), "orig")
    platform = StandInUpload(harness)
    verdict = await harness.check(upload(41, "orig"), platform)
    assert verdict.outcome == "delete" and verdict.match is not None
    assert (verdict.match.entry_id, verdict.match.by_file_id) == (entry, True)
    assert platform.fetches == 0 and platform.made[0] == DeleteMessages(
        (41,), audited_by_record=True
    )


async def test_at_the_warn_limit_the_sender_is_restricted_unless_exempt(harness: Harness) -> None:
    await harness.block(photo(1), "orig")
    for key, value in (("warn_limit", "2"), ("warn_action", "mute")):
        await harness.core.settings.change(CHAT, key, value, actor=ADMIN)
    platform = StandInUpload(harness)
    await harness.check(upload(41, "orig"), platform)
    verdict = await harness.check(upload(42, "orig"), platform)
    assert verdict.strike is not None and verdict.strike.escalation == "mute"
    assert verdict.match is not None
    [restrict] = [step for step in platform.made if isinstance(step, Restrict)]
    assert (restrict.target, restrict.action, restrict.minutes) == (SENDER, "mute", MUTE_MINUTES)
    assert platform.made[-1] == Warn(SENDER, 2, 2, "mute", entry=verdict.match.entry_id)
    assert ("mute", None, f"muted for {MUTE_MINUTES} minutes") in await harness.events()

    # An admin cannot be restricted: warned only, with the same count.
    admin = StandInUpload(harness, exempt=True)
    await harness.check(upload(43, "orig", sender=OTHER), admin)
    verdict = await harness.check(upload(44, "orig", sender=OTHER), admin)
    assert verdict.strike == StrikeOutcome(2, 2, None, MUTE_MINUTES)
    assert not any(isinstance(step, Restrict) for step in admin.made)


async def test_a_dry_run_only_audits_the_match(harness: Harness) -> None:
    await harness.block(photo(1), "orig")
    await harness.core.settings.change(CHAT, "dry_run", "on", actor=ADMIN)
    platform = StandInUpload(harness)
    verdict = await harness.check(upload(41, "orig"), platform)
    assert verdict.outcome == "dry_run" and platform.made == []
    assert ("match_dry_run", 41) in [(e, m) for e, m, _ in await harness.events()]
    assert await harness.core.strikes.count(CHAT, SENDER.id) == 0


async def test_media_that_cannot_be_checked_is_skipped_and_audited(harness: Harness) -> None:
    await harness.block(photo(1))
    platform = StandInUpload(
        harness, unchecked=Unchecked(SkipReason.UNDECODABLE, "no decoder for it")
    )
    await harness.check(upload(41, "broken"), platform)
    assert platform.made == []
    [skipped] = [d for e, m, d in await harness.events() if e == "media_skipped" and m == 41]
    # The audit gets the reason's fixed words, never the raw detail.
    assert skipped.startswith("undecodable: ") and "no decoder" not in skipped


async def test_a_chat_past_its_queue_limit_is_skipped_and_audited(
    sqlite_store: SQLiteStore,
) -> None:
    harness = await make_harness(sqlite_store, per_chat=1)
    await harness.block(photo(1))
    gate = asyncio.Event()
    slow = StandInUpload(harness, photo(2), gate=gate)
    assert await harness.checker.check(upload(41, "slow"), slow) == Verdict("queued")
    refused = await harness.checker.check(upload(42, "next"), StandInUpload(harness, photo(3)))
    assert refused == Verdict("skip", skip=SkipReason.QUEUE_FULL)
    gate.set()
    await harness.queue.wait_idle()
    assert ("media_skipped", 42) in [(e, m) for e, m, _ in await harness.events()]
    await harness.queue.close()
    await harness.core.close()


async def test_an_album_goes_with_its_matching_item_with_one_strike(harness: Harness) -> None:
    entry = await harness.block(photo(1), "orig")
    platform = StandInUpload(harness, photo(2))
    assert await harness.check(upload(51, "unrelated", album="A"), platform) == Verdict("queued")
    verdict = await harness.check(upload(52, "orig", album="A"), platform)
    assert verdict.outcome == "delete"
    # A late item follows the album out, audited without a strike.
    late = await harness.check(upload(53, "late", album="A"), platform)
    assert late.outcome == "album" and late.match is not None and late.match.entry_id == entry
    deletions = [step for step in platform.made if isinstance(step, DeleteMessages)]
    assert deletions == [
        DeleteMessages((51, 52), batch=True, audited_by_record=True),
        DeleteMessages((53,), batch=True),
    ]
    assert sum(isinstance(step, Warn) for step in platform.made) == 1
    assert await harness.core.strikes.count(CHAT, SENDER.id) == 1
    details = [d for e, m, d in await harness.events() if m == 53]
    assert any("removed with its album (1 item(s))" in d for d in details)


async def test_a_local_match_in_a_group_that_reviews_them_is_held(harness: Harness) -> None:
    original = photo(1)
    entry = await harness.block(original)
    await harness.core.settings.change(CHAT, "local_match", "review", actor=ADMIN)
    # The copy's PDQ hashes are far off; only its local features find the original.
    fingerprints = hash_image(edited_copy(original), local=True)
    far = tuple(
        dataclasses.replace(p, value=p.value ^ ((1 << 256) - 1)) if p.signal == PDQ.name else p
        for p in fingerprints.probes
    )
    held = Fetched(dataclasses.replace(fingerprints, probes=far))
    platform = StandInUpload(harness, fingerprints=held)
    await harness.check(upload(41, "copy"), platform)
    assert platform.made == []
    [note] = platform.flagged
    assert note.startswith(f"entry #{entry}, ") and note.endswith("matching points")
    assert ("match_review", 41) in [(e, m) for e, m, _ in await harness.events()]


async def test_a_check_that_raises_goes_to_the_platform_s_error_path(harness: Harness) -> None:
    platform = StandInUpload(harness)  # no image: its fetch raises
    await harness.check(upload(41, "file"), platform)
    assert [str(error) for error in platform.failures] == ["the test gave no image"]
