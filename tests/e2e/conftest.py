"""Fixtures that run the real Hashguard application against the fake Bot API server."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
import pytest_asyncio

from bot.app import ALLOWED_UPDATES, build_application
from bot.config import load_config
from handlers.context import HashguardApp
from tests.fakebot import FakeBotAPI

RunBot = Callable[..., AbstractAsyncContextManager[HashguardApp]]


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hashguard.sqlite3"


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


@pytest.fixture
def run_bot(fake: FakeBotAPI, db_path: Path) -> RunBot:
    """Start the bot as ``hashguard run`` would, with config from the environment."""
    return functools.partial(bot_running, fake, db_path)


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
            or (services is not None and services.queue.busy)
        )
        idle_checks = 0 if busy else idle_checks + 1
        if loop.time() > deadline:
            raise AssertionError(f"{what} still being handled after {timeout} s")
        await asyncio.sleep(look)
