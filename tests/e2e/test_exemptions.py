"""Per-group exemptions end to end: a group's admin stops a bad entry of a list it does not
own (a subscribed bank, the operator's lists) from deleting anything in that group, by
replying /unblock to the bot's deletion notice or by giving the entry id, and undoes it
with /block <entry id>. Other groups using the same list are not affected."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import (
    ADMIN,
    CHAT,
    MEMBER,
    SECOND,
    SECOND_ADMIN,
    RunBot,
    bot_reply,
    deleted_from_chat,
    is_kept,
    operator_bank,
    pdq_line,
    post,
    send,
)
from tests.fakebot import FakeBotAPI, SentMessage, command, group, photo_message, private_chat
from tests.media import edited_copy, encode, photo

THIRD = group(-1005555555555, "Third")
THIRD_ADMIN = {**SECOND_ADMIN, "id": 3003, "first_name": "Cleo"}


async def said(fake: FakeBotAPI, chat: dict[str, Any], text: str, needle: str) -> str:
    """Send an admin command in ``chat`` and return the bot's answer containing ``needle``."""
    admin = {SECOND["id"]: SECOND_ADMIN, THIRD["id"]: THIRD_ADMIN}.get(chat["id"], ADMIN)
    mark = time.monotonic()
    send(fake, command(chat, admin, text))
    return await bot_reply(fake, needle, since=mark)


def notice_in(fake: FakeBotAPI, chat: dict[str, Any], since: float) -> SentMessage:
    """The bot's latest deletion notice (warning) in ``chat`` sent after ``since``."""
    found = [
        m
        for m in fake.sent_messages
        if m.chat_id == chat["id"] and "your message was removed" in (m.text or "")
    ]
    assert found, f"no deletion notice in {chat['title']}"
    return found[-1]


async def test_reply_to_the_deletion_notice_exempts_a_subscribed_entry_in_that_group_only(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    fake.set_admins(SECOND["id"], [SECOND_ADMIN])
    fake.set_admins(THIRD["id"], [THIRD_ADMIN])
    # An ordinary photo that a curator put on a shared list, by mistake or in bad faith.
    ordinary = photo(1501)
    async with run_bot() as app:
        await said(fake, CHAT, "/bank create curated", "created")
        source, _ = post(fake, CHAT, MEMBER, ordinary)
        send(fake, command(CHAT, ADMIN, "/bank add curated", reply_to=source))
        entry_id = int((await bot_reply(fake, "Added to bank")).split("entry #")[1].split(".")[0])
        await said(fake, SECOND, "/bank subscribe curated", "now uses")
        await said(fake, THIRD, "/bank subscribe curated", "now uses")

        # Before: the group's ordinary photo is deleted, and the notice names no entry.
        mark = time.monotonic()
        first, _ = post(fake, SECOND, MEMBER, edited_copy(ordinary))
        await deleted_from_chat(fake, first)
        await bot_reply(fake, "Warning 1", since=mark)
        notice = notice_in(fake, SECOND, mark)
        assert "entry" not in (notice.text or "") and "#" not in (notice.text or "")

        # A member's reply is refused; the admin's reply exempts the entry here.
        send(fake, command(SECOND, MEMBER, "/unblock", reply_to=notice.message))
        await bot_reply(fake, "Only this group's admins")
        mark = time.monotonic()
        send(fake, command(SECOND, SECOND_ADMIN, "/unblock", reply_to=notice.message))
        answer = await bot_reply(fake, f"Entry #{entry_id}", since=mark)
        assert "exempted in this group only" in answer
        assert f"Undo with /block {entry_id}" in answer

        # After: kept in that group, by hash and by the file-id shortcut alike...
        assert await is_kept(fake, app, *post(fake, SECOND, MEMBER, edited_copy(ordinary)))
        again = photo_message(
            SECOND, MEMBER, fake.add_file(encode(ordinary)), width=640, height=480
        )
        assert await is_kept(fake, app, again, send(fake, again))
        resent = dict(first, message_id=first["message_id"] + 1000)
        assert await is_kept(fake, app, resent, send(fake, resent))
        # ...and still deleted in the other group using the same bank.
        elsewhere, _ = post(fake, THIRD, MEMBER, edited_copy(ordinary))
        await deleted_from_chat(fake, elsewhere)

        # The curator sees that a group exempted the entry.
        owner_view = await said(fake, private_chat(ADMIN), f"/bank entry {entry_id}", "Exempted")
        assert "Exempted by 1 group(s)" in owner_view

        # /block <id> lifts the exemption: the photo is deleted there again.
        lifted = await said(fake, SECOND, f"/block {entry_id}", "applies in this group again")
        assert f"#{entry_id}" in lifted
        assert "not exempted" in await said(fake, SECOND, f"/block {entry_id}", "not exempted")
        back, _ = post(fake, SECOND, MEMBER, edited_copy(ordinary))
        await deleted_from_chat(fake, back)

        # Both are audited in the group.
        logs = await said(fake, SECOND, "/logs 20", "audit events")
        assert f"<b>exempt</b> · by {SECOND_ADMIN['first_name']}" in logs
        assert "<b>unexempt</b>" in logs


async def test_unblock_by_id_exempts_an_operator_entry_and_removes_an_own_one(
    fake: FakeBotAPI, run_bot: RunBot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    fake.set_admins(SECOND["id"], [SECOND_ADMIN])
    fake.set_admins(THIRD["id"], [THIRD_ADMIN])
    listed = photo(1511)
    path = tmp_path / "pledges.txt"
    path.write_text(f"{pdq_line(listed)}\n")
    caplog.set_level(logging.INFO, logger="bot.services.blocklist")
    async with run_bot(banks_files=str(path)) as app:
        bank = await operator_bank(app, "operator:pledges")
        assert app.bot_data.services is not None
        (entry,) = await app.bot_data.services.core.store.bank_entries(bank.id)

        answer = await said(fake, SECOND, f"/unblock {entry.id}", f"Entry #{entry.id}")
        assert "operator's list 'operator:pledges'" in answer
        assert "exempted in this group only" in answer
        assert "already exempted" in await said(
            fake, SECOND, f"/unblock {entry.id}", "already exempted"
        )
        assert await is_kept(fake, app, *post(fake, SECOND, MEMBER, edited_copy(listed)))
        copy, _ = post(fake, CHAT, MEMBER, edited_copy(listed))
        await deleted_from_chat(fake, copy)
        assert not any("entry_exempted_widely" in r.getMessage() for r in caplog.records)

        # Three groups exempting one entry: the operator is told, once.
        await said(fake, THIRD, f"/unblock {entry.id}", "exempted in this group only")
        await said(fake, CHAT, f"/unblock {entry.id}", "exempted in this group only")
        flagged = [r for r in caplog.records if "entry_exempted_widely" in r.getMessage()]
        assert len(flagged) == 1 and f"entry={entry.id}" in flagged[0].getMessage()
        assert flagged[0].levelno == logging.WARNING

        # The group's own entry is removed, as /unblock always did.
        own_photo, _ = post(fake, CHAT, MEMBER, photo(1512))
        send(fake, command(CHAT, ADMIN, "/block", reply_to=own_photo))
        own_id = int((await bot_reply(fake, "Blocked as entry")).split("#")[1].split(".")[0])
        assert f"#{own_id}" in await said(
            fake, CHAT, f"/unblock {own_id}", "Removed from the blocklist"
        )
