"""Hash-list imports in chat have limits: a bank's size and one person's imports per day
(refused whole, before anything is stored), the rights of the bank they go to, and the
per-person rate limit. Lists the operator loads are not limited."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from handlers.context import HashguardApp
from tests.e2e.helpers import (
    ADMIN,
    CHAT,
    SECOND,
    SECOND_ADMIN,
    RunBot,
    bot_reply,
    list_file,
    operator_bank,
    pdq_line,
    send,
    settle,
)
from tests.fakebot import FakeBotAPI, command, private_chat
from tests.media import photo


def lines(first: int, count: int) -> str:
    """A hash list of ``count`` distinct photos' PDQ hashes."""
    return "\n".join(pdq_line(photo(first + n)) for n in range(count))


async def bank_size(app: HashguardApp, name: str) -> int:
    assert app.bot_data.services is not None
    store = app.bot_data.services.core.store
    bank = await store.bank_by_name(name)
    return 0 if bank is None else await store.count_active_entries(bank.id)


async def imported(
    fake: FakeBotAPI, chat: dict[str, Any], sender: dict[str, Any], text: str, needle: str
) -> str:
    mark = time.monotonic()
    send(fake, list_file(fake, chat, sender, text, caption="/import"))
    return await bot_reply(fake, needle, since=mark)


async def test_an_import_past_the_banks_limit_is_refused_whole(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot(banks_max_bank_entries="4") as app:
        own = f"group:{CHAT['id']}"
        assert "Imported 3 entries" in await imported(fake, CHAT, ADMIN, lines(1600, 3), "Imported")
        # Two new items (one is there already) would make 5: nothing is stored.
        refusal = await imported(fake, CHAT, ADMIN, lines(1602, 3), "nothing was imported")
        assert "this group's bank to 5, over its limit of 4" in refusal
        assert "(banks.max_bank_entries)" in refusal
        assert await bank_size(app, own) == 3
        # What fits still goes in.
        assert "Imported 1 entries" in await imported(fake, CHAT, ADMIN, lines(1602, 2), "Imported")
        assert await bank_size(app, own) == 4


async def test_a_persons_imports_per_day_are_limited_over_all_banks(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot(banks_import_items_per_day="5") as app:
        send(fake, command(private_chat(ADMIN), ADMIN, "/bank create mine"))
        await bot_reply(fake, "created")
        mine = private_chat(ADMIN)
        send(fake, list_file(fake, mine, ADMIN, lines(1610, 3), caption="/import mine"))
        assert "Imported 3 entries" in await bot_reply(fake, "Imported 3")
        # Into another bank, the same person: counted together.
        refusal = await imported(fake, CHAT, ADMIN, lines(1620, 3), "nothing was imported")
        assert "you imported 3 entries in the last 24 hours and this list adds 3" in refusal
        assert "limit of 5 per person per day (banks.import_items_per_day)" in refusal
        assert await bank_size(app, f"group:{CHAT['id']}") == 0
        assert await bank_size(app, "mine") == 3


async def test_operator_lists_are_not_limited(
    fake: FakeBotAPI, run_bot: RunBot, tmp_path: Path
) -> None:
    path = tmp_path / "big.txt"
    path.write_text(lines(1630, 6) + "\n")
    async with run_bot(
        banks_files=str(path), banks_max_bank_entries="2", banks_import_items_per_day="2"
    ) as app:
        assert app.bot_data.services is not None
        bank = await operator_bank(app, "operator:big")
        assert await app.bot_data.services.core.store.count_active_entries(bank.id) == 6


async def test_a_group_admin_who_does_not_curate_a_shared_bank_cannot_import_into_it(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    fake.set_admins(SECOND["id"], [SECOND_ADMIN])
    async with run_bot() as app:
        send(fake, command(CHAT, ADMIN, "/bank create trusted"))
        await bot_reply(fake, "created")
        send(fake, command(SECOND, SECOND_ADMIN, "/bank subscribe trusted"))
        await bot_reply(fake, "now uses")
        mark = time.monotonic()
        send(fake, list_file(fake, SECOND, SECOND_ADMIN, lines(1640, 2), caption="/import trusted"))
        refusal = await bot_reply(fake, "only the owner of bank 'trusted'", since=mark)
        assert "Imported" not in refusal
        assert await bank_size(app, "trusted") == 0
        # The same as in a private chat.
        mark = time.monotonic()
        chat = private_chat(SECOND_ADMIN)
        send(fake, list_file(fake, chat, SECOND_ADMIN, lines(1640, 2), caption="/import trusted"))
        await bot_reply(fake, "only the owner of bank 'trusted'", since=mark)
        assert await bank_size(app, "trusted") == 0


async def test_imports_sent_as_captions_count_toward_the_rate_limit(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot(moderation_actions_per_minute="2") as app:
        last = 0
        for n in range(4):
            last = send(fake, list_file(fake, CHAT, ADMIN, lines(1650 + n, 1), caption="/import"))
        await settle(fake, app, last)
        answers = [
            c for c in fake.calls_to("sendMessage") if "Imported" in (c.str_param("text") or "")
        ]
        assert len(answers) == 2
        assert await bank_size(app, f"group:{CHAT['id']}") == 2
