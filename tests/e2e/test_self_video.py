"""Self-submitted videos end to end: one submission keeps a bounded number of distinct frame
hashes (still enough to find copies of the video), and a photo that matches only one of
its frames goes to the admins' review instead of being deleted."""

from __future__ import annotations

import time
from typing import Any

from PIL import Image

from bot.services.selfsubmit import SELF_VIDEO_MAX_FRAMES
from handlers.context import HashguardApp
from hashdb.signals import VPDQ
from hashdb.store import SELF_BANK_NAME, Entry
from tests.e2e.helpers import (
    ADMIN,
    CHAT,
    MEMBER,
    SUBMITTER,
    RunBot,
    accept,
    bot_reply,
    gone,
    post,
    send,
    set_in,
    settle,
)
from tests.fakebot import FakeBotAPI, command, private_chat, video_message
from tests.media import reencode, video, video_frames

#: 80 s of 2-second shots: hundreds of sampled frames, far more than the cap, even once
#: near-identical neighbours are dropped.
SECONDS = 80.0
FPS = 5


def post_video(
    fake: FakeBotAPI, chat: dict[str, Any], sender: dict[str, Any], data: bytes
) -> tuple[dict[str, Any], int]:
    file = fake.add_file(data, file_path_suffix=".mp4")
    message = video_message(chat, sender, file, duration=int(SECONDS))
    return message, send(fake, message)


async def self_entries(app: HashguardApp) -> list[Entry]:
    assert app.bot_data.services is not None
    store = app.bot_data.services.core.store
    bank = await store.bank_by_name(SELF_BANK_NAME)
    assert bank is not None
    return await store.bank_entries(bank.id)


async def submit_video(fake: FakeBotAPI, app: HashguardApp, data: bytes) -> Entry:
    await accept(fake, SUBMITTER)
    mark = time.monotonic()
    post_video(fake, private_chat(SUBMITTER), SUBMITTER, data)
    await bot_reply(fake, "Case HG-", since=mark)
    (entry,) = await self_entries(app)
    return entry


async def test_a_self_submitted_video_keeps_a_bounded_set_of_distinct_frames(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = video(1701, seconds=SECONDS, fps=FPS)
    async with run_bot() as app:
        await set_in(fake, CHAT, "use_self_submitted on")
        entry = await submit_video(fake, app, original)

        frames = [f for f in entry.fingerprints if f.signal == VPDQ.name]
        assert len(frames) <= SELF_VIDEO_MAX_FRAMES
        # Spread over the whole video, not its first minute only.
        assert max(f.seconds or 0.0 for f in frames) > SECONDS - 10
        assert len({f.value for f in frames}) == len(frames)

        # Still enough to find a re-encoded copy.
        copy, _ = post_video(fake, CHAT, MEMBER, reencode(original))
        await gone(fake, CHAT["id"], copy)


async def test_a_photo_matching_only_a_self_submitted_video_frame_goes_to_review(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    seconds = 6.0
    async with run_bot() as app:
        await set_in(fake, CHAT, "use_self_submitted on")
        await accept(fake, SUBMITTER)
        mark = time.monotonic()
        file = fake.add_file(video(1711, seconds=seconds, fps=FPS), file_path_suffix=".mp4")
        send(fake, video_message(private_chat(SUBMITTER), SUBMITTER, file, duration=6))
        await bot_reply(fake, "Case HG-", since=mark)

        # A still of the video's first frame, posted as a photo.
        still = Image.fromarray(video_frames(1711, seconds=seconds, fps=FPS)[0])
        mark = time.monotonic()
        message, update_id = post(fake, CHAT, MEMBER, still)
        await bot_reply(fake, "looks like an edited copy", since=mark)
        await settle(fake, app, update_id)
        assert not fake.is_deleted(CHAT["id"], message["message_id"])
        assert not [
            c
            for c in fake.calls_to("sendMessage")
            if c.at >= mark and "Warning" in (c.str_param("text") or "")
        ]
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/logs 3"))
        logs = await bot_reply(fake, "audit events", since=mark)
        assert "match_review" in logs and "a frame of a self-submitted video" in logs
