"""One person cannot keep the bot busy: commands, button presses and private messages past
``moderation.actions_per_minute`` are ignored, while their media is still checked."""

from __future__ import annotations

import itertools

from bot.ratelimit import RateLimiter
from tests.e2e.helpers import (
    ADMIN,
    CHAT,
    MEMBER,
    OTHER,
    RunBot,
    block_by_reply,
    post_photo,
    send,
    settle,
)
from tests.fakebot import FakeBotAPI, command, group, private_chat, text_message
from tests.media import edited_copy, photo

_query_ids = itertools.count(1)


def replies_to(fake: FakeBotAPI, chat_id: int, needle: str) -> int:
    return len([m for m in fake.sent_messages if m.chat_id == chat_id and needle in (m.text or "")])


def test_bucket_refills_evenly_and_each_user_has_their_own() -> None:
    limiter = RateLimiter(per_minute=3)
    assert [limiter.allow(1, now=0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow(2, now=0.0)
    # One action comes back every 20 s.
    assert not limiter.allow(1, now=19.0)
    assert [limiter.allow(1, now=40.0) for _ in range(3)] == [True, True, False]
    assert limiter.first_refusal(1) and not limiter.first_refusal(1)
    assert all(RateLimiter(per_minute=0).allow(1, now=0.0) for _ in range(100))


async def test_a_member_flooding_commands_is_ignored_but_their_media_is_still_checked(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(501)
    async with run_bot(moderation_actions_per_minute="5") as app:
        await block_by_reply(fake, post_photo(fake, MEMBER, original))
        for _ in range(12):
            send(fake, command(CHAT, OTHER, "/warns"))
        await settle(fake, app, send(fake, text_message(CHAT, OTHER, ".")))
        assert replies_to(fake, CHAT["id"], "has 0 warning(s)") == 5
        # Someone else is not held up by it.
        await settle(fake, app, send(fake, command(CHAT, MEMBER, "/warns")))
        assert replies_to(fake, CHAT["id"], "has 0 warning(s)") == 6
        # The limited member's upload of blocked media is still deleted.
        copy = post_photo(fake, OTHER, edited_copy(original))
        await fake.wait_deleted(CHAT["id"], copy["message_id"])


async def test_private_messages_and_button_presses_are_limited_and_told_once(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    private = private_chat(OTHER)
    async with run_bot(moderation_actions_per_minute="3") as app:
        for _ in range(6):
            send(fake, command(private, OTHER, "/help"))
        await settle(fake, app, send(fake, text_message(CHAT, ADMIN, ".")))
        assert replies_to(fake, OTHER["id"], "Hashguard") == 3
        assert replies_to(fake, OTHER["id"], "faster than I answer") == 1
        # Buttons: every press is answered (a client spins otherwise), past the limit with
        # the refusal only.
        sent = fake.sent_messages[0]
        for _ in range(2):
            fake.push_update(
                {
                    "callback_query": {
                        "id": f"q{next(_query_ids)}",
                        "from": OTHER,
                        "chat_instance": "ci",
                        "data": "report:block:1",
                        "message": sent.message,
                    }
                }
            )
        await settle(fake, app, send(fake, text_message(CHAT, ADMIN, ".")))
        answers = [c.str_param("text") or "" for c in fake.calls_to("answerCallbackQuery")]
        assert answers == ["Too many requests; please wait a minute."] * 2


async def test_anonymous_admins_of_different_groups_have_separate_budgets(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    # Telegram sends every anonymous admin's message from one shared account; the budget
    # follows the group they post as.
    anonymous = {"id": 1087968824, "is_bot": True, "first_name": "Group"}
    second = group(-1002220002222, "Second")
    async with run_bot(moderation_actions_per_minute="2") as app:
        for chat in (CHAT, second):
            for _ in range(3):
                send(fake, command(chat, anonymous, "/warns", sender_chat=chat))
        await settle(fake, app, send(fake, text_message(CHAT, ADMIN, ".")))
        assert replies_to(fake, CHAT["id"], "warning(s)") == 2
        assert replies_to(fake, second["id"], "warning(s)") == 2
