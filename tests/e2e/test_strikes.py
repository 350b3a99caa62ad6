"""Strikes and escalation: at the warn limit the sender is banned, kicked or muted."""

from __future__ import annotations

import time
from typing import Any

from tests.e2e.helpers import (
    ADMIN,
    CHAT,
    MEMBER,
    OTHER,
    RunBot,
    block_by_reply,
    bot_reply,
    deleted,
    post_photo,
    send,
    settle,
)
from tests.fakebot import FakeBotAPI, command, text_message
from tests.media import edited_copy, photo


async def post_copies(fake: FakeBotAPI, count: int, seed: int) -> None:
    original = photo(seed)
    await block_by_reply(fake, post_photo(fake, MEMBER, original))
    for _ in range(count):
        await deleted(fake, post_photo(fake, OTHER, edited_copy(original)))


async def test_warn_limit_bans_the_sender_and_strikes_restart(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot():
        await post_copies(fake, 2, seed=301)
        await bot_reply(fake, "Warning 2 of 3")
        assert not fake.calls_to("banChatMember")
        mark = time.monotonic()
        original = photo(301)
        await deleted(fake, post_photo(fake, OTHER, edited_copy(original)))
        text = await bot_reply(fake, "Warning 3 of 3", since=mark)
        assert "has been banned" in text
        [ban] = fake.calls_to("banChatMember")
        assert (ban.int_param("chat_id"), ban.int_param("user_id")) == (CHAT["id"], OTHER["id"])
        assert (CHAT["id"], OTHER["id"]) in fake.banned

        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/logs 3"))
        logs = await bot_reply(fake, "audit events", since=mark)
        assert "<b>ban</b>" in logs
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/warns", reply_to=_any_message_of(OTHER)))
        assert "has 0 warning(s)" in await bot_reply(fake, "warning(s)", since=mark)


def _any_message_of(person: dict[str, Any]) -> dict[str, Any]:
    return {
        "message_id": 1,
        "date": int(time.time()),
        "chat": dict(CHAT),
        "from": dict(person),
        "text": "hi",
    }


async def test_mute_restricts_for_the_configured_time(fake: FakeBotAPI, run_bot: RunBot) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot(
        moderation_warn_limit="1", moderation_warn_action="mute", moderation_mute_minutes="90"
    ):
        before = time.time()
        await post_copies(fake, 1, seed=311)
        text = await bot_reply(fake, "Warning 1 of 1")
        assert "has been muted" in text
        [restrict] = fake.calls_to("restrictChatMember")
        assert restrict.int_param("user_id") == OTHER["id"]
        permissions = restrict.params["permissions"]
        assert permissions and not any(permissions.values())
        until = restrict.int_param("until_date")
        assert before + 90 * 60 - 5 <= until <= time.time() + 90 * 60 + 5
        assert not fake.calls_to("banChatMember")


async def test_kick_bans_then_lifts_the_ban(fake: FakeBotAPI, run_bot: RunBot) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot(moderation_warn_limit="1", moderation_warn_action="kick"):
        await post_copies(fake, 1, seed=321)
        assert "removed from the group" in await bot_reply(fake, "Warning 1 of 1")
        [unban] = fake.calls_to("unbanChatMember")
        assert unban.int_param("user_id") == OTHER["id"]
        assert unban.bool_param("only_if_banned")
        assert (CHAT["id"], OTHER["id"]) not in fake.banned


async def test_warns_and_resetwarns(fake: FakeBotAPI, run_bot: RunBot) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot():
        await post_copies(fake, 2, seed=331)
        await bot_reply(fake, "Warning 2 of 3")  # the strike is recorded by then
        mark = time.monotonic()
        send(fake, command(CHAT, OTHER, "/warns"))
        assert "has 2 warning(s) in this group (limit 3)" in await bot_reply(
            fake, "warning(s)", since=mark
        )
        mark = time.monotonic()
        send(fake, command(CHAT, MEMBER, f"/warns {OTHER['id']}"))
        await bot_reply(fake, "Only this group's admins can look", since=mark)
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/warns abc"))
        await bot_reply(fake, "User id 'abc' is not valid", since=mark)
        mark = time.monotonic()
        send(fake, command(CHAT, MEMBER, f"/resetwarns {OTHER['id']}"))
        await bot_reply(fake, "Only this group's admins", since=mark)
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, f"/resetwarns {OTHER['id']}"))
        assert "Cleared 2 warning(s)" in await bot_reply(fake, "Cleared", since=mark)
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, f"/warns {OTHER['id']}"))
        assert "has 0 warning(s)" in await bot_reply(fake, "warning(s)", since=mark)


async def test_settings_show_change_validate_and_apply(fake: FakeBotAPI, run_bot: RunBot) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot() as app:
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/settings"))
        shown = await bot_reply(fake, "Settings of this group", since=mark)
        assert "<code>warn_limit</code> = 3" in shown and "dry_run</code> = off" in shown

        for text, error in (
            ("/set warn_limit lots", "warn_limit = 'lots' is not valid; expected a whole number"),
            ("/set warn_action shout", "warn_action = 'shout' is not valid; expected ban, kick"),
            ("/set colour blue", "unknown setting 'colour'; expected one of: match_threshold"),
            ("/set warn_limit", "Usage: /set <key> <value>"),
        ):
            mark = time.monotonic()
            send(fake, command(CHAT, ADMIN, text))
            assert error in await bot_reply(fake, error.split(" ")[0], since=mark)

        mark = time.monotonic()
        send(fake, command(CHAT, MEMBER, "/set dry_run on"))
        await bot_reply(fake, "Only this group's admins", since=mark)

        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/set warn_limit 1"))
        assert "warn_limit is now 1" in await bot_reply(fake, "is now", since=mark)
        await post_copies(fake, 1, seed=341)
        assert "has been banned" in await bot_reply(fake, "Warning 1 of 1")

        # Dry run: the next match is only logged.
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/set dry_run on"))
        await bot_reply(fake, "dry_run is now on", since=mark)
        original = photo(341)
        copy = post_photo(fake, MEMBER, edited_copy(original))
        await settle(fake, app, send(fake, text_message(CHAT, OTHER, ".")))
        assert not fake.is_deleted(CHAT["id"], copy["message_id"])
        send(fake, command(CHAT, ADMIN, "/logs 1"))
        logs = await bot_reply(fake, "audit events", since=mark)
        assert "match_dry_run" in logs

        # Settings survive a restart; "default" goes back to the config's value.
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/set dry_run default"))
        await bot_reply(fake, "dry_run is now off", since=mark)
    async with run_bot():
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/settings"))
        shown = await bot_reply(fake, "Settings of this group", since=mark)
        assert "<code>warn_limit</code> = 1 (default 3)" in shown


async def test_a_channel_posting_blocked_media_is_banned_from_posting(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    from tests.fakebot import message_update, photo_message
    from tests.media import encode

    fake.set_admins(CHAT["id"], [ADMIN])
    channel = {"id": -1003330001, "type": "channel", "title": "Leaks channel"}
    original = photo(351)
    async with run_bot(moderation_warn_limit="1"):
        await block_by_reply(fake, post_photo(fake, MEMBER, original))
        copy = edited_copy(original)
        message = photo_message(
            CHAT, None, fake.add_file(encode(copy)), width=copy.width, height=copy.height
        )
        message["sender_chat"] = channel
        message["from"] = {"id": 136817688, "is_bot": True, "first_name": "Channel"}
        fake.push_update(message_update(message))
        await deleted(fake, message)
        text = await bot_reply(fake, "Warning 1 of 1")
        assert "Leaks channel" in text and "has been banned" in text
        [call] = fake.calls_to("banChatSenderChat")
        assert call.int_param("sender_chat_id") == channel["id"]
        assert not fake.calls_to("banChatMember")


async def test_admins_are_warned_but_not_escalated(fake: FakeBotAPI, run_bot: RunBot) -> None:
    fake.set_admins(CHAT["id"], [ADMIN, OTHER])
    async with run_bot(moderation_warn_limit="1"):
        await post_copies(fake, 1, seed=361)
        text = await bot_reply(fake, "Warning 1 of 1")
        assert "has been" not in text
        assert not fake.calls_to("banChatMember")
