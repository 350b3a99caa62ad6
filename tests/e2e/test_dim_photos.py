"""A dark photo end to end: blocked by reply, the reply says what will be caught, and a
resized re-encode of it posted later is deleted while an unrelated dark photo is not."""

from __future__ import annotations

from PIL import Image

from tests.e2e.helpers import (
    ADMIN,
    CHAT,
    MEMBER,
    OTHER,
    RunBot,
    block_by_reply,
    deleted,
    post_photo,
    send,
    settle,
)
from tests.fakebot import FakeBotAPI, text_message
from tests.media import dark, photo


async def test_dark_photo_blocked_then_its_resized_copy_deleted(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    night = dark(photo(21, (800, 600)), 21)
    async with run_bot() as app:
        first = post_photo(fake, MEMBER, night)
        await settle(fake, app, send(fake, text_message(CHAT, MEMBER, "look")))
        reply = await block_by_reply(fake, first)
        assert "little detail" in reply and "resized copies will be removed" in reply

        unrelated = post_photo(fake, OTHER, dark(photo(22, (800, 600)), 22))
        await settle(fake, app, send(fake, text_message(CHAT, OTHER, "hello")))
        assert not fake.is_deleted(CHAT["id"], unrelated["message_id"])

        copy = post_photo(fake, OTHER, night.resize((400, 300), Image.Resampling.LANCZOS))
        await deleted(fake, copy)
