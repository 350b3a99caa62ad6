"""Self-submission end to end: consent first, then private media becomes a case whose
fingerprints only the groups that opted in use, until the person withdraws it.

The bot must keep fingerprints and nothing else: the last test scans every file the run
left behind for the submitted photo's bytes.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from PIL import Image

from hashdb.photo import hash_photo
from hashdb.store import SELF_BANK_NAME
from tests.e2e.helpers import (
    ADMIN,
    CHAT,
    DEFAULT_GROUP,
    MEMBER,
    SUBMITTER,
    RunBot,
    accept,
    bot_reply,
    case_texts,
    consent_prompt,
    gone,
    idle,
    post,
    posted_and_kept,
    press,
    send,
    set_in,
    settle,
)
from tests.fakebot import (
    Call,
    FakeBotAPI,
    command,
    photo_message,
    private_chat,
    user,
)
from tests.media import edited_copy, encode, photo

OPTED_IN = CHAT
STRANGER = user(7002, "Tom")

CASE_CODE = re.compile(r"Case (HG-[A-Z0-9]{4}-[A-Z0-9]{4})")


async def submit(
    fake: FakeBotAPI, person: dict[str, Any], image: Image.Image
) -> tuple[dict[str, Any], str]:
    """Send ``image`` privately; returns the message and the case code the bot answered."""
    mark = time.monotonic()
    message, _ = post(fake, private_chat(person), person, image)
    match = CASE_CODE.search(await bot_reply(fake, "Case HG-", since=mark))
    assert match is not None
    return message, match.group(1)


async def private_command(fake: FakeBotAPI, person: dict[str, Any], text: str, needle: str) -> str:
    mark = time.monotonic()
    send(fake, command(private_chat(person), person, text))
    return await bot_reply(fake, needle, since=mark)


async def test_consent_then_submission_protects_opted_in_groups_until_withdrawn(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(OPTED_IN["id"], [ADMIN])
    fake.set_admins(DEFAULT_GROUP["id"], [ADMIN])
    own = photo(801)
    async with run_bot() as app:
        assert app.bot_data.services is not None
        core = app.bot_data.services.core
        await set_in(fake, OPTED_IN, "use_self_submitted on")

        # Media before consent: the explanation and its button, nothing downloaded or kept.
        mark = time.monotonic()
        early, update_id = post(fake, private_chat(SUBMITTER), SUBMITTER, own)
        explanation = await bot_reply(fake, "StopNCII", since=mark)
        assert "Take It Down" in explanation
        await settle(fake, app, update_id)
        assert "I understand, continue" in str(consent_prompt(fake, SUBMITTER).reply_markup)
        assert not case_texts(fake)
        assert not fake.calls_to("getFile")
        assert not fake.is_deleted(SUBMITTER["id"], early["message_id"])
        assert await core.selfsubmit.user_cases(SUBMITTER["id"]) == []

        mark = time.monotonic()
        press(fake, SUBMITTER, consent_prompt(fake, SUBMITTER), "ss:accept")
        await bot_reply(fake, "Thank you", since=mark)

        submitted, code = await submit(fake, SUBMITTER, own)
        await gone(fake, SUBMITTER["id"], submitted)

        # The group that opted in deletes a copy; a group on the default keeps one.
        copy_image = edited_copy(own)
        copy_file = fake.add_file(encode(copy_image))
        copy = photo_message(
            OPTED_IN, MEMBER, copy_file, width=copy_image.width, height=copy_image.height
        )
        send(fake, copy)
        await gone(fake, OPTED_IN["id"], copy)
        await posted_and_kept(fake, app, DEFAULT_GROUP, edited_copy(own))

        # Nobody else can withdraw the case, and a code that does not exist is named back.
        for code_given in (code, "HG-ZZZZ-ZZZZ", "nonsense"):
            refusal = await private_command(fake, STRANGER, f"/withdraw {code_given}", "no case")
            assert code_given in refusal
        second, _ = post(fake, OPTED_IN, MEMBER, edited_copy(own))
        await gone(fake, OPTED_IN["id"], second)

        listing = await private_command(fake, SUBMITTER, "/mycases", "Your cases")
        assert f"{code}: photo" in listing and "active" in listing

        # Codes are typed by hand: case does not matter.
        withdrawn = await private_command(fake, SUBMITTER, f"/withdraw {code.lower()}", "withdrawn")
        assert code in withdrawn
        await posted_and_kept(fake, app, OPTED_IN, edited_copy(own))
        # The very file that matched before (a forward keeps its file id) is kept too.
        again = photo_message(
            OPTED_IN, MEMBER, copy_file, width=copy_image.width, height=copy_image.height
        )
        await settle(fake, app, send(fake, again))
        assert not fake.is_deleted(OPTED_IN["id"], again["message_id"])

        listing = await private_command(fake, SUBMITTER, "/mycases", "Your cases")
        assert f"{code}: photo" in listing and "withdrawn" in listing


async def test_rate_limit_refuses_the_third_submission_of_the_day(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    async with run_bot(self_submission_per_day="2") as app:
        assert app.bot_data.services is not None
        core = app.bot_data.services.core
        await accept(fake, SUBMITTER)
        await submit(fake, SUBMITTER, photo(811))
        await submit(fake, SUBMITTER, photo(812))

        mark = time.monotonic()
        third, update_id = post(fake, private_chat(SUBMITTER), SUBMITTER, photo(813))
        refusal = await bot_reply(fake, "You have submitted 2 items", since=mark)
        assert "tomorrow" in refusal
        await settle(fake, app, update_id)
        assert not case_texts(fake, since=mark)
        assert not fake.is_deleted(SUBMITTER["id"], third["message_id"])
        assert len(await core.selfsubmit.user_cases(SUBMITTER["id"])) == 2
        bank = await core.store.bank_by_name(SELF_BANK_NAME)
        assert bank is not None
        assert await core.store.count_active_entries(bank.id) == 2


async def test_rate_limit_holds_for_photos_sent_at_once(fake: FakeBotAPI, run_bot: RunBot) -> None:
    async with run_bot(self_submission_per_day="2") as app:
        assert app.bot_data.services is not None
        await accept(fake, SUBMITTER)
        album = [post(fake, private_chat(SUBMITTER), SUBMITTER, photo(815 + i)) for i in range(4)]
        for _, update_id in album:
            await settle(fake, app, update_id)
        assert len(await app.bot_data.services.core.selfsubmit.user_cases(SUBMITTER["id"])) == 2


async def test_disabled_self_submission_says_so_and_hashes_nothing(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    async with run_bot(self_submission_enabled="false") as app:
        assert app.bot_data.services is not None
        reply = await private_command(fake, SUBMITTER, "/submit", "not enabled")
        assert "StopNCII" not in reply
        mark = time.monotonic()
        message, update_id = post(fake, private_chat(SUBMITTER), SUBMITTER, photo(821))
        await bot_reply(fake, "not enabled", since=mark)
        await settle(fake, app, update_id)
        assert not fake.calls_to("getFile")
        assert not fake.is_deleted(SUBMITTER["id"], message["message_id"])
        assert not any("ss:accept" in str(m.reply_markup) for m in fake.sent_messages)
        assert await app.bot_data.services.core.selfsubmit.user_cases(SUBMITTER["id"]) == []


async def test_commands_in_a_group_point_to_the_private_chat_and_do_nothing(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(OPTED_IN["id"], [ADMIN])
    async with run_bot() as app:
        assert app.bot_data.services is not None
        core = app.bot_data.services.core
        await accept(fake, SUBMITTER)
        _, code = await submit(fake, SUBMITTER, photo(831))
        fake.clear_calls()

        sent: dict[str, int] = {}
        for text in ("/submit", "/mycases", f"/withdraw {code}"):
            mark = time.monotonic()
            message = command(OPTED_IN, SUBMITTER, text)
            sent[text.split()[0]] = message["message_id"]
            update_id = send(fake, message)
            reply = await bot_reply(fake, "privately", since=mark)
            await settle(fake, app, update_id)
            assert code not in reply, "a case code must never be shown in a group"
            assert "StopNCII" not in reply

        group_messages = [m for m in fake.sent_messages if m.chat_id == OPTED_IN["id"]]
        assert len(group_messages) == 3
        assert all(m.reply_markup is None for m in group_messages)
        assert not [m for m in fake.sent_messages if m.chat_id != OPTED_IN["id"]]
        # Only the /withdraw command is removed: it carries the person's case code.
        assert [c.int_param("message_id") for c in fake.calls_to("deleteMessage")] == [
            sent["/withdraw"]
        ]
        assert [c.status for c in await core.selfsubmit.user_cases(SUBMITTER["id"])] == ["active"]


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def test_only_fingerprints_are_kept_never_the_media(
    fake: FakeBotAPI, run_bot: RunBot, tmp_path: Path, db_path: Path
) -> None:
    fake.set_admins(OPTED_IN["id"], [ADMIN])
    own = photo(841)
    data = encode(own)
    async with run_bot() as app:
        assert app.bot_data.services is not None
        store = app.bot_data.services.core.store
        await set_in(fake, OPTED_IN, "use_self_submitted on")
        await accept(fake, SUBMITTER)
        file = fake.add_file(data)
        submitted = photo_message(
            private_chat(SUBMITTER), SUBMITTER, file, width=own.width, height=own.height
        )
        mark = time.monotonic()
        send(fake, submitted)
        await bot_reply(fake, "Case HG-", since=mark)
        await gone(fake, SUBMITTER["id"], submitted)
        copy, update_id = post(fake, OPTED_IN, MEMBER, edited_copy(own))
        await gone(fake, OPTED_IN["id"], copy)
        await settle(fake, app, update_id)

        bank = await store.bank_by_name(SELF_BANK_NAME)
        assert bank is not None
        (entry,) = await store.bank_entries(bank.id)
        assert set(entry.fingerprints) >= set(hash_photo(data).stored)

    # Whole file, a slice of its compressed data and a row of decoded pixels: none of them
    # may be anywhere on disk once the run is over.
    pixels = own.convert("RGB").tobytes()
    row = own.width * 3
    needles = {
        "the JPEG file": data,
        "a slice of the JPEG data": data[len(data) // 2 : len(data) // 2 + 64],
        "a row of pixels": pixels[240 * row : 241 * row],
    }
    files = _files_under(tmp_path) + _files_under(db_path.parent)
    assert any(p.name == db_path.name for p in files)
    for path in files:
        content = path.read_bytes()
        for what, needle in needles.items():
            assert needle not in content, f"{what} was found in {path}"


async def test_who_submitted_stays_private_from_groups_and_log_chats(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    log_chat = -1009999999999
    fake.set_admins(OPTED_IN["id"], [ADMIN])
    own = photo(851)
    async with run_bot(moderation_log_chat=str(log_chat)):
        await set_in(fake, OPTED_IN, "use_self_submitted on")
        await accept(fake, SUBMITTER)
        _, code = await submit(fake, SUBMITTER, own)
        copy, _ = post(fake, OPTED_IN, MEMBER, edited_copy(own))
        await gone(fake, OPTED_IN["id"], copy)
        await fake.wait_for("sendMessage", lambda c: "match_deleted" in (c.str_param("text") or ""))
        # The group's admins can look the entry up, but not who submitted it.
        entry_id = next(
            int(m.group(1))
            for m in (
                re.search(r"entry #(\d+)", c.str_param("text") or "")
                for c in fake.calls_to("sendMessage")
                if c.int_param("chat_id") == log_chat
            )
            if m
        )
        mark = time.monotonic()
        send(fake, command(OPTED_IN, ADMIN, f"/bank entry {entry_id}"))
        shown = await bot_reply(fake, f"Entry #{entry_id}", since=mark)
        assert "by the person it shows" in shown
        assert str(SUBMITTER["id"]) not in shown and code not in shown
        # The log chat saw the group's match, never the submission or the case code.
        logged = " ".join(
            c.str_param("text") or ""
            for c in fake.calls_to("sendMessage")
            if c.int_param("chat_id") == log_chat
        )
        assert "<b>self_submit</b>" not in logged and code not in logged
        assert str(SUBMITTER["id"]) not in logged


async def test_a_burst_over_the_daily_limit_is_refused_while_the_first_items_are_hashed(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    files = [fake.add_file(encode(photo(831 + n))) for n in range(5)]
    for file in files:
        fake.hold_download(file)
    async with run_bot(self_submission_per_day="2") as app:
        assert app.bot_data.services is not None
        await accept(fake, SUBMITTER)
        mark = time.monotonic()
        messages = [
            photo_message(private_chat(SUBMITTER), SUBMITTER, file, width=640, height=480)
            for file in files
        ]
        for message in messages:
            send(fake, message)
        # Refused at once, while the two items taken are still waiting for their files.
        refusals: list[Call] = []
        for _ in range(3):
            refusals.append(
                await fake.wait_for(
                    "sendMessage",
                    lambda c: (
                        c.at >= mark
                        and "You have submitted 2 items" in (c.str_param("text") or "")
                        and all(c is not seen for seen in refusals)
                    ),
                )
            )
        assert not case_texts(fake, since=mark)
        for file in files:
            fake.release_download(file)
        await idle(app)
        assert len(case_texts(fake, since=mark)) == 2
        assert len(await app.bot_data.services.core.selfsubmit.user_cases(SUBMITTER["id"])) == 2
        # The refused items were never downloaded, and stay in the chat: nothing was kept.
        assert sum(fake.downloads_of(file) for file in files) == 2
        still_there = [m for m in messages if not fake.is_deleted(SUBMITTER["id"], m["message_id"])]
        assert len(still_there) == 3
