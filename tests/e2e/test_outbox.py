"""Faults between the bot and Telegram: every deletion, restriction and warning the bot
decided on is made, once, through flood control, 5xx answers, dropped connections and
restarts (the outbox)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from handlers.context import HashguardApp
from hashdb.sqlite import base as sqlite_store
from tests.e2e.helpers import (
    ADMIN,
    CHAT,
    MEMBER,
    OTHER,
    RunBot,
    block_by_reply,
    bot_reply,
    post_photo,
    send,
    settle,
)
from tests.fakebot import FakeBotAPI, text_message
from tests.faults import LockHolder
from tests.media import edited_copy, photo


def warnings_to(fake: FakeBotAPI, name: str) -> list[str]:
    return [
        m.text or ""
        for m in fake.sent_messages
        if m.chat_id == CHAT["id"] and "Warning" in (m.text or "") and name in (m.text or "")
    ]


async def warned(fake: FakeBotAPI, name: str, timeout: float = 10.0) -> str:
    """The first warning naming ``name`` that Telegram accepted (failed attempts are
    recorded as calls too, so calls alone do not tell)."""
    deadline = time.monotonic() + timeout
    while not warnings_to(fake, name):
        assert time.monotonic() < deadline, f"no warning to {name} within {timeout} s"
        await asyncio.sleep(0.05)
    return warnings_to(fake, name)[0]


def attempts_to_delete(fake: FakeBotAPI, message: dict[str, Any]) -> int:
    return len(
        [
            c
            for c in fake.calls_to("deleteMessage")
            if c.int_param("message_id") == message["message_id"]
        ]
    )


async def outbox_empty(app: HashguardApp) -> bool:
    services = app.bot_data.services
    assert services is not None
    return await services.core.store.next_job_at() is None


async def test_ban_and_warning_are_made_once_through_flood_control_and_a_5xx(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(401)
    async with run_bot(moderation_warn_limit="1") as app:
        await block_by_reply(fake, post_photo(fake, MEMBER, original))
        await settle(fake, app, send(fake, text_message(CHAT, ADMIN, ".")))
        fake.fail_next("banChatMember", error_code=429, retry_after=1)
        fake.fail_next("sendMessage", error_code=502, description="Bad Gateway")
        copy = post_photo(fake, OTHER, edited_copy(original))
        text = await warned(fake, OTHER["first_name"])
        assert "Warning 1 of 1" in text and "has been banned" in text
        assert fake.is_deleted(CHAT["id"], copy["message_id"])
        assert (CHAT["id"], OTHER["id"]) in fake.banned
        await settle(fake, app, send(fake, text_message(CHAT, ADMIN, ".")))
        assert len(fake.calls_to("banChatMember")) == 2  # the 429, then the ban
        assert len(warnings_to(fake, OTHER["first_name"])) == 1
        assert await outbox_empty(app)
        # The deletion comes before the warning that announces it.
        [delete] = fake.calls_to("deleteMessage")[-1:]
        first_try = next(c for c in fake.calls_to("sendMessage") if "Warning 1" in str(c.params))
        assert delete.at < first_try.at


async def test_a_dropped_connection_retries_a_deletion_but_never_repeats_a_warning(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(402)
    async with run_bot() as app:
        await block_by_reply(fake, post_photo(fake, MEMBER, original))
        await settle(fake, app, send(fake, text_message(CHAT, ADMIN, ".")))
        # The deletion's connection drops before Telegram made it: retried.
        fake.lose_answer_next("deleteMessage", made=False)
        # The warning's connection drops after Telegram posted it: the bot cannot tell,
        # and sends no second warning.
        fake.lose_answer_next("sendMessage", made=True)
        copy = post_photo(fake, OTHER, edited_copy(original))
        await fake.wait_deleted(CHAT["id"], copy["message_id"])
        await fake.wait_for("sendMessage", lambda c: "Warning 1" in str(c.params))
        await settle(fake, app, send(fake, text_message(CHAT, ADMIN, ".")))
        assert attempts_to_delete(fake, copy) == 2
        assert len(warnings_to(fake, OTHER["first_name"])) == 1
        # Nothing is left to retry: the warning whose answer was lost counts as sent.
        assert await outbox_empty(app)


async def test_actions_a_stopped_bot_could_not_make_are_made_after_restart(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(403)
    async with run_bot() as app:
        await block_by_reply(fake, post_photo(fake, MEMBER, original))
        await settle(fake, app, send(fake, text_message(CHAT, ADMIN, ".")))
        # Telegram is down for deletions for as long as this bot runs.
        fake.fail_next("deleteMessage", error_code=502, description="Bad Gateway", times=10_000)
        copy = post_photo(fake, OTHER, edited_copy(original))
        await fake.wait_for(
            "deleteMessage", lambda c: c.int_param("message_id") == copy["message_id"]
        )
        await settle(fake, app, send(fake, text_message(CHAT, ADMIN, ".")))
        # Nothing announced yet: the warning waits for the deletion.
        assert warnings_to(fake, OTHER["first_name"]) == []
        services = app.bot_data.services
        assert services is not None
        logs = await services.core.audit.recent(CHAT["id"], limit=5)
        assert "match_deleted" not in [e.event for e in logs]
    fake.clear_failures()
    mark = time.monotonic()
    async with run_bot() as app:
        await fake.wait_deleted(CHAT["id"], copy["message_id"])
        text = await bot_reply(fake, "Warning 1", since=mark)
        assert OTHER["first_name"] in text
        await settle(fake, app, send(fake, text_message(CHAT, ADMIN, ".")))
        services = app.bot_data.services
        assert services is not None
        assert await services.core.strikes.count(CHAT["id"], OTHER["id"]) == 1
        events = [e.event for e in await services.core.audit.recent(CHAT["id"], limit=10)]
        assert events.count("match_deleted") == 1
        assert await outbox_empty(app)
    assert len(warnings_to(fake, OTHER["first_name"])) == 1


async def test_polling_resumes_after_an_outage_without_handling_an_update_twice(
    fake: FakeBotAPI, run_bot: RunBot, caplog: pytest.LogCaptureFixture
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(404)
    async with run_bot() as app:
        await block_by_reply(fake, post_photo(fake, MEMBER, original))
        await settle(fake, app, send(fake, text_message(CHAT, ADMIN, ".")))
        # Telegram answers 502 twice, then once takes the request (and hands out the
        # updates) but the answer never arrives; the copies wait for the bot meanwhile.
        polls = len(fake.calls_to("getUpdates"))
        fake.fail_next("getUpdates", error_code=502, description="Bad Gateway", times=2)
        fake.lose_answer_next("getUpdates", made=True)
        deadline = time.monotonic() + 10
        while len(fake.calls_to("getUpdates")) < polls + 2:
            assert time.monotonic() < deadline, "the bot stopped polling"
            await asyncio.sleep(0.02)
        copies = [post_photo(fake, OTHER, edited_copy(original)) for _ in range(2)]
        for copy in copies:
            await fake.wait_deleted(CHAT["id"], copy["message_id"], timeout=20)
        await settle(fake, app, send(fake, text_message(CHAT, ADMIN, ".")), timeout=20)
        for copy in copies:
            assert attempts_to_delete(fake, copy) == 1
        warnings = warnings_to(fake, OTHER["first_name"])
        assert len(warnings) == 2
        assert "Warning 1" in warnings[0] and "Warning 2" in warnings[1]
        services = app.bot_data.services
        assert services is not None
        assert await services.core.strikes.count(CHAT["id"], OTHER["id"]) == 2
    # PTB logged the outage; the token (in every Bot API URL) is in none of it.
    assert any("getUpdates" in r.getMessage() or r.levelname == "ERROR" for r in caplog.records)
    assert all(fake.token.split(":")[1] not in r.getMessage() for r in caplog.records)


async def test_a_locked_database_delays_the_audit_and_warning_but_not_the_deletion(
    fake: FakeBotAPI, run_bot: RunBot, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another program (an import, a backup) holds the write lock past the busy timeout.
    monkeypatch.setattr(sqlite_store, "_BUSY_TIMEOUT_MS", 300)
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(405)
    async with run_bot() as app:
        await block_by_reply(fake, post_photo(fake, MEMBER, original))
        await settle(fake, app, send(fake, text_message(CHAT, ADMIN, ".")))
        holder = LockHolder(db_path)
        try:
            copy = post_photo(fake, OTHER, edited_copy(original))
            await fake.wait_deleted(CHAT["id"], copy["message_id"])
            await asyncio.sleep(1.5)
            # The audit row and the strike cannot be written yet, so nobody is warned.
            assert warnings_to(fake, OTHER["first_name"]) == []
        finally:
            holder.release()
        text = await warned(fake, OTHER["first_name"], timeout=20)
        assert "Warning 1" in text
        services = app.bot_data.services
        assert services is not None
        assert await services.core.strikes.count(CHAT["id"], OTHER["id"]) == 1
        events = [e.event for e in await services.core.audit.recent(CHAT["id"], limit=10)]
        assert events.count("match_deleted") == 1
        assert await outbox_empty(app)
