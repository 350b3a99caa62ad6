"""Crops, captions, tilts and screenshots of a blocked photo, end to end: deleted by
default, held for the admins' review with /set local_match review, ignored when off."""

from __future__ import annotations

import time

from tests.e2e.helpers import (
    ADMIN,
    CHAT,
    MEMBER,
    OTHER,
    RunBot,
    answer,
    assert_kept,
    block_by_reply,
    bot_reply,
    deleted,
    post_photo,
    press,
    send,
)
from tests.fakebot import FakeBotAPI, command
from tests.media import PHOTO_EDITS, photo

ORIGINAL = photo(601, (1024, 768))


async def test_edited_copies_are_deleted_and_the_audit_says_how(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot() as app:
        await block_by_reply(fake, post_photo(fake, MEMBER, ORIGINAL))
        for name in ("crop to 75%", "caption banner and sticker", "inside a phone screenshot"):
            copy = post_photo(fake, OTHER, PHOTO_EDITS[name](ORIGINAL))
            await deleted(fake, copy)
        stranger = post_photo(fake, OTHER, photo(602, (1024, 768)))
        await assert_kept(fake, app, stranger)
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/logs 10"))
        logs = await bot_reply(fake, "audit events", since=mark)
        # The crop by its local features; the screenshot by the photo's own rectangle
        # inside the interface (region probes), which is tried first.
        assert "local features:" in logs and "matching points" in logs
        assert "picture found inside the upload (" in logs


async def test_review_setting_holds_a_copy_for_the_admins(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot() as app:
        await block_by_reply(fake, post_photo(fake, MEMBER, ORIGINAL))
        send(fake, command(CHAT, ADMIN, "/set local_match review"))
        await bot_reply(fake, "local_match is now review")

        copy = post_photo(fake, OTHER, PHOTO_EDITS["crop to 75%"](ORIGINAL))
        await fake.wait_for(
            "sendMessage", lambda c: "looks like an edited copy" in (c.str_param("text") or "")
        )
        review = next(m for m in fake.sent_messages if "looks like" in (m.text or ""))
        assert not fake.is_deleted(CHAT["id"], copy["message_id"])
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/logs 2"))
        assert "match_review" in await bot_reply(fake, "audit events", since=mark)
        # An exact copy is still deleted at once: only local matches wait for review.
        exact = post_photo(fake, OTHER, ORIGINAL)
        await deleted(fake, exact)

        # An admin decides: Block deletes the copy and warns its sender.
        mark = time.monotonic()
        press(fake, ADMIN, review, "report:block:1")
        await answer(fake, mark)
        await deleted(fake, copy)
        await bot_reply(fake, "Warning", since=mark)

        send(fake, command(CHAT, ADMIN, "/set local_match off"))
        await bot_reply(fake, "local_match is now off")
        ignored = post_photo(fake, OTHER, PHOTO_EDITS["tilted 4 degrees"](ORIGINAL))
        await assert_kept(fake, app, ignored)
        # Block on a flagged copy removed it without a second entry: the first one covers it.
        assert app.bot_data.services is not None
        assert app.bot_data.services.core.matching.index_size(CHAT["id"]) == 1
