"""No media bytes and no message text on disk, ever.

The full flow runs (block a photo and a video, their copies deleted, a report reviewed, a
chat message, the logs read) with the working folder and the temp folder pointed at fresh
folders; afterwards every file in them, beside the database and in the system temp folder
written during the run, is searched for the media and the text.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import (
    ADMIN,
    CHAT,
    MEMBER,
    OTHER,
    RunBot,
    block_by_reply,
    block_video,
    bot_reply,
    post_photo,
    post_video,
    send,
    settle,
)
from tests.fakebot import FakeBotAPI, command, text_message
from tests.media import edited_copy, encode, photo, reencode, video

SECRET_TEXT = "the street address is 17 Quiet Lane"


def _files(root: Path, since: float | None = None) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        try:
            if path.is_file() and (since is None or path.stat().st_mtime >= since):
                found.append(path)
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


async def test_a_full_run_leaves_no_media_and_no_message_text_on_disk(
    fake: FakeBotAPI,
    run_bot: RunBot,
    tmp_path: Path,
    db_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = time.time() - 1
    system_temp = Path(tempfile.gettempdir())
    work, temp = tmp_path / "work", tmp_path / "temp"
    work.mkdir()
    temp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    fake.set_admins(CHAT["id"], [ADMIN])

    original = photo(901)
    photo_bytes = encode(original)
    clip = video(902, seconds=3)
    async with run_bot() as app:
        await block_by_reply(fake, post_photo(fake, MEMBER, original))
        copy = post_photo(fake, OTHER, edited_copy(original))
        await fake.wait_deleted(CHAT["id"], copy["message_id"])
        await block_video(fake, post_video(fake, clip))
        again = post_video(fake, reencode(clip), sender=OTHER)
        await fake.wait_deleted(CHAT["id"], again["message_id"], timeout=30)
        chatter = text_message(CHAT, MEMBER, SECRET_TEXT)
        send(fake, chatter)
        reported = post_photo(fake, MEMBER, photo(903))
        send(fake, command(CHAT, OTHER, "/report looks private", reply_to=reported))
        await bot_reply(fake, "Report #1")
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/logs 10"))
        await bot_reply(fake, "audit events", since=mark)
        await settle(fake, app, send(fake, text_message(CHAT, ADMIN, ".")))

    pixels = original.convert("RGB").tobytes()
    row = original.width * 3
    needles = {
        "the photo file": photo_bytes,
        "a slice of the photo's data": photo_bytes[len(photo_bytes) // 2 :][:64],
        "a row of the photo's pixels": pixels[100 * row : 101 * row],
        "a slice of the video file": clip[len(clip) // 2 :][:64],
        "a chat message's text": SECRET_TEXT.encode(),
    }
    files = _files(work) + _files(temp) + _files(db_path.parent) + _files(system_temp, started)
    assert any(p.name == db_path.name for p in files)
    for path in set(files):
        try:
            content = path.read_bytes()
        except OSError:
            continue
        for what, needle in needles.items():
            assert needle not in content, f"{what} was found in {path}"
    # Nothing at all was written to the working or temp folder.
    assert _files(work) == [] and _files(temp) == []
