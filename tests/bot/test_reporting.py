"""The core's decisions about reports, their review and /block by reply (``bot.reporting``,
``bot.blocking``), without Telegram: a real SQLite store, the real fair queue, fingerprint
cache and outbox, and a stand-in for the platform that hashes test images and records what it
is asked to do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest_asyncio
from PIL import Image

from bot.blocking import Blocked, BlockRequest, ReplyBlocker
from bot.core import Core
from bot.fair_queue import FairQueue
from bot.fingerprint_cache import BLOCK_MODE, FingerprintCache
from bot.jobs import DeleteMessages, Review, Step, Warn
from bot.reporting import (
    BANNED_TEXT,
    BUSY_TEXT,
    Decision,
    Reported,
    Reporting,
    ReportVerdict,
)
from bot.uploads import Fetched, MediaFacts, Unchecked
from bot.values import Person
from hashdb.fingerprint import SkipReason
from hashdb.photo import hash_image
from hashdb.sqlite import SQLiteStore
from hashdb.store import Report
from tests.bot.core_parts import ADMIN, CHAT, SENDER, core_parts
from tests.media import photo

BOT = Person(99, "Hashguard")
REPORTERS = (Person(31, "Rita"), Person(32, "Remy"), Person(33, "Rosa"))
REPORTED = 500


class Platform:
    """The platform's side of a report or a block (``ReportPort``, ``BlockPort``)."""

    def __init__(
        self,
        harness: Harness,
        image: Image.Image | None = None,
        *,
        unchecked: Unchecked | None = None,
        admin_posted: bool = False,
        refuse_delete: str | None = None,
        gate: asyncio.Event | None = None,
    ) -> None:
        self._harness = harness
        self._image = image
        self._unchecked = unchecked
        self._admin_posted = admin_posted
        self._refuse_delete = refuse_delete
        self._gate = gate
        self.file_id = "file"
        self.fetches = 0
        self.made: list[Step] = []
        self.told: list[tuple[Person, str]] = []
        self.asked_admin = 0
        self.failures: list[Exception] = []

    async def make(self, chat_id: int, step: Step, results: Mapping[str, Any]) -> str:
        self.made.append(step)
        if isinstance(step, DeleteMessages) and self._refuse_delete is not None:
            return f"refused: {self._refuse_delete}"
        return "ok"

    async def exempt(self, chat_id: int, person: Person) -> bool:
        return False

    async def rights_failed(self, chat_id: int, why: str) -> None:
        pass

    async def fetch(self) -> Fetched | Unchecked:
        self.fetches += 1
        if self._gate is not None:
            await self._gate.wait()
        if self._unchecked is not None:
            return self._unchecked
        if self._image is None:
            raise RuntimeError("the test gave no image")
        image = self._image

        async def produce() -> Fetched:
            return Fetched(hash_image(image, for_block=True))

        return await self._harness.hashes.get(self.file_id, BLOCK_MODE, produce)

    async def tell_privately(self, person: Person, text: str) -> None:
        self.told.append((person, text))

    async def sender_is_admin(self) -> bool:
        self.asked_admin += 1
        return self._admin_posted

    async def failed(self, error: Exception) -> None:
        self.failures.append(error)


@dataclass
class Harness:
    core: Core
    queue: FairQueue
    hashes: FingerprintCache[Fetched]
    reporting: Reporting
    blocker: ReplyBlocker

    async def report(
        self,
        platform: Platform,
        reporter: Person = REPORTERS[0],
        *,
        media: bool = True,
        command: int | None = 600,
    ) -> ReportVerdict:
        verdict = await self.reporting.report(
            reported(reporter, media=media, command=command), platform
        )
        await self.queue.wait_idle()
        return verdict

    async def only_report(self) -> Report:
        found = await self.core.store.get_report(1)
        assert found is not None
        return found

    async def events(self) -> list[tuple[str, int | None]]:
        return [(e.event, e.message_id) for e in reversed(await self.core.audit.recent(CHAT, 50))]


def reported(reporter: Person, *, media: bool = True, command: int | None = 600) -> Reported:
    return Reported(
        CHAT,
        "The group",
        REPORTED,
        SENDER,
        reporter,
        "spam",
        MediaFacts("photo", "photo", "file") if media else None,
        "https://t.me/c/1/500",
        command_message_id=command,
    )


async def make_harness(store: SQLiteStore, *, per_chat: int = 20) -> Harness:
    parts = await core_parts(store, per_chat=per_chat)
    core, queue, hashes, enforcer = parts.core, parts.queue, parts.hashes, parts.enforcer
    reporting = Reporting(core, enforcer, queue=queue, hashes=hashes, bot=BOT)
    return Harness(core, queue, hashes, reporting, ReplyBlocker(core, enforcer))


@pytest_asyncio.fixture
async def harness(sqlite_store: SQLiteStore) -> AsyncIterator[Harness]:
    harness = await make_harness(sqlite_store)
    yield harness
    await harness.queue.close()
    await harness.core.close()


async def test_a_report_of_media_is_hashed_in_the_queue_recorded_and_posted(
    harness: Harness,
) -> None:
    platform = Platform(harness, photo(1))
    assert await harness.report(platform) == ReportVerdict("queued")
    report = await harness.only_report()
    assert (report.message_id, report.reporters, report.status) == (
        REPORTED,
        (REPORTERS[0].id,),
        "open",
    )
    assert report.fingerprints and platform.fetches == 1
    # The command goes first, so the group does not see who reported; then the review.
    assert platform.made == [DeleteMessages((600,)), Review(report.id, "https://t.me/c/1/500")]
    assert ("report", REPORTED) in await harness.events()

    # A second member's report of the same file is filed at once from the cache.
    second = await harness.report(Platform(harness, photo(1)), REPORTERS[1])
    assert second.outcome == "filed" and second.new_reporter
    assert second.report is not None and len(second.report.reporters) == 2


async def test_a_repeated_report_costs_no_download(harness: Harness) -> None:
    platform = Platform(harness, photo(1))
    await harness.report(platform)
    assert await harness.report(platform) == ReportVerdict("repeat")
    assert platform.fetches == 1 and platform.told == []


async def test_a_banned_reporter_is_told_privately(harness: Harness) -> None:
    await harness.core.reports.ban_reporter(CHAT, REPORTERS[0], actor=ADMIN, banned=True)
    platform = Platform(harness, photo(1))
    assert await harness.report(platform) == ReportVerdict("banned")
    assert platform.told == [(REPORTERS[0], BANNED_TEXT)] and platform.fetches == 0
    assert await harness.core.store.get_report(1) is None


async def test_a_full_queue_skips_the_report_and_tells_the_reporter(
    sqlite_store: SQLiteStore,
) -> None:
    harness = await make_harness(sqlite_store, per_chat=1)
    gate = asyncio.Event()
    slow = Platform(harness, photo(1), gate=gate)
    slow.file_id = "slow"
    assert await harness.reporting.report(reported(REPORTERS[0]), slow) == ReportVerdict("queued")
    platform = Platform(harness, photo(2))
    assert await harness.reporting.report(reported(REPORTERS[1]), platform) == ReportVerdict("skip")
    assert platform.told == [(REPORTERS[1], BUSY_TEXT)]
    gate.set()
    await harness.queue.wait_idle()
    assert ("media_skipped", REPORTED) in await harness.events()
    await harness.queue.close()
    await harness.core.close()


async def test_media_that_cannot_be_read_is_reported_without_hashes(harness: Harness) -> None:
    platform = Platform(harness, unchecked=Unchecked(SkipReason.UNDECODABLE, "no decoder"))
    await harness.report(platform)
    report = await harness.only_report()
    assert report.fingerprints == () and report.file_unique_id == "file"


async def test_a_report_that_raises_goes_to_the_platform_s_error_path(harness: Harness) -> None:
    platform = Platform(harness)  # no image: its fetch raises
    await harness.report(platform)
    assert [str(error) for error in platform.failures] == ["the test gave no image"]
    # The claim is released: the member may report again.
    assert await harness.report(Platform(harness, photo(1))) == ReportVerdict("queued")


async def _established(harness: Harness) -> None:
    """Every reporter posted in the group before the reported message."""
    for number, reporter in enumerate(REPORTERS, start=1):
        await harness.core.store.record_first_post(CHAT, reporter.id, number)
    await harness.core.settings.change(CHAT, "report_autohide", "2", actor=ADMIN)


async def test_enough_established_reporters_hide_the_message(harness: Harness) -> None:
    await _established(harness)
    platform = Platform(harness)
    await harness.report(platform, REPORTERS[0], media=False, command=None)
    await harness.report(platform, REPORTERS[1], media=False, command=None)
    assert DeleteMessages((REPORTED,)) in platform.made and platform.asked_admin == 1
    assert (await harness.only_report()).hidden
    assert ("report_autohidden", REPORTED) in await harness.events()


async def test_an_admin_s_message_or_a_dry_run_is_never_hidden(harness: Harness) -> None:
    await _established(harness)
    admin_posted = Platform(harness, admin_posted=True)
    await harness.report(admin_posted, REPORTERS[0], media=False, command=None)
    await harness.report(admin_posted, REPORTERS[1], media=False, command=None)
    assert DeleteMessages((REPORTED,)) not in admin_posted.made
    assert not (await harness.only_report()).hidden

    await harness.core.settings.change(CHAT, "dry_run", "on", actor=ADMIN)
    dry = Platform(harness)
    await harness.report(dry, REPORTERS[2], media=False, command=None)
    assert dry.asked_admin == 0 and DeleteMessages((REPORTED,)) not in dry.made


async def test_block_deletes_adds_the_entry_strikes_and_warns(harness: Harness) -> None:
    await harness.report(Platform(harness, photo(1)))
    platform = Platform(harness)
    decision = await harness.reporting.decide(
        await harness.only_report(), block=True, actor=ADMIN, port=platform
    )
    assert decision.decided and decision.entry is not None
    limit = (await harness.core.settings.get(CHAT)).warn_limit
    assert platform.made == [DeleteMessages((REPORTED,)), Warn(SENDER, 1, limit, None)]
    assert await harness.core.strikes.count(CHAT, SENDER.id) == 1
    # Decided once: a second press changes nothing.
    again = await harness.reporting.decide(
        await harness.only_report(), block=True, actor=ADMIN, port=platform
    )
    assert again == Decision(False) and len(platform.made) == 2


async def test_block_in_a_dry_run_deletes_without_a_strike(harness: Harness) -> None:
    await harness.report(Platform(harness, photo(1)))
    await harness.core.settings.change(CHAT, "dry_run", "on", actor=ADMIN)
    platform = Platform(harness)
    await harness.reporting.decide(
        await harness.only_report(), block=True, actor=ADMIN, port=platform
    )
    assert platform.made == [DeleteMessages((REPORTED,))]
    assert await harness.core.strikes.count(CHAT, SENDER.id) == 0


async def test_dismiss_changes_nothing_in_the_group(harness: Harness) -> None:
    await harness.report(Platform(harness, photo(1)))
    platform = Platform(harness)
    decision = await harness.reporting.decide(
        await harness.only_report(), block=False, actor=ADMIN, port=platform
    )
    assert decision == Decision(True) and platform.made == []
    assert ("report_dismissed", REPORTED) in await harness.events()


async def test_a_match_flagged_by_the_bot_is_reviewed_and_blocked_without_an_entry(
    harness: Harness,
) -> None:
    platform = Platform(harness)
    await harness.reporting.flag(
        CHAT,
        REPORTED,
        sender=SENDER,
        note="entry #1, 40 matching points",
        file_unique_id="file",
        link=None,
        port=platform,
    )
    report = await harness.only_report()
    assert report.reporters == (BOT.id,) and platform.made == [Review(report.id, None)]
    decision = await harness.reporting.decide(report, block=True, actor=ADMIN, port=platform)
    assert decision == Decision(True)


def block_request() -> BlockRequest:
    return BlockRequest(CHAT, REPORTED, SENDER, ADMIN, "spam", MediaFacts("photo", "photo", "file"))


async def test_block_by_reply_adds_the_entry_and_deletes_the_message(harness: Harness) -> None:
    platform = Platform(harness, photo(1))
    blocked = await harness.blocker.block(block_request(), platform)
    assert isinstance(blocked, Blocked) and blocked.result.created
    assert blocked.not_deleted is None and platform.made == [DeleteMessages((REPORTED,))]
    assert ("block", REPORTED) in await harness.events()
    # The same media again: the entry it already is.
    again = await harness.blocker.block(block_request(), Platform(harness, photo(1)))
    assert isinstance(again, Blocked) and not again.result.created
    assert again.result.entry.id == blocked.result.entry.id


async def test_block_by_reply_says_why_nothing_was_blocked_or_deleted(harness: Harness) -> None:
    unreadable = Unchecked(SkipReason.UNDECODABLE, "no decoder")
    platform = Platform(harness, unchecked=unreadable)
    assert await harness.blocker.block(block_request(), platform) == unreadable
    assert platform.made == [] and await harness.core.store.get_report(1) is None

    refused = Platform(harness, photo(1), refuse_delete="message can't be deleted")
    blocked = await harness.blocker.block(block_request(), refused)
    assert isinstance(blocked, Blocked) and blocked.not_deleted == "message can't be deleted"
