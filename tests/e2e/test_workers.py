"""Two bot processes (webhook workers) sharing one PostgreSQL database.

A block through one worker reaches the other's index (LISTEN/NOTIFY), and a warn limit
reached with strikes from both workers bans the member exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import aiohttp

from handlers.context import HashguardApp
from tests.e2e.test_core_flow import ADMIN, CHAT, MEMBER, OTHER
from tests.e2e.test_webhook import Telegram, deleted, free_port, webhook_running
from tests.fakebot import FakeBotAPI
from tests.media import edited_copy, encode, photo
from tests.pg import fresh_database


@asynccontextmanager
async def two_workers(
    fake: FakeBotAPI, tmp_path: Path, **env: str
) -> AsyncIterator[tuple[list[HashguardApp], list[Telegram]]]:
    url = await fresh_database()
    ports = [free_port(), free_port()]
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        apps = []
        for n, port in enumerate(ports):
            extra = {"HASHGUARD_STORAGE_URL": url, **env}
            if n:
                extra["HASHGUARD_WEBHOOK_SET_WEBHOOK"] = "false"
                extra["HASHGUARD_WEBHOOK_PUBLIC_URL"] = ""
            apps.append(
                await stack.enter_async_context(
                    webhook_running(fake, tmp_path / f"unused{n}.sqlite3", port, **extra)
                )
            )
        yield apps, [Telegram(fake, session, port) for port in ports]


async def until(condition: object, timeout: float = 10.0) -> float:
    """Wait for ``condition()`` to hold; returns how long it took."""
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - started < timeout, "condition not reached in time"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def test_a_block_through_one_worker_makes_the_other_delete_a_reupload(
    fake: FakeBotAPI, tmp_path: Path
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(701)
    async with two_workers(fake, tmp_path) as (apps, telegram):
        other = apps[1].bot_data.services
        assert other is not None
        target = await telegram[0].photo(MEMBER, encode(original))
        assert "Blocked as entry #1" in await telegram[0].block(target)
        # The notice reaches the second worker's index (no restart, no polling).
        await until(lambda: other.moderation.index_size() == 1)
        copy = await telegram[1].photo(OTHER, encode(edited_copy(original)))
        await deleted(fake, copy)
        # And an unblock through the second worker reaches the first.
        first = apps[0].bot_data.services
        assert first is not None
        await telegram[1].post(_command("/unblock 1"))
        await until(lambda: first.moderation.index_size() == 0)


async def test_a_warn_limit_reached_across_both_workers_bans_exactly_once(
    fake: FakeBotAPI, tmp_path: Path
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(702)
    async with two_workers(fake, tmp_path, HASHGUARD_MODERATION_WARN_LIMIT="3") as (
        apps,
        telegram,
    ):
        other = apps[1].bot_data.services
        assert other is not None
        target = await telegram[0].photo(MEMBER, encode(original))
        await telegram[0].block(target)
        await until(lambda: other.moderation.index_size() == 1)
        # Four copies at once, split over the workers: one of the strikes reaches 3.
        copies = [encode(edited_copy(original), quality=70 + n) for n in range(4)]
        posted = await asyncio.gather(
            *(telegram[n % 2].photo(OTHER, data) for n, data in enumerate(copies))
        )
        for message in posted:
            await deleted(fake, message)
        await until(
            lambda: len([m for m in fake.sent_messages if "Warning" in (m.text or "")]) == 4,
            timeout=30,
        )
        bans = [c for c in fake.calls_to("banChatMember") if c.int_param("user_id") == OTHER["id"]]
        assert len(bans) == 1
        warnings = [m.text or "" for m in fake.sent_messages if "Warning" in (m.text or "")]
        assert sum("has been banned" in w for w in warnings) == 1


def _command(text: str) -> dict[str, object]:
    from tests.fakebot import command

    return command(CHAT, ADMIN, text)
