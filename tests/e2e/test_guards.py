"""Edges of the core flow: edits, retries, private logs, migration and who may do what."""

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
from tests.fakebot import (
    FakeBotAPI,
    command,
    group,
    photo_message,
    text_message,
    user,
)
from tests.media import edited_copy, encode, photo

OTHER_GROUP = group(-1005550000111, "Elsewhere")
OTHER_ADMIN = user(4004, "Eve")


async def test_swapping_in_a_blocked_photo_by_editing_is_caught(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(30)
    async with run_bot() as app:
        await block_by_reply(fake, post_photo(fake, MEMBER, original))
        harmless = post_photo(fake, OTHER, photo(31))
        await settle(fake, app, send(fake, text_message(CHAT, OTHER, ".")))
        assert not fake.is_deleted(CHAT["id"], harmless["message_id"])

        swapped = dict(harmless)
        file = fake.add_file(encode(edited_copy(original)))
        swapped["photo"] = photo_message(CHAT, OTHER, file, width=480, height=360)["photo"]
        swapped["edit_date"] = int(time.time())
        fake.push_update({"edited_message": swapped})
        await deleted(fake, harmless)


async def test_editing_an_old_message_into_a_command_does_nothing(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot() as app:
        target = post_photo(fake, MEMBER, photo(32))
        text = text_message(CHAT, ADMIN, "hello", reply_to=target)
        send(fake, text)
        edited = command(CHAT, ADMIN, "/block", reply_to=target, message_id=text["message_id"])
        edited["edit_date"] = int(time.time())
        update_id = fake.push_update({"edited_message": edited})
        await settle(fake, app, update_id)
        assert not fake.is_deleted(CHAT["id"], target["message_id"])
        assert not [m for m in fake.sent_messages if "entry #" in (m.text or "")]


async def test_flood_control_and_network_errors_on_delete_are_retried(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(33)
    async with run_bot() as app:
        await block_by_reply(fake, post_photo(fake, MEMBER, original))
        await settle(fake, app, send(fake, text_message(CHAT, OTHER, ".")))
        fake.fail_next("deleteMessage", error_code=429, retry_after=1)
        fake.fail_next("deleteMessage", error_code=502, description="Bad Gateway")
        copy = post_photo(fake, OTHER, edited_copy(original))
        await bot_reply(fake, "Warning 1")
        # The deletion waits in the outbox between attempts; the warning does not wait.
        await fake.wait_deleted(CHAT["id"], copy["message_id"])
        attempts = [
            c
            for c in fake.calls_to("deleteMessage")
            if c.int_param("message_id") == copy["message_id"]
        ]
        assert len(attempts) == 3


def private_logs(fake: FakeBotAPI, person: dict[str, Any]) -> list[str]:
    return [m.text or "" for m in fake.sent_messages if m.chat_id == person["id"]]


async def test_logs_go_privately_to_the_admin(fake: FakeBotAPI, run_bot: RunBot) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot():
        await block_by_reply(fake, post_photo(fake, MEMBER, photo(34)), "/block describes her")
        send(fake, command(CHAT, ADMIN, "/logs"))
        await bot_reply(fake, "Sent you the audit log privately")
        [log] = private_logs(fake, ADMIN)
        assert "Friends" in log and "block" in log and "describes her" in log
        # The group never sees the reason: the /block command itself was deleted.
        group_texts = [m.text or "" for m in fake.sent_messages if m.chat_id == CHAT["id"]]
        assert not any("describes her" in t for t in group_texts)
        deletions = {c.int_param("message_id") for c in fake.calls_to("deleteMessage")}
        assert len(deletions) == 2  # the blocked photo and the /block command

        fake.fail_next(
            "sendMessage", error_code=403, description="Forbidden: bot can't initiate conversation"
        )
        send(fake, command(CHAT, ADMIN, "/logs 5"))
        await bot_reply(fake, "press Start")

        send(fake, command(CHAT, None, "/logs", sender_chat=CHAT))
        await bot_reply(fake, "anonymous admin has no private chat")


async def test_logs_in_group_when_configured(fake: FakeBotAPI, run_bot: RunBot) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot(moderation_logs_in_group="true"):
        send(fake, command(CHAT, ADMIN, "/logs"))
        call = await fake.wait_for("sendMessage", lambda c: "audit events" in str(c.params))
        assert call.int_param("chat_id") == CHAT["id"]
        send(fake, command(CHAT, ADMIN, "/logs ²"))
        await bot_reply(fake, "'²' is not valid; expected a whole number from 1 to 50")


async def test_channel_and_other_groups_admins_have_no_power_here(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    fake.set_admins(OTHER_GROUP["id"], [OTHER_ADMIN])
    original = photo(35)
    async with run_bot() as app:
        await block_by_reply(fake, post_photo(fake, MEMBER, original))
        channel = {"id": -1007770001, "type": "channel", "title": "Some channel"}
        target = post_photo(fake, MEMBER, photo(36))
        send(fake, command(CHAT, None, "/block", reply_to=target, sender_chat=channel))
        await bot_reply(fake, "Only this group's admins")
        send(fake, command(CHAT, OTHER_ADMIN, "/unblock 1"))
        await bot_reply(fake, "Only this group's admins")
        mark = time.monotonic()
        send(fake, command(OTHER_GROUP, OTHER_ADMIN, "/unblock 1"))
        await bot_reply(fake, "No active blocklist entry #1 in this group", since=mark)
        update_id = send(fake, text_message(CHAT, MEMBER, "."))
        await settle(fake, app, update_id)
        assert not fake.is_deleted(CHAT["id"], target["message_id"])
        assert app.bot_data.services is not None
        assert app.bot_data.services.core.matching.index_size(CHAT["id"]) == 1
        copy = post_photo(fake, OTHER, edited_copy(original))
        await deleted(fake, copy)


async def test_blocklist_follows_a_group_upgraded_to_a_supergroup(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    basic = {"id": -4001, "type": "group", "title": "Small group"}
    supergroup = group(-1004001, "Small group")
    fake.set_admins(basic["id"], [ADMIN])
    fake.set_admins(supergroup["id"], [ADMIN])
    original = photo(37)
    async with run_bot() as app:
        target = photo_message(
            basic, MEMBER, fake.add_file(encode(original)), width=640, height=480
        )
        send(fake, target)
        mark = time.monotonic()
        send(fake, command(basic, ADMIN, "/block", reply_to=target))
        await bot_reply(fake, "entry #1", since=mark)
        migrate = text_message(basic, ADMIN, "")
        del migrate["text"]
        migrate["migrate_to_chat_id"] = supergroup["id"]
        await settle(fake, app, send(fake, migrate))
        copy = photo_message(
            supergroup, OTHER, fake.add_file(encode(edited_copy(original))), width=480, height=360
        )
        send(fake, copy)
        await fake.wait_for(
            "deleteMessage",
            lambda c: (
                c.int_param("chat_id") == supergroup["id"]
                and c.int_param("message_id") == copy["message_id"]
            ),
        )
        assert app.bot_data.services is not None
        assert app.bot_data.services.core.matching.index_size(basic["id"]) == 0


async def test_logs_pages_with_older_button_and_private_group_picker(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    from tests.fakebot import private_chat

    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot():
        for number in range(3):
            mark = time.monotonic()
            send(fake, command(CHAT, ADMIN, f"/addhash pdq {number:064x} r{number}"))
            await bot_reply(fake, "Added pdq hash", since=mark)
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/logs 2"))
        await bot_reply(fake, "Sent you the audit log privately", since=mark)
        [page] = [m for m in fake.sent_messages if m.chat_id == ADMIN["id"]]
        assert "entry #3" in (page.text or "") and "entry #1" not in (page.text or "")
        [[older]] = page.reply_markup["inline_keyboard"]
        assert older["text"] == "Older"

        def press(who: dict[str, Any], data: str, on: Any) -> str:
            query_id = f"logs-{time.monotonic()}"
            fake.push_update(
                {
                    "callback_query": {
                        "id": query_id,
                        "from": who,
                        "chat_instance": "ci",
                        "data": data,
                        "message": on.message,
                    }
                }
            )
            return query_id

        mark = time.monotonic()
        press(ADMIN, older["callback_data"], page)
        call = await fake.wait_for(
            "sendMessage", lambda c: c.at >= mark and c.int_param("chat_id") == ADMIN["id"]
        )
        assert "entry #1" in (call.str_param("text") or "")

        # A button pressed in the group itself (or any other chat) delivers the page to the
        # presser privately, never into the chat the button sits in.
        group_message = next(m for m in fake.sent_messages if m.chat_id == CHAT["id"])
        mark = time.monotonic()
        press(ADMIN, f"logs:{CHAT['id']}:0:2", group_message)
        call = await fake.wait_for("sendMessage", lambda c: c.at >= mark)
        assert call.int_param("chat_id") == ADMIN["id"]

        # Someone else pressing a forged button for this group is refused.
        query_id = press(MEMBER, f"logs:{CHAT['id']}:0:10", page)
        refused = await fake.wait_for(
            "answerCallbackQuery", lambda c: c.str_param("callback_query_id") == query_id
        )
        assert "Only that group's admins" in str(refused.params.get("text"))

        # In a private chat, /logs offers the groups the asker administers.
        mark = time.monotonic()
        send(fake, command(private_chat(ADMIN), ADMIN, "/logs"))
        await bot_reply(fake, "Which group's audit log?", since=mark)
        picker = next(m for m in fake.sent_messages if "Which group" in (m.text or ""))
        [[button]] = picker.reply_markup["inline_keyboard"]
        assert button["text"] == "Friends"
        mark = time.monotonic()
        press(ADMIN, button["callback_data"], picker)
        await bot_reply(fake, "audit events of Friends", since=mark)
        mark = time.monotonic()
        send(fake, command(private_chat(MEMBER), MEMBER, "/logs"))
        await bot_reply(fake, "You administer no group", since=mark)
