"""The admin list cache while Telegram cannot be asked (getChatAdministrators failing).

A cached list bridges a short outage, for at most twice its lifetime; past that, admin-only
actions are refused with "try again", never granted on an old list nor refused silently.
"""

from __future__ import annotations

import time

import pytest
from telegram import Bot

from handlers.errors import TRY_AGAIN
from handlers.permissions import AdminCache, AdminsUnknown
from tests.e2e.helpers import ADMIN, CHAT, MEMBER, RunBot, bot_reply, send
from tests.fakebot import FakeBotAPI, command


async def test_a_cached_admin_list_is_trusted_for_at_most_twice_its_lifetime(
    fake: FakeBotAPI,
) -> None:
    now = [1000.0]
    cache = AdminCache(60, clock=lambda: now[0])
    fake.set_admins(CHAT["id"], [ADMIN])
    async with Bot(fake.token, base_url=fake.base_url) as bot:
        assert ADMIN["id"] in await cache.admin_ids(bot, CHAT["id"])
        fake.fail_next("getChatAdministrators", 500, times=100)
        now[0] += 61  # stale, and Telegram fails: the last answer bridges the outage
        assert await cache.is_user_admin(bot, CHAT["id"], ADMIN["id"])
        now[0] += 60  # 121 s: past twice the lifetime, the old list grants nothing
        with pytest.raises(AdminsUnknown):
            await cache.is_user_admin(bot, CHAT["id"], ADMIN["id"])
        # Nor does a chat never looked up count as one without admins.
        with pytest.raises(AdminsUnknown):
            await cache.admin_ids(bot, -100999)
        fake.clear_failures()
        assert await cache.is_user_admin(bot, CHAT["id"], ADMIN["id"])


async def test_admin_commands_ask_to_try_again_when_the_admin_list_is_too_old(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    # A lifetime of 0: every look-up asks Telegram, and a failed one has no list to fall
    # back on however recent.
    async with run_bot(moderation_admin_cache_seconds="0"):
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/set warn_limit 7"))
        await bot_reply(fake, "warn_limit is now 7", since=mark)

        fake.fail_next("getChatAdministrators", 500, times=100)
        for who in (ADMIN, MEMBER):
            mark = time.monotonic()
            send(fake, command(CHAT, who, "/set warn_limit 9"))
            assert await bot_reply(fake, "try again", since=mark) == TRY_AGAIN

        fake.clear_failures()
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/settings"))
        shown = await bot_reply(fake, "Settings of this group", since=mark)
        assert "<code>warn_limit</code> = 7" in shown


async def test_a_chat_telegram_does_not_know_has_no_admins_and_no_try_again(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    """ "Chat not found" is Telegram's answer, not an outage: the log chat named is refused
    as one the admin does not run, not met with "try again" for ever."""
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot():
        # This group's admin list is cached first, so the failure hits the target's look-up.
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/set warn_limit 7"))
        await bot_reply(fake, "warn_limit is now 7", since=mark)
        fake.fail_next("getChatAdministrators", 400, "Bad Request: chat not found")
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/set log_chat -100777000111"))
        reply = await bot_reply(fake, "", since=mark)
        assert reply != TRY_AGAIN
        assert "-100777000111" in reply
