"""The bot process is killed (SIGKILL) in the middle of its work, then started again.

Each test runs ``hashguard run`` (or ``hashguard import``) as a real process, kills it at a
known point (a Bot API call the fake holds unanswered, or a running import), restarts it,
and checks that nothing it had acknowledged or decided is lost, nothing is done twice, and
the database is consistent.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import hashguard_command, run_env
from tests.fakebot import (
    FakeBotAPI,
    command,
    group,
    message_update,
    photo_message,
    text_message,
    user,
)
from tests.media import edited_copy, encode, photo

CHAT = group(-1001112223334, "Crash test")
ADMIN = user(11, "Ada")
MEMBER = user(12, "Ben")
OTHER = user(13, "Cy")


@asynccontextmanager
async def bot_process(
    fake: FakeBotAPI, tmp_path: Path, **env: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``hashguard run`` against the fake (``env``: more settings); killed (if still
    running) on the way out."""
    log = (tmp_path / "bot.log").open("ab")
    process = await asyncio.create_subprocess_exec(
        *hashguard_command(),
        "run",
        env=run_env(fake, tmp_path, HASHGUARD_LOGGING_LEVEL="INFO", **env),
        stdout=log,
        stderr=log,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log.close()


async def kill(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(process.wait(), 10) == -signal.SIGKILL


async def stop(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 20) == 0


def db(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "bot.sqlite3")


def rows(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    with db(tmp_path) as connection:
        return list(connection.execute(sql))


def assert_consistent(tmp_path: Path) -> None:
    assert rows(tmp_path, "PRAGMA integrity_check") == [("ok",)]
    assert rows(tmp_path, "PRAGMA foreign_key_check") == []


def post(fake: FakeBotAPI, sender: dict[str, Any], image_bytes: bytes) -> dict[str, Any]:
    file = fake.add_file(image_bytes)
    message = photo_message(CHAT, sender, file, width=640, height=480)
    fake.push_update(message_update(message))
    return message


def texts(fake: FakeBotAPI, needle: str) -> list[str]:
    return [m.text or "" for m in fake.sent_messages if needle in (m.text or "")]


async def blocked_photo(fake: FakeBotAPI, seed: int) -> bytes:
    """Post a photo and block it by reply; returns the original's bytes."""
    original = photo(seed)
    target = post(fake, MEMBER, encode(original))
    block = command(CHAT, ADMIN, "/block", reply_to=target)
    fake.push_update(message_update(block))
    await fake.wait_for("sendMessage", lambda c: "entry #" in str(c.params), timeout=60)
    await fake.wait_deleted(CHAT["id"], target["message_id"], timeout=30)
    # The /block command itself goes too (after the reply).
    await fake.wait_deleted(CHAT["id"], block["message_id"], timeout=30)
    return encode(edited_copy(original))


async def copy_with_deletion_hanging(fake: FakeBotAPI, seed: int) -> dict[str, Any]:
    """Block a photo, then post a copy; the bot's deleteMessage for it hangs (held)."""
    copy = await blocked_photo(fake, seed)
    fake.hold("deleteMessage")
    posted = post(fake, OTHER, copy)
    await fake.wait_for(
        "deleteMessage", lambda c: c.int_param("message_id") == posted["message_id"], 60
    )
    return posted


@pytest.fixture
def chat(fake_server: FakeBotAPI) -> FakeBotAPI:
    fake_server.set_admins(CHAT["id"], [ADMIN])
    return fake_server


@pytest.fixture
async def fake_server() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


async def test_killed_while_deleting_a_match_deletes_strikes_and_warns_once_after_restart(
    chat: FakeBotAPI, tmp_path: Path
) -> None:
    fake = chat
    async with bot_process(fake, tmp_path) as process:
        posted = await copy_with_deletion_hanging(fake, 31)
        await kill(process)
    # The held call never reaches Telegram: the killed process's decision sits in the outbox.
    fake.release("deleteMessage", make=False)
    assert not fake.is_deleted(CHAT["id"], posted["message_id"])
    assert rows(tmp_path, "SELECT count(*) FROM jobs") == [(1,)]
    assert_consistent(tmp_path)

    async with bot_process(fake, tmp_path) as process:
        await fake.wait_deleted(CHAT["id"], posted["message_id"], timeout=30)
        await fake.wait_for("sendMessage", lambda c: "Warning 1" in str(c.params), 30)
        # A later update proves the restarted bot is past its start-up work.
        fake.push_update(message_update(text_message(CHAT, ADMIN, "/logs 3")))
        await fake.wait_for("sendMessage", lambda c: "audit events" in str(c.params), 30)
        await stop(process)
    assert len(texts(fake, "Warning")) == 1
    assert rows(tmp_path, "SELECT count(*) FROM strikes") == [(1,)]
    assert rows(tmp_path, "SELECT count(*) FROM audit WHERE event = 'match_deleted'") == [(1,)]
    assert rows(tmp_path, "SELECT count(*) FROM jobs") == [(0,)]
    assert_consistent(tmp_path)


async def test_killed_after_acknowledging_a_block_keeps_it_and_removes_the_target(
    chat: FakeBotAPI, tmp_path: Path
) -> None:
    fake = chat
    original = photo(32)
    async with bot_process(fake, tmp_path) as process:
        target = post(fake, MEMBER, encode(original))
        # The admin's /block is acknowledged ("entry #1"); the target's deletion hangs.
        fake.hold("deleteMessage")
        fake.push_update(message_update(command(CHAT, ADMIN, "/block", reply_to=target)))
        await fake.wait_for("sendMessage", lambda c: "entry #1" in str(c.params), 60)
        await fake.wait_for(
            "deleteMessage", lambda c: c.int_param("message_id") == target["message_id"], 30
        )
        await kill(process)
    fake.release("deleteMessage", make=False)
    assert rows(tmp_path, "SELECT count(*) FROM entries WHERE removed_at IS NULL") == [(1,)]
    assert_consistent(tmp_path)

    async with bot_process(fake, tmp_path) as process:
        await fake.wait_deleted(CHAT["id"], target["message_id"], timeout=60)
        # The block holds after the restart: an edited copy is deleted.
        copy = post(fake, OTHER, encode(edited_copy(original)))
        await fake.wait_deleted(CHAT["id"], copy["message_id"], timeout=60)
        await stop(process)
    assert rows(tmp_path, "SELECT count(*) FROM entries") == [(1,)]
    assert_consistent(tmp_path)


async def test_killed_while_posting_a_report_review_posts_it_after_restart(
    chat: FakeBotAPI, tmp_path: Path
) -> None:
    fake = chat
    async with bot_process(fake, tmp_path) as process:
        target = post(fake, MEMBER, encode(photo(33)))
        fake.hold("sendMessage")
        fake.push_update(message_update(command(CHAT, OTHER, "/report", reply_to=target)))
        await fake.wait_for("sendMessage", lambda c: "Report #1" in str(c.params), 60)
        await kill(process)
    fake.release("sendMessage", make=False)
    fake.clear_calls()
    assert rows(tmp_path, "SELECT count(*) FROM reports") == [(1,)]
    assert_consistent(tmp_path)

    async with bot_process(fake, tmp_path) as process:
        await fake.wait_for("sendMessage", lambda c: "Report #1" in str(c.params), 60)
        fake.push_update(message_update(text_message(CHAT, ADMIN, "/logs 3")))
        await fake.wait_for("sendMessage", lambda c: "audit events" in str(c.params), 30)
        await stop(process)
    assert len(texts(fake, "Report #1")) == 1
    [(review_message,)] = rows(tmp_path, "SELECT review_message_id FROM reports")
    assert review_message is not None
    assert_consistent(tmp_path)


async def _import(tmp_path: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    """``hashguard import`` of the test's list into a new shared bank."""
    return await asyncio.create_subprocess_exec(
        *hashguard_command(),
        "import",
        "--bank",
        "crash-test",
        "--owner",
        "11",
        str(tmp_path / "list.txt"),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_killed_during_an_import_loads_all_or_nothing(tmp_path: Path) -> None:
    rng = random.Random(7)
    count = 200_000
    lines = [f"pdq {rng.getrandbits(256):064x}" for _ in range(count)]
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HASHGUARD_")}
    env["HASHGUARD_STORAGE_DATABASE"] = str(tmp_path / "bot.sqlite3")
    process = await _import(tmp_path, env)
    # Killed once the import's transaction is writing (its pages are in the WAL file).
    wal = tmp_path / "bot.sqlite3-wal"
    for _ in range(6000):
        if (wal.exists() and wal.stat().st_size > 2_000_000) or process.returncode is not None:
            break
        await asyncio.sleep(0.01)
    assert process.returncode is None, "the import ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    await process.wait()
    assert process.returncode == -signal.SIGKILL, "the import finished before the kill"
    [(entries,)] = rows(tmp_path, "SELECT count(*) FROM entries")
    assert entries in (0, count)
    assert_consistent(tmp_path)
    # Run again: the list loads whole.
    again = await _import(tmp_path, env)
    _, stderr = await asyncio.wait_for(again.communicate(), 120)
    assert again.returncode == 0, stderr.decode()
    assert rows(tmp_path, "SELECT count(*) FROM entries") == [(count,)]
    assert_consistent(tmp_path)


async def test_sigterm_mid_action_exits_promptly_and_the_action_is_made_after_restart(
    chat: FakeBotAPI, tmp_path: Path
) -> None:
    fake = chat
    async with bot_process(fake, tmp_path) as process:
        posted = await copy_with_deletion_hanging(fake, 34)
        process.send_signal(signal.SIGTERM)
        # PTB's read timeout (5 s) ends the hanging call; the job stays queued. (The bound
        # only catches a hang; it is not a speed target.)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    fake.release("deleteMessage", make=False)
    assert rows(tmp_path, "SELECT count(*) FROM jobs") == [(1,)]
    async with bot_process(fake, tmp_path) as process:
        await fake.wait_deleted(CHAT["id"], posted["message_id"], timeout=30)
        await fake.wait_for("sendMessage", lambda c: "Warning 1" in str(c.params), 30)
        await stop(process)
    assert len(texts(fake, "Warning")) == 1
    assert rows(tmp_path, "SELECT count(*) FROM jobs") == [(0,)]


#: A ban at the second strike; Telegram asked at every admin check (no cached admin list),
#: so the check the record step makes is a call the fake can hold.
BAN_AT_TWO = {
    "HASHGUARD_MODERATION_WARN_LIMIT": "2",
    "HASHGUARD_MODERATION_WARN_ACTION": "ban",
    "HASHGUARD_MODERATION_ADMIN_CACHE_SECONDS": "0",
}


async def second_strike_held_at(fake: FakeBotAPI, seed: int, method: str) -> dict[str, Any]:
    """Block a photo; a copy gets OTHER's first strike and warning; a second copy's job is
    left hanging at the first ``method`` call made after its deletion."""
    copy = await blocked_photo(fake, seed)
    post(fake, OTHER, copy)
    await fake.wait_for("sendMessage", lambda c: "Warning 1 of 2" in str(c.params), 60)
    fake.hold("deleteMessage")
    second = post(fake, OTHER, copy)
    await fake.wait_for(
        "deleteMessage", lambda c: c.int_param("message_id") == second["message_id"], 60
    )
    mark = time.monotonic()
    fake.hold(method)
    fake.release("deleteMessage")
    await fake.wait_for(method, lambda c: c.at > mark, 60)
    return second


async def restart_until_warned(fake: FakeBotAPI, tmp_path: Path) -> int:
    """Restart the bot until it warns OTHER (the job's last step); returns the
    banChatMember calls the restarted bot made."""
    before = len(fake.calls_to("banChatMember"))
    mark = time.monotonic()
    async with bot_process(fake, tmp_path, **BAN_AT_TWO) as process:
        await fake.wait_for("sendMessage", lambda c: c.at > mark and "Warning" in str(c.params), 60)
        # A later update proves the restarted bot is past its start-up work.
        fake.push_update(message_update(text_message(CHAT, ADMIN, "/logs 3")))
        await fake.wait_for("sendMessage", lambda c: "audit events" in str(c.params), 30)
        await stop(process)
    return len(fake.calls_to("banChatMember")) - before


def assert_one_strike_and_one_ban(tmp_path: Path, fake: FakeBotAPI, second: dict[str, Any]) -> None:
    match_rows = (
        "SELECT count(*) FROM audit WHERE event = 'match_deleted' AND message_id = "
        f"{second['message_id']}"
    )
    assert rows(tmp_path, match_rows) == [(1,)]
    # The second strike reached the limit and reset the count: a strike repeated after the
    # restart would be left over here (and have started the count again, losing the ban).
    assert rows(tmp_path, f"SELECT count(*) FROM strikes WHERE user_id = {OTHER['id']}") == [(0,)]
    assert rows(tmp_path, "SELECT count(*) FROM audit WHERE event = 'ban'") == [(1,)]
    assert (CHAT["id"], OTHER["id"]) in fake.banned
    assert len(texts(fake, "Warning 1 of 2")) == 1
    [warning] = texts(fake, "Warning 2 of 2")
    assert "has been banned" in warning
    assert rows(tmp_path, "SELECT count(*) FROM jobs") == [(0,)]
    assert_consistent(tmp_path)


async def test_killed_right_after_the_strike_reaching_the_limit_bans_once_after_restart(
    chat: FakeBotAPI, tmp_path: Path
) -> None:
    fake = chat
    async with bot_process(fake, tmp_path, **BAN_AT_TWO) as process:
        # The strike, its audit row and the decision to ban are committed; the ban hangs.
        second = await second_strike_held_at(fake, 36, "banChatMember")
        await kill(process)
    fake.release("banChatMember", make=False)
    assert (CHAT["id"], OTHER["id"]) not in fake.banned
    [(done, results)] = rows(tmp_path, "SELECT done, results FROM jobs")
    assert done == 2 and '"action":"ban"' in results
    assert_consistent(tmp_path)

    bans = await restart_until_warned(fake, tmp_path)
    assert_one_strike_and_one_ban(tmp_path, fake, second)
    assert bans == 1


async def test_killed_while_asking_whether_the_sender_is_an_admin_bans_once_after_restart(
    chat: FakeBotAPI, tmp_path: Path
) -> None:
    """The record step asks Telegram whether the sender may be restricted. A kill there
    must not leave the strike committed without the ban it calls for: replayed, it would
    be a second strike after the count was reset, and no ban."""
    fake = chat
    async with bot_process(fake, tmp_path, **BAN_AT_TWO) as process:
        second = await second_strike_held_at(fake, 37, "getChatAdministrators")
        await kill(process)
    fake.release("getChatAdministrators", make=False)
    assert rows(tmp_path, "SELECT count(*) FROM jobs") == [(1,)]
    assert_consistent(tmp_path)

    bans = await restart_until_warned(fake, tmp_path)
    assert_one_strike_and_one_ban(tmp_path, fake, second)
    assert bans == 1
