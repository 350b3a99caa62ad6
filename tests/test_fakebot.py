"""Tests of the fake Bot API server, driven by the real python-telegram-bot client.

If these fail, every end-to-end test built on ``tests.fakebot`` is suspect, so they pin
the behaviours those tests rely on: Telegram-shaped answers that PTB parses, the error
texts PTB surfaces, and long polling that delivers pushed updates to handlers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import telegram
from telegram import (
    ChatMemberAdministrator,
    ChatMemberMember,
    ChatMemberOwner,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest, RetryAfter
from telegram.ext import ContextTypes, MessageHandler, filters

from tests.fakebot import (
    BOT_USER,
    MAX_DOWNLOAD_SIZE,
    BotApplication,
    FakeBotAPI,
    UploadedFile,
    command,
    document_message,
    group,
    message_update,
    my_chat_member_update,
    photo_message,
    sticker_message,
    text_message,
    user,
)

GROUP_ID = -1001234567890
ALICE = 1001
BOB = 1002
CAROL = 1003


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def app(fake: FakeBotAPI) -> AsyncIterator[BotApplication]:
    application = fake.application_builder().build()
    async with application:
        yield application


def test_built_updates_parse_in_ptb() -> None:
    fake = FakeBotAPI()
    chat = group(GROUP_ID, "Parsing")
    alice = user(ALICE, "Alice", "alice")
    photo_file = fake.add_file(b"photo", file_path_suffix=".jpg")
    thumb_file = fake.add_file(b"thumb", file_path_suffix=".jpg")
    doc_file = fake.add_file(b"doc", file_path_suffix=".png")
    sticker_file = fake.add_file(b"sticker", file_path_suffix=".webp")
    target = photo_message(
        chat, alice, photo_file, width=1280, height=720, caption="c", thumb=thumb_file
    )

    updates = [
        message_update(text_message(chat, alice, "hello")),
        message_update(target),
        message_update(
            document_message(chat, alice, doc_file, mime_type="image/png", file_name="a.png")
        ),
        message_update(sticker_message(chat, alice, sticker_file, is_video=True)),
        message_update(command(chat, alice, "/block@hashguard_test_bot spam", reply_to=target)),
        message_update(text_message(chat, None, "/block", sender_chat=chat)),
        my_chat_member_update(chat, alice, "member", "administrator", can_restrict_members=False),
        my_chat_member_update(chat, alice, "administrator", "kicked"),
    ]
    for number, data in enumerate(updates, start=1):
        parsed = Update.de_json({"update_id": number, **data}, bot=None)
        assert parsed.update_id == number

    photo = Update.de_json({"update_id": 1, **updates[1]}, bot=None).effective_message
    assert photo is not None
    assert [size.file_id for size in photo.photo] == [thumb_file.file_id, photo_file.file_id]
    assert (photo.photo[-1].width, photo.photo[-1].height) == (1280, 720)

    block = Update.de_json({"update_id": 5, **updates[4]}, bot=None).effective_message
    assert block is not None and block.reply_to_message is not None
    assert block.reply_to_message.message_id == target["message_id"]
    assert block.parse_entities(["bot_command"]) == {block.entities[0]: "/block@hashguard_test_bot"}

    anonymous = Update.de_json({"update_id": 6, **updates[5]}, bot=None).effective_message
    assert anonymous is not None and anonymous.sender_chat is not None
    assert anonymous.sender_chat.id == GROUP_ID
    assert anonymous.from_user is not None and anonymous.from_user.username == "GroupAnonymousBot"

    promoted = Update.de_json({"update_id": 7, **updates[6]}, bot=None).my_chat_member
    assert promoted is not None
    assert isinstance(promoted.new_chat_member, ChatMemberAdministrator)
    assert promoted.new_chat_member.can_restrict_members is False


async def test_bot_methods_round_trip(fake: FakeBotAPI, app: BotApplication) -> None:
    bot = app.bot
    me = await bot.get_me()
    assert (me.id, me.username, me.can_read_all_group_messages) == (
        BOT_USER["id"],
        "hashguard_test_bot",
        True,
    )

    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Undo", callback_data="undo:1")]])
    sent = await bot.send_message(
        GROUP_ID, "<b>blocked</b>", parse_mode="HTML", reply_markup=keyboard
    )
    assert sent.chat.type == "supergroup" and sent.from_user is not None
    assert sent.from_user.id == BOT_USER["id"]
    record = fake.sent_messages[-1]
    assert (record.text, record.parse_mode) == ("<b>blocked</b>", "HTML")
    assert record.reply_markup == {
        "inline_keyboard": [[{"text": "Undo", "callback_data": "undo:1"}]]
    }
    call = await fake.wait_for("sendmessage")  # method names are case-insensitive
    assert call.int_param("chat_id") == GROUP_ID

    edited = await bot.edit_message_text("done", chat_id=GROUP_ID, message_id=sent.message_id)
    assert isinstance(edited, telegram.Message) and edited.text == "done"
    assert fake.message_text(GROUP_ID, sent.message_id) == "done"

    assert await bot.delete_message(GROUP_ID, sent.message_id) is True
    assert fake.is_deleted(GROUP_ID, sent.message_id)
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(GROUP_ID, sent.message_id)
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(GROUP_ID, "late", reply_to_message_id=sent.message_id)

    upload = await bot.send_document(GROUP_ID, b"id,hash\n", filename="export.csv")
    assert upload.document is not None and upload.document.file_name == "export.csv"
    assert isinstance(fake.calls_to("sendDocument")[0].params["document"], UploadedFile)

    await bot.set_my_commands([("block", "Block the replied media")])
    assert [c.command for c in await bot.get_my_commands()] == ["block"]

    chat = await bot.get_chat(GROUP_ID)
    assert chat.title == "Test group"


async def test_files_download_and_size_limit(fake: FakeBotAPI, app: BotApplication) -> None:
    stored = fake.add_file(b"\x89PNG fake bytes", file_path_suffix=".png")
    tg_file = await app.bot.get_file(stored.file_id)
    assert tg_file.file_size == len(b"\x89PNG fake bytes")
    assert await tg_file.download_as_bytearray() == bytearray(b"\x89PNG fake bytes")
    assert fake.downloads == [stored.file_path]

    huge = fake.add_file(b"", file_size=MAX_DOWNLOAD_SIZE + 1)
    with pytest.raises(BadRequest, match="File is too big"):
        await app.bot.get_file(huge.file_id)
    with pytest.raises(BadRequest, match="Invalid file_id"):
        await app.bot.get_file("no-such-file")
    assert fake.downloads == [stored.file_path]


async def test_members_and_rights(fake: FakeBotAPI, app: BotApplication) -> None:
    bot = app.bot
    fake.set_user(ALICE, "Alice", "alice")
    fake.set_admins(GROUP_ID, [user(BOB, "Bob")], creator=ALICE)

    owner = await bot.get_chat_member(GROUP_ID, ALICE)
    assert isinstance(owner, ChatMemberOwner) and owner.user.first_name == "Alice"
    admin = await bot.get_chat_member(GROUP_ID, BOB)
    assert isinstance(admin, ChatMemberAdministrator) and admin.can_delete_messages
    member = await bot.get_chat_member(GROUP_ID, CAROL)
    assert isinstance(member, ChatMemberMember) and member.user.first_name == f"User{CAROL}"
    me = await bot.get_chat_member(GROUP_ID, BOT_USER["id"])
    assert isinstance(me, ChatMemberAdministrator) and me.can_restrict_members

    admins = await bot.get_chat_administrators(GROUP_ID)
    assert [m.user.id for m in admins] == [ALICE, BOB, BOT_USER["id"]]

    with pytest.raises(BadRequest, match="User is an administrator of the chat"):
        await bot.ban_chat_member(GROUP_ID, BOB)
    assert await bot.ban_chat_member(GROUP_ID, CAROL)
    assert (GROUP_ID, CAROL) in fake.banned

    spam = text_message(group(GROUP_ID), user(CAROL), "spam")
    fake.push_update(message_update(spam))
    fake.set_bot_rights(GROUP_ID, can_delete_messages=False)
    with pytest.raises(BadRequest, match="Message can't be deleted"):
        await bot.delete_message(GROUP_ID, spam["message_id"])
    me = await bot.get_chat_member(GROUP_ID, BOT_USER["id"])
    assert isinstance(me, ChatMemberAdministrator) and not me.can_delete_messages

    fake.push_update(my_chat_member_update(group(GROUP_ID), user(ALICE), "administrator", "member"))
    me = await bot.get_chat_member(GROUP_ID, BOT_USER["id"])
    assert isinstance(me, ChatMemberMember)


async def test_failure_injection_and_unknown_methods(
    fake: FakeBotAPI,
    app: BotApplication,
) -> None:
    fake.fail_next("sendMessage", error_code=429, retry_after=3)
    with pytest.raises(RetryAfter, match="Retry in 3 seconds"):
        await app.bot.send_message(GROUP_ID, "first")
    assert (await app.bot.send_message(GROUP_ID, "second")).text == "second"

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{fake.base_url}{fake.token}/sendPigeon") as response:
            assert response.status == 404
            assert (await response.json())["description"] == "Not Found: method not found"
        async with session.post(f"{fake.base_url}wrong:token/getMe") as response:
            assert response.status == 401
            assert await response.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }
    assert [call.method for call in fake.calls_to("sendPigeon")] == ["sendPigeon"]


async def test_raw_requests_json_body_and_query_string(fake: FakeBotAPI) -> None:
    chat = group(GROUP_ID)
    kept, gone = text_message(chat, user(ALICE), "a"), text_message(chat, user(ALICE), "b")
    for message in (kept, gone):
        fake.push_update(message_update(message))
    async with aiohttp.ClientSession() as session:
        body = {"chat_id": GROUP_ID, "message_ids": [gone["message_id"], 999_999]}
        async with session.post(f"{fake.base_url}{fake.token}/DELETEMESSAGES", json=body) as r:
            assert (await r.json())["result"] is True
        query = {"offset": "-1"}
        async with session.get(f"{fake.base_url}{fake.token}/getUpdates", params=query) as r:
            assert [u["message"]["text"] for u in (await r.json())["result"]] == ["b"]

    call = fake.calls_to("deleteMessages")[0]
    assert call.params["message_ids"] == [gone["message_id"], 999_999]
    assert call.int_param("chat_id") == GROUP_ID
    assert fake.calls_to("getUpdates")[0].int_param("offset") == -1
    assert fake.is_deleted(GROUP_ID, gone["message_id"])
    assert fake.has_message(GROUP_ID, kept["message_id"])


async def test_long_poll_answers_when_an_update_arrives(fake: FakeBotAPI) -> None:
    first = fake.push_update(message_update(text_message(group(GROUP_ID), user(ALICE), "1")))
    url = f"{fake.base_url}{fake.token}/getUpdates"
    async with aiohttp.ClientSession() as session:

        async def poll() -> list[dict[str, Any]]:
            async with session.post(url, data={"offset": first + 1, "timeout": 30}) as response:
                result: list[dict[str, Any]] = (await response.json())["result"]
                return result

        waiting = asyncio.create_task(poll())
        await fake.wait_for("getUpdates")
        await asyncio.sleep(0.05)
        assert not waiting.done(), "getUpdates answered before any update was pending"
        second = fake.push_update(message_update(text_message(group(GROUP_ID), user(BOB), "2")))
        # Well under the 2 s long-poll cap: the push itself must wake the poll.
        result = await asyncio.wait_for(waiting, timeout=1)
    assert [update["update_id"] for update in result] == [second]
    assert fake.confirmed_offset == first + 1
    await fake.wait_until_consumed(first)


async def test_wait_for_reports_recorded_calls(fake: FakeBotAPI, app: BotApplication) -> None:
    await app.bot.send_message(GROUP_ID, "hello")
    with pytest.raises(
        AssertionError, match=r"(?s)no deleteMessage call.*recorded calls:.*sendMessage"
    ):
        await fake.wait_for("deleteMessage", timeout=0.05)


async def test_polling_delivers_updates_to_handlers(fake: FakeBotAPI) -> None:
    application = fake.application_builder().build()
    seen: list[str] = []
    handled = asyncio.Event()

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        seen.append(update.effective_message.text or "")
        handled.set()

    application.add_handler(MessageHandler(filters.TEXT, record))
    await application.initialize()
    assert application.updater is not None
    await application.updater.start_polling(poll_interval=0.0, timeout=1)
    await application.start()
    try:
        message = text_message(group(GROUP_ID), user(ALICE), "ping")
        update_id = fake.push_update(message_update(message))
        await asyncio.wait_for(handled.wait(), timeout=5)
        await fake.wait_until_consumed(update_id)
        assert seen == ["ping"]
        assert fake.pending_updates == []
        assert fake.has_message(GROUP_ID, message["message_id"])
    finally:
        await application.updater.stop()
        await application.stop()
        await application.shutdown()
