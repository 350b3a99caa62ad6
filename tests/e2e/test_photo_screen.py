"""A phone photo of a monitor showing a blocked photo, end to end: the bot deletes it (a
local-feature match through the second look and the perspective fit); a photo of the same
monitor showing another picture stays."""

from __future__ import annotations

from tests.e2e.helpers import (
    ADMIN,
    CHAT,
    MEMBER,
    OTHER,
    RunBot,
    assert_kept,
    block_by_reply,
    deleted,
    post_photo,
)
from tests.fakebot import FakeBotAPI
from tests.media import screen_photo, textured

ORIGINAL = textured(611)


async def test_a_photo_of_a_screen_showing_a_blocked_photo_is_deleted(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot() as app:
        await block_by_reply(fake, post_photo(fake, MEMBER, ORIGINAL))
        copy = post_photo(fake, OTHER, screen_photo(ORIGINAL, tilt=0.8, washed=0.3))
        await deleted(fake, copy)
        other = post_photo(fake, OTHER, screen_photo(textured(612), tilt=0.8, washed=0.3))
        await assert_kept(fake, app, other)
