"""The bot token never reaches users, the audit trail or the logs.

A local Bot API server keeps files under a directory named after the token
(``/var/lib/telegram-bot-api/<TOKEN>/videos/file_3.mp4``), and a decoder's error quotes the
path it failed on. Users and the audit only ever see a reason from a fixed vocabulary; the
decoder's words go to the operational logs with the token cut out.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from hashdb.fingerprint import SkipReason
from tests.e2e.helpers import ADMIN, CHAT, MEMBER, OTHER, RunBot, accept, bot_reply, send, settle
from tests.fakebot import FakeBotAPI, command, private_chat, text_message, video_message

LOG_CHAT = -1007000000002


async def test_a_corrupt_file_under_the_token_directory_leaks_it_nowhere(
    fake: FakeBotAPI, run_bot: RunBot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token = fake.token
    served = tmp_path / "telegram-bot-api" / token / "videos"
    served.mkdir(parents=True)

    def corrupt_video(chat: dict[str, Any], sender: dict[str, Any]) -> dict[str, Any]:
        file = fake.add_file(b"not a video at all" * 100, file_path_suffix=".mp4", local_dir=served)
        assert token in file.file_path
        message = video_message(chat, sender, file)
        send(fake, message)
        return message

    fake.set_admins(CHAT["id"], [ADMIN])
    # The production level: INFO, with httpx's request lines (URLs hold the token by
    # design) silenced as ``setup_logging`` does.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.WARNING, logger="httpx")
    async with run_bot(telegram_local_mode="true", moderation_log_chat=str(LOG_CHAT)) as app:
        # Privately, as a self-submission.
        await accept(fake, MEMBER)
        mark = time.monotonic()
        corrupt_video(private_chat(MEMBER), MEMBER)
        said = await bot_reply(fake, "nothing was kept", since=mark)
        assert SkipReason.UNDECODABLE.text in said

        # In a group: a plain upload, then an admin's /block of it.
        uploaded = corrupt_video(CHAT, OTHER)
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/block", reply_to=uploaded))
        said = await bot_reply(fake, "nothing was blocked", since=mark)
        assert SkipReason.UNDECODABLE.text in said
        # And as an addition to a shared bank.
        send(fake, command(CHAT, ADMIN, "/bank create leak-check"))
        await bot_reply(fake, "created")
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/bank add leak-check", reply_to=uploaded))
        await bot_reply(fake, "nothing was added", since=mark)

        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/logs 20"))
        logs = await bot_reply(fake, "audit events", since=mark)
        assert "media_skipped" in logs
        await fake.wait_for(
            "sendMessage",
            lambda c: c.int_param("chat_id") == LOG_CHAT and "media_skipped" in str(c.params),
        )
        await settle(fake, app, send(fake, text_message(CHAT, OTHER, "done")))

        services = app.bot_data.services
        assert services is not None
        events = [
            event
            for chat_id in (CHAT["id"], MEMBER["id"], 0)
            for event in await services.core.store.audit_since(chat_id)
        ]
    assert [e.detail for e in events if e.event == "media_skipped"] == [
        f"undecodable: {SkipReason.UNDECODABLE.text}"
    ]
    leaked = [c.describe() for c in fake.calls if token in repr(c.params)]
    assert not leaked
    assert not [e for e in events if token in repr(e)]
    lines = [record.getMessage() for record in caplog.records]
    assert not [line for line in lines if token in line]
    assert not [r for r in caplog.records if r.exc_text and token in r.exc_text]
    # The decoder's words did reach the operators, the token cut out.
    assert any("Invalid data" in line and "/<token>/videos/" in line for line in lines)
