"""Steps the end-to-end tests share: starting the bot against the fake Bot API and waiting
for it, the people and chats of the tests, posting media, blocking, pressing buttons, and
reading what the bot answered.

Test modules import these from here, never from one another, so a test module can be read,
moved or split on its own.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from PIL import Image

from bot.app import ALLOWED_UPDATES, build_application, start_webhook
from bot.config import check_webhook_mode, load_config
from handlers.context import HashguardApp
from hashdb.photo import hash_photo
from hashdb.store import Bank
from tests.fakebot import (
    JSON,
    FakeBotAPI,
    FakeFile,
    SentMessage,
    command,
    document_message,
    group,
    message_update,
    photo_message,
    private_chat,
    user,
    video_message,
)
from tests.media import encode
from tests.pg import free_port, fresh_database

# --------------------------------------------------------------------------------------
# Running the bot against the fake Bot API, and waiting until it is idle


RunBot = Callable[..., AbstractAsyncContextManager[HashguardApp]]


def bot_environ(fake: FakeBotAPI, db_path: Path) -> dict[str, str]:
    """The environment of a bot talking to ``fake``, on the database ``db_path``."""
    return {
        "HASHGUARD_TELEGRAM_TOKEN": fake.token,
        "HASHGUARD_TELEGRAM_API_URL": fake.base_url,
        "HASHGUARD_TELEGRAM_FILE_URL": fake.base_file_url,
        "HASHGUARD_STORAGE_DATABASE": str(db_path),
        "HASHGUARD_MEDIA_WORKERS": "1",
    }


@asynccontextmanager
async def bot_running(fake: FakeBotAPI, db_path: Path, **env: str) -> AsyncIterator[HashguardApp]:
    """Start the bot as ``hashguard run`` would, with config from the environment."""
    environ = {
        **bot_environ(fake, db_path),
        **{f"HASHGUARD_{k.upper()}": v for k, v in env.items()},
    }
    config = load_config(None, environ=environ)
    # Threads instead of processes: same code path, no process start-up per test.
    app = build_application(config, hash_in_threads=True)
    await app.initialize()
    assert app.post_init is not None
    await app.post_init(app)
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0.0, timeout=1, allowed_updates=ALLOWED_UPDATES)
    await app.start()
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        assert app.post_stop is not None
        await app.post_stop(app)
        await app.shutdown()
        assert app.post_shutdown is not None
        await app.post_shutdown(app)


async def settle(
    fake: FakeBotAPI, app: HashguardApp, update_id: int, timeout: float = 10, look: float = 0.02
) -> None:
    """Wait until ``update_id`` was fetched and every handler has finished (seen idle on
    three looks ``look`` seconds apart)."""
    await fake.wait_until_consumed(update_id, timeout)
    await idle(app, timeout, look, what=f"update {update_id}")


async def idle(
    app: HashguardApp, timeout: float = 10, look: float = 0.02, *, what: str = "an update"
) -> None:
    """Wait until every update the application has received was handled, uploads queued
    for checking included (seen idle on three looks ``look`` seconds apart)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    idle_checks = 0
    # The fetcher hands an update to a new task between leaving the queue and entering the
    # processor, so idleness must be seen on a few consecutive looks.
    while idle_checks < 3:
        services = app.bot_data.services
        busy = (
            app.update_processor.current_concurrent_updates
            or not app.update_queue.empty()
            # Uploads handed to the hashing queue are still being checked.
            or (services is not None and (services.queue.busy or services.second_stage.busy))
        )
        idle_checks = 0 if busy else idle_checks + 1
        if loop.time() > deadline:
            raise AssertionError(f"{what} still being handled after {timeout} s")
        await asyncio.sleep(look)


# --------------------------------------------------------------------------------------
# The main group and its people; posting, blocking, and what the bot answered


CHAT = group(-1001234567890123, "Friends")
ADMIN = user(1001, "Alice")
MEMBER = user(5_000_000_001, "Mallory")
OTHER = user(1003, "Bob")


def post_photo(fake: FakeBotAPI, sender: dict[str, Any], image: Image.Image) -> dict[str, Any]:
    data = encode(image)
    file = fake.add_file(data)
    message = photo_message(CHAT, sender, file, width=image.width, height=image.height)
    fake.push_update(message_update(message))
    return message


def send(fake: FakeBotAPI, message: dict[str, Any]) -> int:
    return fake.push_update(message_update(message))


async def bot_reply(fake: FakeBotAPI, needle: str, *, since: float = 0.0) -> str:
    """The text of the first message the bot sent after ``since`` containing ``needle``."""
    call = await fake.wait_for(
        "sendMessage",
        lambda c: c.at >= since and needle in (c.str_param("text") or ""),
        timeout=10,
    )
    return call.str_param("text") or ""


async def deleted(fake: FakeBotAPI, message: dict[str, Any]) -> None:
    """Wait until the bot deleted ``message``."""
    await fake.wait_for(
        "deleteMessage", lambda c: c.int_param("message_id") == message["message_id"]
    )
    assert fake.is_deleted(CHAT["id"], message["message_id"])


async def block_by_reply(fake: FakeBotAPI, target: dict[str, Any], text: str = "/block") -> str:
    mark = time.monotonic()
    send(fake, command(CHAT, ADMIN, text, reply_to=target))
    return await bot_reply(fake, "entry #", since=mark)


# --------------------------------------------------------------------------------------
# Buttons: pressing one, and the bot's answer to the press


_query_ids = itertools.count(1)


def press(fake: FakeBotAPI, who: dict[str, Any], review: SentMessage, data: str) -> int:
    return fake.push_update(
        {
            "callback_query": {
                "id": f"q{next(_query_ids)}",
                "from": who,
                "chat_instance": "ci",
                "data": data,
                "message": review.message,
            }
        }
    )


async def answer(fake: FakeBotAPI, since: float) -> dict[str, Any]:
    call = await fake.wait_for("answerCallbackQuery", lambda c: c.at >= since)
    return call.params


# --------------------------------------------------------------------------------------
# Self-submission: a second group and the person who submits


DEFAULT_GROUP = group(-1009876543210777, "Neighbours")
SUBMITTER = user(7001, "Sue")


def post(
    fake: FakeBotAPI, chat: dict[str, Any], sender: dict[str, Any], image: Image.Image
) -> tuple[dict[str, Any], int]:
    """Post ``image`` as a photo; returns the message and its update id."""
    file = fake.add_file(encode(image))
    message = photo_message(chat, sender, file, width=image.width, height=image.height)
    return message, send(fake, message)


async def gone(fake: FakeBotAPI, chat_id: int, message: dict[str, Any]) -> None:
    """Wait until the bot deleted ``message`` from ``chat_id``."""
    await fake.wait_for(
        "deleteMessage",
        lambda c: (
            c.int_param("chat_id") == chat_id and c.int_param("message_id") == message["message_id"]
        ),
    )
    assert fake.is_deleted(chat_id, message["message_id"])


async def posted_and_kept(
    fake: FakeBotAPI, app: HashguardApp, chat: dict[str, Any], image: Image.Image
) -> dict[str, Any]:
    """Post ``image`` and check, once every handler finished, that it is still there."""
    message, update_id = post(fake, chat, MEMBER, image)
    await settle(fake, app, update_id)
    assert not fake.is_deleted(chat["id"], message["message_id"])
    return message


def consent_prompt(fake: FakeBotAPI, person: dict[str, Any]) -> SentMessage:
    """The latest message in the person's private chat carrying the consent button."""
    prompts = [
        m
        for m in fake.sent_messages
        if m.chat_id == person["id"] and "ss:accept" in str(m.reply_markup)
    ]
    assert prompts, f"no consent button was sent to {person['first_name']}"
    return prompts[-1]


async def accept(fake: FakeBotAPI, person: dict[str, Any]) -> None:
    """/submit privately and press "I understand, continue"."""
    mark = time.monotonic()
    send(fake, command(private_chat(person), person, "/submit"))
    await bot_reply(fake, "StopNCII", since=mark)
    mark = time.monotonic()
    press(fake, person, consent_prompt(fake, person), "ss:accept")
    await answer(fake, mark)
    await bot_reply(fake, "Thank you", since=mark)


async def set_in(fake: FakeBotAPI, chat: dict[str, Any], setting: str) -> None:
    mark = time.monotonic()
    send(fake, command(chat, ADMIN, f"/set {setting}"))
    key, value = setting.split()
    await bot_reply(fake, f"{key} is now {value}", since=mark)


def case_texts(fake: FakeBotAPI, since: float = 0.0) -> list[str]:
    return [
        c.str_param("text") or ""
        for c in fake.calls_to("sendMessage")
        if c.at >= since and "Case HG-" in (c.str_param("text") or "")
    ]


def texts_to(fake: FakeBotAPI, person: dict[str, Any], since: float) -> list[str]:
    """What the bot sent to ``person``'s private chat since ``since``."""
    return [
        c.str_param("text") or ""
        for c in fake.calls_to("sendMessage")
        if c.at >= since and c.int_param("chat_id") == person["id"]
    ]


# --------------------------------------------------------------------------------------
# Banks and lists: a second group, list files, and whether a post stays


SECOND = group(-1009876543210, "Neighbours")
SECOND_ADMIN = user(2002, "Bruno")


def list_file(fake: FakeBotAPI, chat: dict[str, Any], sender: dict[str, Any], text: str,
              *, caption: str | None, name: str = "list.txt") -> dict[str, Any]:  # fmt: skip
    data = text.encode()
    file = fake.add_file(data, file_path_suffix=".txt")
    return document_message(
        chat, sender, file, mime_type="text/plain", file_name=name, caption=caption
    )


async def deleted_from_chat(fake: FakeBotAPI, message: dict[str, Any]) -> None:
    chat_id = message["chat"]["id"]
    await fake.wait_for(
        "deleteMessage",
        lambda c: (
            c.int_param("chat_id") == chat_id and c.int_param("message_id") == message["message_id"]
        ),
    )
    assert fake.is_deleted(chat_id, message["message_id"])


async def is_kept(fake: FakeBotAPI, app: Any, message: dict[str, Any], update_id: int) -> bool:
    await settle(fake, app, update_id)
    return not fake.is_deleted(message["chat"]["id"], message["message_id"])


def list_item(image: Image.Image) -> Any:
    from hashdb.lists import ListItem

    return ListItem(hash_photo(encode(image)).stored[:1])


async def assert_kept(fake: FakeBotAPI, app: Any, message: dict[str, Any]) -> None:
    await settle(fake, app, send(fake, command(CHAT, OTHER, "/help")))
    assert not fake.is_deleted(CHAT["id"], message["message_id"])


# --------------------------------------------------------------------------------------
# Operator banks


def pdq_line(image: Image.Image) -> str:
    return f"pdq {hash_photo(encode(image)).stored[0].hex}"


async def operator_bank(app: HashguardApp, name: str) -> Bank:
    assert app.bot_data.services is not None
    bank = await app.bot_data.services.core.store.bank_by_name(name)
    assert bank is not None, f"no bank {name!r}"
    return bank


async def is_deleted_on_sight(fake: FakeBotAPI, app: HashguardApp, image: Image.Image) -> bool:
    message, update_id = post(fake, CHAT, MEMBER, image)
    await settle(fake, app, update_id)
    return fake.is_deleted(CHAT["id"], message["message_id"])


# --------------------------------------------------------------------------------------
# Photos from a prepared file


def post_file(
    fake: FakeBotAPI, chat: dict[str, Any], file: FakeFile, sender: dict[str, Any] = MEMBER
) -> tuple[dict[str, Any], int]:
    """Post ``file`` (a 640x480 photo) in ``chat``; returns the message and its update id."""
    message = photo_message(chat, sender, file, width=640, height=480)
    return message, send(fake, message)


# --------------------------------------------------------------------------------------
# Videos


def post_video(
    fake: FakeBotAPI,
    data: bytes,
    *,
    sender: dict[str, Any] = MEMBER,
    kind: str = "video",
    thumb: FakeFile | None = None,
    file_size: int | None = None,
    media_group_id: str | None = None,
) -> dict[str, Any]:
    file = fake.add_file(data, file_path_suffix=".mp4", file_size=file_size)
    message = video_message(
        CHAT, sender, file, kind=kind, thumb=thumb, media_group_id=media_group_id
    )
    send(fake, message)
    return message


async def block_video(fake: FakeBotAPI, target: dict[str, Any]) -> str:
    mark = time.monotonic()
    send(fake, command(CHAT, ADMIN, "/block", reply_to=target))
    return await bot_reply(fake, "entry #", since=mark)


# --------------------------------------------------------------------------------------
# Webhook mode: the bot's webhook server, and Telegram posting to it


SECRET = "Webhook_secret-0123456789"
PUBLIC_URL = "https://bot.example.org/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def webhook_env(port: int, **extra: str) -> dict[str, str]:
    return {
        "HASHGUARD_WEBHOOK_PORT": str(port),
        "HASHGUARD_WEBHOOK_SECRET_TOKEN": SECRET,
        "HASHGUARD_WEBHOOK_PUBLIC_URL": PUBLIC_URL,
        **extra,
    }


@asynccontextmanager
async def webhook_running(
    fake: FakeBotAPI, db_path: Path, port: int, **env: str
) -> AsyncIterator[HashguardApp]:
    """Start the bot as ``hashguard run --webhook`` would, with config from the environment."""
    environ = {**bot_environ(fake, db_path), **webhook_env(port, **env)}
    config = load_config(None, environ=environ)
    check_webhook_mode(config.webhook)
    # Threads instead of processes: same code path, no process start-up per test.
    app = build_application(config, hash_in_threads=True, webhook=True)
    assert app.updater is None
    await app.initialize()
    assert app.post_init is not None and app.post_shutdown is not None
    stop_listening = None
    try:
        await app.post_init(app)
        stop_listening = await start_webhook(app, config.webhook)
        await app.start()
        yield app
    finally:
        if stop_listening is not None:
            await stop_listening()
        if app.running:
            await app.stop()
        await app.shutdown()
        await app.post_shutdown(app)


class Telegram:
    """Posts updates to one bot instance's webhook, as Telegram does."""

    def __init__(self, fake: FakeBotAPI, session: aiohttp.ClientSession, port: int) -> None:
        self.fake = fake
        self.session = session
        self.url = f"http://127.0.0.1:{port}/telegram"

    async def post(self, message: JSON, *, secret: str | None = SECRET) -> int:
        """Post ``message`` as an update; returns the HTTP status the bot answered."""
        update = self.fake.prepare_update(message_update(message))
        headers = {} if secret is None else {SECRET_HEADER: secret}
        async with self.session.post(self.url, json=update, headers=headers) as response:
            return response.status

    async def photo(self, sender: JSON, data: bytes) -> JSON:
        message = photo_message(CHAT, sender, self.fake.add_file(data), width=640, height=480)
        assert await self.post(message) == 200
        return message

    async def block(self, target: JSON) -> str:
        mark = time.monotonic()
        assert await self.post(command(CHAT, ADMIN, "/block", reply_to=target)) == 200
        return await bot_said(self.fake, "entry #", since=mark)


async def bot_said(fake: FakeBotAPI, needle: str, *, since: float = 0.0) -> str:
    call = await fake.wait_for(
        "sendMessage",
        lambda c: c.at >= since and needle in (c.str_param("text") or ""),
        timeout=30,
    )
    return call.str_param("text") or ""


async def webhook_deleted(fake: FakeBotAPI, message: JSON) -> None:
    await fake.wait_for(
        "deleteMessage", lambda c: c.int_param("message_id") == message["message_id"], timeout=30
    )
    assert fake.is_deleted(CHAT["id"], message["message_id"])


async def post_when_listening(url: str, update: JSON, secret: str, timeout: float = 60) -> int:
    """Post ``update`` once the process listens; returns the HTTP status."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as client:
        while True:
            try:
                async with client.post(url, json=update, headers={SECRET_HEADER: secret}) as r:
                    return r.status
            except aiohttp.ClientConnectionError:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.1)


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


# --------------------------------------------------------------------------------------
# The installed ``hashguard`` command, run as a process


def hashguard_command() -> list[str]:
    """The installed ``hashguard`` console script (``pip install .`` must provide it)."""
    script = Path(sys.executable).parent / "hashguard"
    assert script.exists(), f"{script} is missing: install the project with pip install ."
    return [str(script)]


def run_env(fake: FakeBotAPI, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HASHGUARD_")}
    env.update(
        HASHGUARD_TELEGRAM_TOKEN=fake.token,
        HASHGUARD_TELEGRAM_API_URL=fake.base_url,
        HASHGUARD_TELEGRAM_FILE_URL=fake.base_file_url,
        HASHGUARD_STORAGE_DATABASE=str(tmp_path / "bot.sqlite3"),
        HASHGUARD_MEDIA_WORKERS="1",
        HASHGUARD_LOGGING_LEVEL="DEBUG",
    )
    env.update(extra)
    return env
