"""Two bot processes (webhook workers) sharing one PostgreSQL database.

A block through one worker reaches the other's index (LISTEN/NOTIFY), and a warn limit
reached with strikes from both workers bans the member exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

from tests.e2e.helpers import (
    ADMIN,
    CHAT,
    MEMBER,
    OTHER,
    SECRET,
    hashguard_command,
    post_when_listening,
    run_env,
    two_workers,
    webhook_deleted,
    webhook_env,
)
from tests.fakebot import FakeBotAPI, command, message_update, photo_message
from tests.media import edited_copy, encode, photo
from tests.pg import free_port, fresh_database


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
        await until(lambda: other.core.matching.index_size() == 1)
        copy = await telegram[1].photo(OTHER, encode(edited_copy(original)))
        await webhook_deleted(fake, copy)
        # And an unblock through the second worker reaches the first.
        first = apps[0].bot_data.services
        assert first is not None
        await telegram[1].post(command(CHAT, ADMIN, "/unblock 1"))
        await until(lambda: first.core.matching.index_size() == 0)


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
        await until(lambda: other.core.matching.index_size() == 1)
        # Four copies at once, split over the workers: one of the strikes reaches 3.
        copies = [encode(edited_copy(original), quality=70 + n) for n in range(4)]
        posted = await asyncio.gather(
            *(telegram[n % 2].photo(OTHER, data) for n, data in enumerate(copies))
        )
        for message in posted:
            await webhook_deleted(fake, message)
        await until(
            lambda: len([m for m in fake.sent_messages if "Warning" in (m.text or "")]) == 4,
            timeout=30,
        )
        bans = [c for c in fake.calls_to("banChatMember") if c.int_param("user_id") == OTHER["id"]]
        assert len(bans) == 1
        warnings = [m.text or "" for m in fake.sent_messages if "Warning" in (m.text or "")]
        assert sum("has been banned" in w for w in warnings) == 1


async def test_two_hashguard_processes_share_blocks_through_postgresql(tmp_path: Path) -> None:
    # As deployed: two `hashguard run --webhook` processes, one database.
    url = await fresh_database()
    ports = [free_port(), free_port()]
    async with FakeBotAPI() as fake:
        fake.set_admins(CHAT["id"], [ADMIN])
        processes = []
        for n, port in enumerate(ports):
            env = run_env(fake, tmp_path, **webhook_env(port), HASHGUARD_STORAGE_URL=url)
            if n:
                env.update(HASHGUARD_WEBHOOK_SET_WEBHOOK="false", HASHGUARD_WEBHOOK_PUBLIC_URL="")
            processes.append(
                await asyncio.create_subprocess_exec(
                    *hashguard_command(),
                    "run",
                    "--webhook",
                    env=env,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        try:
            hooks = [f"http://127.0.0.1:{port}/telegram" for port in ports]
            original = photo(703)
            posted = photo_message(
                CHAT, MEMBER, fake.add_file(encode(original)), width=640, height=480
            )
            for update in (posted, command(CHAT, ADMIN, "/block", reply_to=posted)):
                status = await post_when_listening(
                    hooks[0], fake.prepare_update(message_update(update)), SECRET
                )
                assert status == 200
            await fake.wait_for("sendMessage", lambda c: "entry #1" in str(c.params), timeout=60)
            # Worker 2 was started at the same time and never restarted: the block reaches
            # its index through the database's notifications.
            copy = photo_message(
                CHAT, OTHER, fake.add_file(encode(edited_copy(original))), width=480, height=360
            )
            deadline = time.monotonic() + 30
            while not fake.is_deleted(CHAT["id"], copy["message_id"]):
                # Posted again until worker 2 has caught up (Telegram would retry the
                # post too); each post is a new update of the same message.
                assert time.monotonic() < deadline, "worker 2 never deleted the copy"
                status = await post_when_listening(
                    hooks[1], fake.prepare_update(message_update(copy)), SECRET
                )
                assert status == 200
                await asyncio.sleep(0.5)
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                assert await asyncio.wait_for(process.wait(), 30) == 0
        finally:
            for process in processes:
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    await process.wait()


async def test_the_per_person_limit_holds_over_both_workers(
    fake: FakeBotAPI, tmp_path: Path
) -> None:
    async with two_workers(fake, tmp_path, HASHGUARD_MODERATION_ACTIONS_PER_MINUTE="3") as (
        _,
        telegram,
    ):
        for n in range(8):
            assert await telegram[n % 2].post(command(CHAT, OTHER, "/warns")) == 200
        await until(
            lambda: len([m for m in fake.sent_messages if "warning(s)" in (m.text or "")]) >= 3
        )
        await asyncio.sleep(1.0)  # time for any extra reply that should not come
        replies = [m for m in fake.sent_messages if "warning(s)" in (m.text or "")]
        assert len(replies) == 3
