"""The rights tests' fixtures: one bot per test module, and fresh groups for each test."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.values import Person
from hashdb.lists import parse_list
from tests.e2e.helpers import bot_running
from tests.e2e.permissions.world import (
    ADMIN,
    BANNED,
    CURATOR,
    ENTRY_HASH,
    OTHER_ADMIN,
    OWNER,
    SHARED_HASH,
    TARGET,
    Bot,
    Here,
)
from tests.fakebot import (
    FakeBotAPI,
    group,
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Bot]:
    db_path = tmp_path_factory.mktemp("permissions") / "hashguard.sqlite3"
    # The same few people send hundreds of commands here within seconds: the per-user rate
    # limit (tests/e2e/test_ratelimit.py) would stop them, so it is off for this module.
    async with (
        FakeBotAPI() as fake,
        bot_running(fake, db_path, moderation_actions_per_minute="0") as app,
    ):
        yield Bot(fake, app)


_numbers = itertools.count(1)


@pytest_asyncio.fixture(loop_scope="module")
async def here(bot: Bot) -> Here:
    """Fresh groups: "Friends" has one entry in its bank, Bob one warning there, and Nick may not
    report. A shared bank with one entry exists, owned by the curator."""
    number = next(_numbers)
    chat = group(-1006000000000 - number, "Friends")
    other_chat = group(-1006500000000 - number, "Elsewhere")
    bot.fake.set_admins(chat["id"], [ADMIN], creator=OWNER)
    bot.fake.set_admins(other_chat["id"], [OTHER_ADMIN])
    core = bot.core
    alice = Person(ADMIN["id"], ADMIN["first_name"])
    await core.chats.ensure_chat(chat["id"], chat["title"])
    entry = await core.blocklist.add_hash(chat["id"], "pdq", ENTRY_HASH, actor=alice, reason="seed")
    shared = f"shared-list-{number}"
    bank = await core.banks.create_bank(
        shared, owner=Person(CURATOR["id"], CURATOR["first_name"]), chat_id=chat["id"]
    )
    items = list(parse_list(f"pdq {SHARED_HASH}\n".encode()).items)
    await core.lists.import_items(bank, items, actor=None, chat_id=chat["id"], origin="seed")
    [shared_entry] = await core.lists.export_entries(bank)
    await core.store.add_strike(chat["id"], TARGET["id"], at=time.time())
    await core.reports.ban_reporter(
        chat["id"], Person(BANNED["id"], BANNED["first_name"]), actor=alice, banned=True
    )
    assert entry.id is not None and shared_entry.id is not None
    bot.fake.clear_calls()
    return Here(bot, chat, other_chat, shared, shared_entry.id, entry.id, number)
