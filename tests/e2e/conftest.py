"""Fixtures that run the real Hashguard application against the fake Bot API server."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.e2e.helpers import RunBot, bot_running
from tests.fakebot import FakeBotAPI


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hashguard.sqlite3"


@pytest.fixture
def run_bot(fake: FakeBotAPI, db_path: Path) -> RunBot:
    """Start the bot as ``hashguard run`` would, with config from the environment."""
    return functools.partial(bot_running, fake, db_path)
