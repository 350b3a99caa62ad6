"""Webhook mode end to end: Telegram's posts reach the real application through its
webhook server, the secret token keeps everyone else out, and several instances can serve
one bot.

The tests post updates themselves (with aiohttp), as Telegram would post them to the public
URL behind a load balancer; the fake Bot API answers the bot's own calls as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.app import ALLOWED_UPDATES
from handlers.webhook import MAX_BODY_BYTES
from tests.e2e.helpers import (
    ADMIN,
    CHAT,
    MEMBER,
    OTHER,
    PUBLIC_URL,
    SECRET,
    SECRET_HEADER,
    Telegram,
    bot_said,
    hashguard_command,
    idle,
    post_when_listening,
    run_env,
    webhook_deleted,
    webhook_env,
    webhook_running,
)
from tests.fakebot import FakeBotAPI, command, message_update, photo_message, user
from tests.media import edited_copy, encode, photo
from tests.pg import free_port


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def test_start_points_telegram_at_the_public_url_with_secret_and_update_kinds(
    fake: FakeBotAPI, db_path: Path
) -> None:
    async with webhook_running(fake, db_path, free_port()):
        (call,) = fake.calls_to("setWebhook")
        assert call.str_param("url") == PUBLIC_URL
        assert call.str_param("secret_token") == SECRET
        assert call.params["allowed_updates"] == ALLOWED_UPDATES
        # Updates Telegram holds for the bot are delivered, not dropped.
        assert not call.bool_param("drop_pending_updates")
        assert fake.webhook_url == PUBLIC_URL
    # No polling, and stopping one process leaves the webhook to the others.
    assert not fake.calls_to("getUpdates")
    assert not fake.calls_to("deleteWebhook")
    assert fake.webhook_url == PUBLIC_URL


async def test_posted_updates_are_handled_block_then_copy_deleted(
    fake: FakeBotAPI, db_path: Path, session: aiohttp.ClientSession
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(1)
    port = free_port()
    async with webhook_running(fake, db_path, port):
        telegram = Telegram(fake, session, port)
        first = await telegram.photo(MEMBER, encode(original))
        assert "Blocked as entry #1" in await telegram.block(first)
        assert fake.is_deleted(CHAT["id"], first["message_id"])

        copy = await telegram.photo(OTHER, encode(edited_copy(original)))
        await webhook_deleted(fake, copy)
        await bot_said(fake, "Warning 1")
    assert not fake.calls_to("getUpdates")


async def test_wrong_or_missing_secret_is_refused_and_nothing_handled(
    fake: FakeBotAPI, db_path: Path, session: aiohttp.ClientSession
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(2)
    port = free_port()
    async with webhook_running(fake, db_path, port) as app:
        telegram = Telegram(fake, session, port)
        target = await telegram.photo(MEMBER, encode(original))
        await telegram.block(target)
        await idle(app)
        copy_file = fake.add_file(encode(edited_copy(original)))
        copy = photo_message(CHAT, OTHER, copy_file, width=640, height=480)
        # Made up by someone who found the URL: an admin lifting the block, then the copy.
        forged = command(CHAT, ADMIN, "/unblock 1")
        fake.clear_calls()
        # The same length with one character off, too: refused as any other.
        for secret in (SECRET + "x", SECRET[:-1], SECRET[:-1] + "y", "wrong", "", None):
            assert await telegram.post(forged, secret=secret) == 403
            assert await telegram.post(copy, secret=secret) == 403
        await idle(app)
        assert not fake.calls, [c.describe() for c in fake.calls]
        # The copy posted with the right secret is deleted: the refusals were the secret's,
        # and the forged /unblock never ran.
        assert await telegram.post(copy) == 200
        await webhook_deleted(fake, copy)


async def test_json_with_a_charset_is_taken_and_oversized_or_other_bodies_are_not(
    fake: FakeBotAPI, db_path: Path, session: aiohttp.ClientSession
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    async with webhook_running(fake, db_path, port) as app:

        async def post(body: bytes, content_type: str) -> int:
            headers = {SECRET_HEADER: SECRET, "Content-Type": content_type}
            async with session.post(url, data=body, headers=headers) as response:
                return response.status

        def update(text: str) -> bytes:
            message = command(CHAT, MEMBER, text)
            return json.dumps(fake.prepare_update(message_update(message))).encode()

        # A charset parameter is still JSON (proxies add one).
        mark = time.monotonic()
        assert await post(update("/help"), "application/json; charset=utf-8") == 200
        await bot_said(fake, "/report", since=mark)
        # Over the cap: refused without being read into an update.
        huge = update("/help " + "x" * MAX_BODY_BYTES)
        assert await post(huge, "application/json") == 400
        assert await post(update("/help"), "text/plain") == 415
        assert await post(b"{not json", "application/json") == 400
        assert await post(b"[1, 2]", "application/json") == 400
        await idle(app)
        assert len([c for c in fake.calls_to("sendMessage") if c.at >= mark]) == 1


async def test_two_instances_on_one_database_each_take_updates(
    fake: FakeBotAPI, db_path: Path, session: aiohttp.ClientSession
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(3)
    first_port, second_port = free_port(), free_port()
    first_telegram = Telegram(fake, session, first_port)
    second_telegram = Telegram(fake, session, second_port)
    async with webhook_running(fake, db_path, first_port):
        async with webhook_running(fake, db_path, second_port):
            target = await first_telegram.photo(MEMBER, encode(original))
            assert "Blocked as entry #1" in await first_telegram.block(target)
            mark = time.monotonic()
            assert await second_telegram.post(command(CHAT, MEMBER, "/help")) == 200
            await bot_said(fake, "/report", since=mark)
            copy = await first_telegram.photo(OTHER, encode(edited_copy(original)))
            await webhook_deleted(fake, copy)
        # The second instance, started again, has the entry the first one stored.
        async with webhook_running(fake, db_path, second_port):
            again = await second_telegram.photo(OTHER, encode(edited_copy(original)))
            await webhook_deleted(fake, again)
    assert len(fake.calls_to("setWebhook")) == 3


async def test_without_set_webhook_it_listens_and_leaves_the_webhook_alone(
    fake: FakeBotAPI,
    db_path: Path,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    port = free_port()
    env = {"HASHGUARD_WEBHOOK_SET_WEBHOOK": "false", "HASHGUARD_WEBHOOK_PUBLIC_URL": ""}
    async with webhook_running(fake, db_path, port, **env):
        telegram = Telegram(fake, session, port)
        assert await telegram.post(command(CHAT, ADMIN, "/help"), secret="wrong") == 403
        target = await telegram.photo(MEMBER, encode(photo(4)))
        assert "Blocked as entry #1" in await telegram.block(target)
    assert not fake.calls_to("setWebhook")
    assert not fake.calls_to("deleteWebhook")
    assert not fake.calls_to("getUpdates")
    # Nobody has set the webhook yet: the operator is told updates will not arrive.
    assert "webhook_not_set" in caplog.text


async def test_run_webhook_process_refuses_bad_secret_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    async with FakeBotAPI() as fake:
        process = await asyncio.create_subprocess_exec(
            *hashguard_command(),
            "run",
            "--webhook",
            env=run_env(fake, tmp_path, **webhook_env(port)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            admin = user(1)
            fake.set_admins(CHAT["id"], [admin])
            posted = photo_message(
                CHAT, user(2), fake.add_file(encode(photo(5))), width=640, height=480
            )
            block = command(CHAT, admin, "/block", reply_to=posted)
            unsigned = fake.prepare_update(message_update(posted))
            refused = await post_when_listening(url, unsigned, "wrong")
            assert refused == 403
            for message in (posted, block):
                update = fake.prepare_update(message_update(message))
                status = await post_when_listening(url, update, SECRET)
                assert status == 200
            await fake.wait_for("sendMessage", lambda c: "entry #1" in str(c.params), timeout=30)
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
        finally:
            if process.returncode is None:
                # The whole group: hashing workers left behind would keep the pipes open.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
    log = stderr.decode()
    assert process.returncode == 0, log
    (call,) = fake.calls_to("setWebhook")
    assert call.str_param("url") == PUBLIC_URL and call.str_param("secret_token") == SECRET
    assert call.params["allowed_updates"] == ALLOWED_UPDATES
    assert not fake.calls_to("getUpdates") and not fake.calls_to("deleteWebhook")
    assert "ready bot=hashguard_test_bot" in log and "webhook_listening" in log
    # post_shutdown ran: the store and the hashing pool were closed.
    assert re.search(r"INFO bot\.app: closed$", log, re.M), log[-2000:]
    # Logged at DEBUG by PTB's setWebhook call; it must never reach the logs.
    assert SECRET not in log
    assert fake.token not in log


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"HASHGUARD_WEBHOOK_SECRET_TOKEN": ""},
            "webhook.secret_token is missing; webhook mode needs it",
        ),
        (
            {"HASHGUARD_WEBHOOK_PUBLIC_URL": ""},
            "webhook.public_url is missing; expected the https:// URL",
        ),
        (
            {"HASHGUARD_WEBHOOK_SECRET_TOKEN": "not allowed!"},
            "HASHGUARD_WEBHOOK_SECRET_TOKEN (for webhook.secret_token) = (hidden) is not "
            "valid; expected empty or 16 to 256 characters of A-Z, a-z, 0-9, _ and -",
        ),
        (
            # 15 characters: guessable, refused before anything listens.
            {"HASHGUARD_WEBHOOK_SECRET_TOKEN": "Webhook_secret1"},
            "HASHGUARD_WEBHOOK_SECRET_TOKEN (for webhook.secret_token) = (hidden) is not "
            "valid; expected empty or 16 to 256 characters of A-Z, a-z, 0-9, _ and - (at "
            "least 16 so it cannot be guessed",
        ),
    ],
)
async def test_run_webhook_refuses_incomplete_config_naming_the_key(
    tmp_path: Path, extra: dict[str, str], message: str
) -> None:
    async with FakeBotAPI() as fake:
        process = await asyncio.create_subprocess_exec(
            *hashguard_command(),
            "run",
            "--webhook",
            env=run_env(fake, tmp_path, **{**webhook_env(free_port()), **extra}),
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2, stderr.decode()
    assert message in stderr.decode()
    assert not fake.calls
