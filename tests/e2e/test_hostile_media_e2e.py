"""Hostile media sent to a group, end to end: each file is skipped with a log line and a
``media_skipped`` audit row naming why, and the bot goes on to delete the blocked photo
posted right after them.

The files come from the table in ``tests/hashdb/test_hostile_media.py``, which runs all of
them through the worker processes; here the bot hashes in threads, as every e2e test does.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from hashdb.fingerprint import SkipReason
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
from tests.fakebot import FakeBotAPI, document_message, text_message, video_message
from tests.hostile_media import CASES, Case
from tests.media import edited_copy, photo

#: A few of each kind: a bomb, truncated, garbage and empty files, a lying MIME type, an MP4
#: listing 40 million frames and a playlist, as documents and as a video message.
SENT = (
    "png_30000x30000_bomb",
    "jpeg_truncated",
    "garbage_as_video",
    "empty_image",
    "mp4_listing_40m_frames",
    "pdf_as_image_jpeg",
    "ffconcat_playlist_as_video",
)
BY_NAME = {case.name: case for case in CASES}


def post_hostile(fake: FakeBotAPI, case: Case) -> dict[str, Any]:
    data = case.make()
    if case.name == "garbage_as_video":
        message = video_message(CHAT, MEMBER, fake.add_file(data, file_path_suffix=".mp4"))
    else:
        file = fake.add_file(data, file_path_suffix=".bin")
        message = document_message(CHAT, MEMBER, file, mime_type=case.mime, file_name=case.name)
    send(fake, message)
    return message


async def test_hostile_files_are_skipped_and_audited_and_the_next_match_is_deleted(
    fake: FakeBotAPI, run_bot: RunBot, caplog: pytest.LogCaptureFixture
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(61)
    caplog.set_level(logging.WARNING, logger="bot.uploads")
    async with run_bot() as app:
        await block_by_reply(fake, post_photo(fake, MEMBER, original))

        sent = {name: post_hostile(fake, BY_NAME[name]) for name in SENT}
        # Over the download cap by Telegram's own count: refused without a download.
        huge = fake.add_file(b"", file_size=25 * 1024 * 1024)
        sent["over_cap"] = document_message(
            CHAT, MEMBER, huge, mime_type="video/mp4", file_name="long.mp4"
        )
        send(fake, sent["over_cap"])
        await settle(fake, app, send(fake, text_message(CHAT, MEMBER, "still there?")), 30)

        copy = post_photo(fake, OTHER, edited_copy(original))
        await deleted(fake, copy)

        assert huge.file_path not in " ".join(fake.downloads)
        services = app.bot_data.services
        assert services is not None
        events = await services.core.audit.recent(CHAT["id"], 50)
        skipped = {e.message_id: e.detail for e in events if e.event == "media_skipped"}
        logged = [r.getMessage() for r in caplog.records]
        logged = [line for line in logged if line.startswith("media_skipped")]
        expected = {name: BY_NAME[name].refused[0] for name in SENT}
        expected["over_cap"] = "limit is 20971520"
        # The audit says why in the fixed vocabulary; the decoder's own words are logged.
        vocabulary = {f"{reason.value}: {reason.text}" for reason in SkipReason}
        for name, words in expected.items():
            message_id = sent[name]["message_id"]
            assert not fake.is_deleted(CHAT["id"], message_id), name
            assert skipped.get(message_id) in vocabulary, (name, skipped)
            [line] = [line for line in logged if f" message={message_id} " in line]
            assert words in line, (name, line)
        assert skipped[sent["over_cap"]["message_id"]].startswith("too_large: ")
        assert len(logged) == len(expected)
