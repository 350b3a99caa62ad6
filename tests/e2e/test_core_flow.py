"""The core slice end to end: block by reply, re-uploads deleted and warned, admin commands.

Every test runs the real application (python-telegram-bot long polling over HTTP) against
the fake Bot API server and asserts on the Bot API calls the bot made.
"""

from __future__ import annotations

import time

from PIL import Image, ImageOps

from hashdb.photo import hash_photo
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
    document_message,
    photo_message,
    sticker_message,
    text_message,
)
from tests.media import edited_copy, encode, photo


async def test_block_by_reply_then_edited_copy_deleted_and_sender_warned(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(1)
    async with run_bot() as app:
        first = post_photo(fake, MEMBER, original)
        await settle(fake, app, send(fake, text_message(CHAT, MEMBER, "look")))
        reply = await block_by_reply(fake, first, "/block shared without consent")
        assert "Blocked as entry #1" in reply
        assert fake.is_deleted(CHAT["id"], first["message_id"])

        copy = post_photo(fake, OTHER, edited_copy(original))
        await deleted(fake, copy)
        warning = await bot_reply(fake, "Warning 1")
        assert f"tg://user?id={OTHER['id']}" in warning and "Bob" in warning
        # The warning never hints at what the content was or why it was blocked.
        assert "consent" not in warning

        unrelated = post_photo(fake, OTHER, photo(2))
        update_id = send(fake, text_message(CHAT, OTHER, "hello"))
        await settle(fake, app, update_id)
        assert not fake.is_deleted(CHAT["id"], unrelated["message_id"])

        second_copy = post_photo(fake, OTHER, edited_copy(original))
        await deleted(fake, second_copy)
        await bot_reply(fake, "Warning 2")


async def test_exact_resend_is_matched_by_file_id_without_download(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    data = encode(photo(3))
    file = fake.add_file(data)
    async with run_bot():
        first = photo_message(CHAT, MEMBER, file, width=640, height=480)
        send(fake, first)
        await block_by_reply(fake, first)
        downloads = len(fake.downloads)
        again = photo_message(CHAT, MEMBER, file, width=640, height=480)
        send(fake, again)
        await deleted(fake, again)
        await bot_reply(fake, "Warning 1")
        assert len(fake.downloads) == downloads


async def test_non_admin_is_refused_and_nothing_changes(fake: FakeBotAPI, run_bot: RunBot) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(12)
    async with run_bot() as app:
        await block_by_reply(fake, post_photo(fake, OTHER, original))
        target = post_photo(fake, OTHER, photo(4))
        for text in ("/block", "/logs", "/addhash pdq " + "0" * 64, "/unblock 1", "/unblock"):
            send(fake, command(CHAT, MEMBER, text, reply_to=target))
            await bot_reply(fake, "Only this group's admins")
            fake.clear_calls()
        update_id = send(fake, text_message(CHAT, MEMBER, "ok"))
        await settle(fake, app, update_id)
        assert not fake.is_deleted(CHAT["id"], target["message_id"])
        assert app.bot_data.services is not None
        # Entry #1 (blocked by the admin) is still there; nothing new was added.
        assert app.bot_data.services.core.matching.index_size(CHAT["id"]) == 1
        await deleted(fake, post_photo(fake, OTHER, edited_copy(original)))


async def test_anonymous_admin_and_command_with_bot_username(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot():
        target = post_photo(fake, MEMBER, photo(5))
        send(
            fake,
            command(CHAT, None, "/block@hashguard_test_bot", reply_to=target, sender_chat=CHAT),
        )
        assert "Blocked as entry #1" in await bot_reply(fake, "entry #")
        send(fake, command(CHAT, ADMIN, "/logs@hashguard_test_bot 5"))
        logs = await bot_reply(fake, "audit events")
        assert "block" in logs and "Friends" in logs


async def test_document_and_sticker_paths(fake: FakeBotAPI, run_bot: RunBot) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(6, (512, 512))
    async with run_bot():
        png = fake.add_file(encode(original, "PNG"), file_path_suffix=".png")
        doc = document_message(CHAT, MEMBER, png, mime_type="image/png", file_name="x.png")
        send(fake, doc)
        await block_by_reply(fake, doc)

        webp = fake.add_file(
            encode(original.resize((400, 400)), "WEBP", quality=70), file_path_suffix=".webp"
        )
        sticker = sticker_message(CHAT, OTHER, webp, width=400, height=400)
        send(fake, sticker)
        await deleted(fake, sticker)

        jpeg = fake.add_file(encode(ImageOps.mirror(original), quality=70))
        doc2 = document_message(CHAT, OTHER, jpeg, mime_type="image/jpeg", file_name="y.jpg")
        send(fake, doc2)
        await deleted(fake, doc2)
        await bot_reply(fake, "Warning 2")


async def test_corrupt_and_oversized_media_skipped_and_bot_keeps_working(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(7)
    async with run_bot() as app:
        target = post_photo(fake, MEMBER, original)
        await block_by_reply(fake, target)

        garbage = fake.add_file(b"\xff\xd8\xff\xe0 definitely not a jpeg" * 10)
        bad = document_message(CHAT, MEMBER, garbage, mime_type="image/jpeg", file_name="a.jpg")
        huge = fake.add_file(b"", file_size=25 * 1024 * 1024)
        big = document_message(CHAT, MEMBER, huge, mime_type="image/jpeg", file_name="b.jpg")
        send(fake, bad)
        update_id = send(fake, big)
        await settle(fake, app, update_id)
        assert huge.file_path not in " ".join(fake.downloads)
        assert not fake.is_deleted(CHAT["id"], bad["message_id"])

        copy = post_photo(fake, OTHER, edited_copy(original))
        await deleted(fake, copy)
        send(fake, command(CHAT, ADMIN, "/logs 10"))
        logs = await bot_reply(fake, "audit events")
        assert logs.count("media_skipped") == 2
        assert "too_large: the file is larger than this bot checks" in logs


async def test_restart_keeps_the_blocklist(fake: FakeBotAPI, run_bot: RunBot) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(8)
    async with run_bot():
        target = post_photo(fake, MEMBER, original)
        await block_by_reply(fake, target)
    fake.clear_calls()
    async with run_bot():
        copy = post_photo(fake, OTHER, edited_copy(original))
        await deleted(fake, copy)


async def test_addhash_blocks_and_malformed_values_are_explained(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(9)
    pdq = hash_photo(encode(original)).stored[0]
    async with run_bot():
        send(fake, command(CHAT, ADMIN, "/addhash pdq 12ab"))
        reply = await bot_reply(fake, "pdq hash")
        assert "'12ab' has 4 characters; expected 64 hexadecimal" in reply
        send(fake, command(CHAT, ADMIN, "/addhash md5 " + "0" * 32))
        assert "expected one of: pdq, phash, vpdq" in await bot_reply(
            fake, "unknown algorithm 'md5'"
        )
        send(fake, command(CHAT, ADMIN, "/addhash"))
        await bot_reply(fake, "Usage: /addhash")

        send(fake, command(CHAT, ADMIN, f"/addhash pdq {pdq.hex} from a StopNCII list"))
        assert "Added pdq hash as entry #1" in await bot_reply(fake, "Added")
        copy = post_photo(fake, OTHER, edited_copy(original))
        await deleted(fake, copy)


async def test_unblock_by_id_by_reply_to_the_bot_and_by_reply_to_media(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(10)
    async with run_bot() as app:
        await block_by_reply(fake, post_photo(fake, MEMBER, original))
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/unblock 1"))
        assert "#1." in await bot_reply(fake, "Removed from the blocklist", since=mark)
        send(fake, command(CHAT, ADMIN, "/unblock abc"))
        assert "expected a number" in await bot_reply(fake, "'abc' is not valid")
        send(fake, command(CHAT, ADMIN, "/unblock 99999999999999999999999"))
        await bot_reply(fake, "'99999999999999999999999' is not valid")

        kept = post_photo(fake, OTHER, edited_copy(original))
        update_id = send(fake, text_message(CHAT, OTHER, "."))
        await settle(fake, app, update_id)
        assert not fake.is_deleted(CHAT["id"], kept["message_id"])

        # Reply to the bot's own "Blocked as entry #2" message.
        await block_by_reply(fake, post_photo(fake, MEMBER, original))
        confirmation = next(m for m in fake.sent_messages if "entry #2" in (m.text or ""))
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/unblock", reply_to=confirmation.message))
        assert "#2." in await bot_reply(fake, "Removed from the blocklist", since=mark)

        # Reply to a copy that is still in the chat (posted while it was not blocked).
        await block_by_reply(fake, post_photo(fake, MEMBER, original))
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/unblock", reply_to=kept))
        assert "#3." in await bot_reply(fake, "Removed from the blocklist", since=mark)
        assert app.bot_data.services is not None
        assert app.bot_data.services.core.matching.index_size(CHAT["id"]) == 0


async def test_help_lists_commands_for_the_askers_role(fake: FakeBotAPI, run_bot: RunBot) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot():
        # The command menus published at start-up: members see /help, admins see all.
        menus = {
            c.params["scope"]["type"]: c.params["commands"] for c in fake.calls_to("setMyCommands")
        }
        assert [c["command"] for c in menus["default"]] == ["help", "warns", "report"]
        assert {c["command"] for c in menus["all_chat_administrators"]} == {
            "help",
            "warns",
            "report",
            "block",
            "unblock",
            "addhash",
            "logs",
            "resetwarns",
            "reportban",
            "reportunban",
            "settings",
            "set",
            "bank",
            "import",
            "export",
        }
        assert [c["command"] for c in menus["all_private_chats"]] == [
            "help",
            "submit",
            "mycases",
            "withdraw",
        ]
        send(fake, command(CHAT, MEMBER, "/help"))
        member_help = await bot_reply(fake, "Hashguard")
        assert "/block" not in member_help and "/help" in member_help
        fake.clear_calls()
        send(fake, command(CHAT, ADMIN, "/start"))
        admin_help = await bot_reply(fake, "Hashguard")
        for name in ("/block", "/unblock", "/addhash", "/logs"):
            assert name in admin_help


async def test_failed_delete_is_audited_and_reported_to_admins(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(11)
    async with run_bot():
        await block_by_reply(fake, post_photo(fake, MEMBER, original))
        fake.set_bot_rights(CHAT["id"], can_delete_messages=False)
        copy = post_photo(fake, OTHER, edited_copy(original))
        await bot_reply(fake, "Missing now: Delete messages")
        assert not fake.is_deleted(CHAT["id"], copy["message_id"])
        send(fake, command(CHAT, ADMIN, "/logs 3"))
        logs = await bot_reply(fake, "audit events")
        assert "match_not_deleted" in logs and "rights_missing" in logs


async def test_low_quality_image_is_blocked_for_exact_resends_only(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    flat = Image.new("RGB", (400, 300), (200, 30, 30))
    async with run_bot() as app:
        file = fake.add_file(encode(flat))
        first = photo_message(CHAT, MEMBER, file, width=400, height=300)
        send(fake, first)
        reply = await block_by_reply(fake, first)
        assert "too little detail" in reply
        other_flat = post_photo(fake, OTHER, Image.new("RGB", (400, 300), (20, 200, 30)))
        update_id = send(fake, text_message(CHAT, OTHER, "."))
        await settle(fake, app, update_id)
        assert not fake.is_deleted(CHAT["id"], other_flat["message_id"])
        resend = photo_message(CHAT, OTHER, file, width=400, height=300)
        send(fake, resend)
        await deleted(fake, resend)
