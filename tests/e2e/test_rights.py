"""The bot checks its own rights when added or promoted and at start-up, and tells once."""

from __future__ import annotations

from tests.e2e.helpers import RunBot, settle
from tests.fakebot import (
    FakeBotAPI,
    group,
    message_update,
    my_chat_member_update,
    text_message,
    user,
)

CHAT = group(-1009876543210, "Neighbours")
ADMIN = user(2001, "Carol")
RIGHTS_NOTICE = "Delete messages"


def notices(fake: FakeBotAPI) -> list[str]:
    return [
        c.str_param("text") or ""
        for c in fake.calls_to("sendMessage")
        if c.int_param("chat_id") == CHAT["id"] and RIGHTS_NOTICE in (c.str_param("text") or "")
    ]


async def test_added_without_rights_tells_admins_once_and_again_after_a_new_loss(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    async with run_bot() as app:
        update_id = fake.push_update(my_chat_member_update(CHAT, ADMIN, "left", "member"))
        await settle(fake, app, update_id)
        assert len(notices(fake)) == 1
        assert "administrator status" in notices(fake)[0]

        # Still without rights: no second notice.
        update_id = fake.push_update(
            my_chat_member_update(CHAT, ADMIN, "member", "administrator", can_delete_messages=False)
        )
        await settle(fake, app, update_id)
        assert len(notices(fake)) == 1

        # Rights granted, then lost again: the admins hear about it once more.
        update_id = fake.push_update(my_chat_member_update(CHAT, ADMIN, "member", "administrator"))
        await settle(fake, app, update_id)
        update_id = fake.push_update(
            my_chat_member_update(
                CHAT, ADMIN, "administrator", "administrator", can_restrict_members=False
            )
        )
        await settle(fake, app, update_id)
        assert len(notices(fake)) == 2
        assert "Missing now: Ban users" in notices(fake)[1]


async def test_added_with_rights_says_nothing(fake: FakeBotAPI, run_bot: RunBot) -> None:
    async with run_bot() as app:
        update_id = fake.push_update(my_chat_member_update(CHAT, ADMIN, "left", "administrator"))
        await settle(fake, app, update_id)
        assert notices(fake) == []


async def test_startup_check_finds_rights_lost_while_the_bot_was_down(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    async with run_bot() as app:
        update_id = fake.push_update(message_update(text_message(CHAT, ADMIN, "hi")))
        update_id = fake.push_update(my_chat_member_update(CHAT, ADMIN, "left", "administrator"))
        await settle(fake, app, update_id)
    fake.set_bot_rights(CHAT["id"], can_delete_messages=False)
    fake.clear_calls()
    async with run_bot():
        await fake.wait_for(
            "sendMessage", lambda c: RIGHTS_NOTICE in (c.str_param("text") or ""), timeout=10
        )
        assert "Missing now: Delete messages" in notices(fake)[0]
