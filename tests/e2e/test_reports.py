"""Member reports and admin review through the Block / Dismiss buttons, end to end."""

from __future__ import annotations

import time
from typing import Any

from tests.e2e.helpers import (
    ADMIN,
    CHAT,
    MEMBER,
    OTHER,
    RunBot,
    answer,
    bot_reply,
    deleted,
    post_photo,
    press,
    send,
    settle,
)
from tests.fakebot import FakeBotAPI, SentMessage, command, text_message, user
from tests.media import edited_copy, photo

REPORTER = user(6001, "Rita")
SECOND_REPORTER = user(6002, "Sam")


async def review_message(fake: FakeBotAPI, report_id: int = 1) -> SentMessage:
    await fake.wait_for("sendMessage", lambda c: f"Report #{report_id}" in str(c.params))
    return next(m for m in fake.sent_messages if f"Report #{report_id}:" in (m.text or ""))


async def test_report_then_admin_blocks_from_the_review_message(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(401)
    async with run_bot():
        reported = post_photo(fake, OTHER, original)
        report_command = command(CHAT, REPORTER, "/report she never agreed", reply_to=reported)
        send(fake, report_command)
        review = await review_message(fake)
        # The reporter stays anonymous: the command is gone, the review does not name them.
        assert fake.is_deleted(CHAT["id"], report_command["message_id"])
        assert "Rita" not in (review.text or "")
        # The reason may describe the content or give the reporter away: not in the group.
        assert "she never agreed" not in (review.text or "")
        labels = [b["text"] for row in review.reply_markup["inline_keyboard"] for b in row]
        assert labels == ["Block", "Dismiss"]
        assert not fake.is_deleted(CHAT["id"], reported["message_id"])

        # A member pressing Block is refused and nothing changes.
        mark = time.monotonic()
        press(fake, MEMBER, review, "report:block:1")
        refused = await answer(fake, mark)
        assert refused.get("show_alert") in ("true", True)
        assert not fake.is_deleted(CHAT["id"], reported["message_id"])

        mark = time.monotonic()
        press(fake, ADMIN, review, "report:block:1")
        assert "blocked" in str((await answer(fake, mark)).get("text"))
        await deleted(fake, reported)
        assert "Warning 1 of 3" in await bot_reply(fake, "Warning", since=mark)
        edited = await fake.wait_for("editMessageText", lambda c: c.at >= mark)
        assert "Blocked by Alice. Blocklist entry #1." in (edited.str_param("text") or "")

        # Deciding twice is harmless.
        mark = time.monotonic()
        press(fake, ADMIN, review, "report:dismiss:1")
        assert "already decided" in str((await answer(fake, mark)).get("text"))

        # The fingerprint is blocked: an edited copy is removed on sight.
        await deleted(fake, post_photo(fake, MEMBER, edited_copy(original)))


async def test_dismiss_blocks_nothing_and_reporters_count_once(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(402)
    async with run_bot() as app:
        reported = post_photo(fake, OTHER, original)
        send(fake, command(CHAT, REPORTER, "/report", reply_to=reported))
        review = await review_message(fake)
        assert "reported by 1 member." in (review.text or "")
        await settle(
            fake, app, send(fake, command(CHAT, REPORTER, "/report again", reply_to=reported))
        )
        assert not fake.calls_to("editMessageText")  # the same member counts once
        mark = time.monotonic()
        send(fake, command(CHAT, SECOND_REPORTER, "/report", reply_to=reported))
        edited = await fake.wait_for("editMessageText", lambda c: c.at >= mark)
        assert "reported by 2 members." in (edited.str_param("text") or "")

        mark = time.monotonic()
        press(fake, ADMIN, review, "report:dismiss:1")
        assert "dismissed" in str((await answer(fake, mark)).get("text"))
        await settle(fake, app, send(fake, text_message(CHAT, OTHER, ".")))
        assert not fake.is_deleted(CHAT["id"], reported["message_id"])
        copy = post_photo(fake, MEMBER, edited_copy(original))
        await settle(fake, app, send(fake, text_message(CHAT, OTHER, ".")))
        assert not fake.is_deleted(CHAT["id"], copy["message_id"])


async def test_text_report_block_removes_the_message_without_a_fingerprint(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot() as app:
        reported = text_message(CHAT, OTHER, "a link to somewhere bad")
        send(fake, reported)
        send(fake, command(CHAT, REPORTER, "/report", reply_to=reported))
        review = await review_message(fake)
        assert "a message" in (review.text or "")
        mark = time.monotonic()
        press(fake, ADMIN, review, "report:block:1")
        await answer(fake, mark)
        await deleted(fake, reported)
        edited = await fake.wait_for("editMessageText", lambda c: c.at >= mark)
        assert "Blocked by Alice." in (edited.str_param("text") or "")
        assert "entry" not in (edited.str_param("text") or "")
        assert app.bot_data.services is not None
        assert app.bot_data.services.core.matching.index_size(CHAT["id"]) == 0


async def test_content_is_hidden_at_k_reporters_pending_review(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot(moderation_report_autohide="2") as app:
        # Members the bot has seen post before the reported message.
        for member in (REPORTER, SECOND_REPORTER):
            await settle(fake, app, send(fake, text_message(CHAT, member, "hello")))
        reported = post_photo(fake, OTHER, photo(404))
        send(fake, command(CHAT, REPORTER, "/report", reply_to=reported))
        review = await review_message(fake)
        await settle(fake, app, send(fake, text_message(CHAT, OTHER, ".")))
        assert not fake.is_deleted(CHAT["id"], reported["message_id"])
        send(fake, command(CHAT, SECOND_REPORTER, "/report", reply_to=reported))
        await deleted(fake, reported)
        edited = await fake.wait_for("editMessageText")
        assert "Hidden from the group" in (edited.str_param("text") or "")
        # Hidden, not blocked: the admins still decide.
        assert app.bot_data.services is not None
        assert app.bot_data.services.core.matching.index_size(CHAT["id"]) == 0
        mark = time.monotonic()
        press(fake, ADMIN, review, "report:block:1")
        await answer(fake, mark)
        await fake.wait_for("editMessageText", lambda c: "Blocked by Alice" in str(c.params))
        assert app.bot_data.services.core.matching.index_size(CHAT["id"]) == 1


def joined(member: dict[str, Any]) -> dict[str, Any]:
    """The service message Telegram posts when ``member`` joins the group."""
    message = text_message(CHAT, member, "x")
    del message["text"]
    message["new_chat_members"] = [member]
    return message


async def test_only_members_seen_posting_before_the_message_count_toward_autohide(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    """Three fresh accounts cannot delete what they like: their reports reach the admins,
    but only reporters the bot had seen post before the reported message hide it."""
    fake.set_admins(CHAT["id"], [ADMIN])
    fresh = [user(6100 + i, f"Fresh{i}") for i in range(3)]
    late = user(6200, "Late")
    async with run_bot(moderation_report_autohide="2") as app:
        await settle(fake, app, send(fake, text_message(CHAT, REPORTER, "hello")))
        await settle(fake, app, send(fake, text_message(CHAT, SECOND_REPORTER, "hi")))
        for account in fresh:
            # Joining is not posting.
            await settle(fake, app, send(fake, joined(account)))
        reported = post_photo(fake, OTHER, photo(430))
        await settle(fake, app, send(fake, text_message(CHAT, late, "I was here too")))

        for reporter in (*fresh, late, REPORTER):
            await settle(
                fake, app, send(fake, command(CHAT, reporter, "/report", reply_to=reported))
            )
        assert not fake.is_deleted(CHAT["id"], reported["message_id"])
        # Every report still reached the admins' review.
        review = await review_message(fake)
        assert review.message_id
        services = app.bot_data.services
        assert services is not None
        report = await services.core.store.get_report(1)
        assert report is not None and len(report.reporters) == 5 and not report.hidden

        send(fake, command(CHAT, SECOND_REPORTER, "/report", reply_to=reported))
        await deleted(fake, reported)


async def test_an_admins_message_is_never_hidden_by_reports(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot(moderation_report_autohide="1") as app:
        await settle(fake, app, send(fake, text_message(CHAT, REPORTER, "hello")))
        by_admin = post_photo(fake, ADMIN, photo(431))
        as_group = text_message(CHAT, None, "announcement", sender_chat=CHAT)
        send(fake, as_group)
        by_member = post_photo(fake, OTHER, photo(432))
        for target in (by_admin, as_group, by_member):
            send(fake, command(CHAT, REPORTER, "/report", reply_to=target))
        await deleted(fake, by_member)
        await settle(fake, app, send(fake, text_message(CHAT, OTHER, ".")))
        assert not fake.is_deleted(CHAT["id"], by_admin["message_id"])
        assert not fake.is_deleted(CHAT["id"], as_group["message_id"])
        # Reported all the same: the admins see the reports.
        for number in (1, 2, 3):
            await review_message(fake, number)


async def test_report_rate_limit_and_report_bans(fake: FakeBotAPI, run_bot: RunBot) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot(moderation_report_rate_per_hour="2") as app:
        targets = [post_photo(fake, OTHER, photo(410 + i)) for i in range(3)]
        for target in targets:
            await settle(fake, app, send(fake, command(CHAT, REPORTER, "/report", reply_to=target)))
        reviews = [m for m in fake.sent_messages if "Report #" in (m.text or "")]
        assert len(reviews) == 2
        told = [m.text or "" for m in fake.sent_messages if m.chat_id == REPORTER["id"]]
        assert any("please wait" in t for t in told)

        mark = time.monotonic()
        send(fake, command(CHAT, MEMBER, f"/reportban {SECOND_REPORTER['id']}"))
        await bot_reply(fake, "Only this group's admins", since=mark)
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, f"/reportban {SECOND_REPORTER['id']}"))
        await bot_reply(fake, "can no longer report", since=mark)
        banned_command = command(CHAT, SECOND_REPORTER, "/report", reply_to=targets[2])
        send(fake, banned_command)
        await settle(fake, app, send(fake, text_message(CHAT, OTHER, ".")))
        assert fake.is_deleted(CHAT["id"], banned_command["message_id"])
        assert len([m for m in fake.sent_messages if "Report #" in (m.text or "")]) == 2
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, f"/reportunban {SECOND_REPORTER['id']}"))
        await bot_reply(fake, "can report again", since=mark)
        send(fake, command(CHAT, SECOND_REPORTER, "/report", reply_to=targets[2]))
        await review_message(fake, 3)


LOG_CHAT = -1007000000001


async def test_review_goes_to_admins_privately_and_actions_to_the_log_chat(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    fake.set_admins(LOG_CHAT, [ADMIN])
    async with run_bot(moderation_review_destination="admins"):
        mark = time.monotonic()
        send(fake, command(CHAT, MEMBER, f"/set log_chat {LOG_CHAT}"))
        await bot_reply(fake, "Only this group's admins", since=mark)
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/set log_chat -1009999"))
        await bot_reply(fake, "is not a chat you administer", since=mark)
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, f"/set log_chat {LOG_CHAT}"))
        await bot_reply(fake, f"log_chat is now {LOG_CHAT}", since=mark)

        reported = post_photo(fake, OTHER, photo(420))
        send(fake, command(CHAT, REPORTER, "/report", reply_to=reported))
        review = await review_message(fake)
        assert review.chat_id == ADMIN["id"]  # privately, not in the group
        assert not [
            m
            for m in fake.sent_messages
            if m.chat_id == CHAT["id"] and "Report #" in (m.text or "")
        ]

        mark = time.monotonic()
        press(fake, ADMIN, review, "report:block:1")
        await answer(fake, mark)
        await deleted(fake, reported)
        # Every action reaches the log chat as text with a link, never the media.
        logged = await fake.wait_for(
            "sendMessage",
            lambda c: c.int_param("chat_id") == LOG_CHAT and "report_blocked" in str(c.params),
        )
        text = logged.str_param("text") or ""
        assert "Friends" in text and f"https://t.me/c/{str(CHAT['id'])[4:]}/" in text
        assert not fake.calls_to("sendPhoto") and not fake.calls_to("forwardMessage")


async def test_log_chat_right_is_checked_on_the_parsed_id_whatever_its_spelling(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    """Leading zeros spell the same chat id: they must not skip the check that the admin
    runs that chat too, and the id is stored in its one canonical form."""
    fake.set_admins(CHAT["id"], [ADMIN])
    padded = "-" + str(-LOG_CHAT).rjust(22, "0")
    async with run_bot():
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, f"/set log_chat {padded}"))
        await bot_reply(fake, f"log_chat {LOG_CHAT} is not a chat you administer", since=mark)
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/settings"))
        assert "<code>log_chat</code> = 0" in (await bot_reply(fake, "log_chat", since=mark))

        # A chat the admin does run: the padded spelling is stored as the plain id.
        own = LOG_CHAT - 1
        fake.set_admins(own, [ADMIN])
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/set log_chat -" + str(-own).rjust(22, "0")))
        await bot_reply(fake, f"log_chat is now {own}", since=mark)


async def test_review_can_go_to_the_log_chat(fake: FakeBotAPI, run_bot: RunBot) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot(moderation_review_destination="log_chat", moderation_log_chat=str(LOG_CHAT)):
        reported = post_photo(fake, OTHER, photo(421))
        send(fake, command(CHAT, REPORTER, "/report", reply_to=reported))
        review = await review_message(fake)
        assert review.chat_id == LOG_CHAT
        mark = time.monotonic()
        press(fake, MEMBER, review, "report:dismiss:1")
        assert "Only this group's admins" in str((await answer(fake, mark)).get("text"))
        mark = time.monotonic()
        press(fake, ADMIN, review, "report:dismiss:1")
        assert "dismissed" in str((await answer(fake, mark)).get("text"))
