"""Videos, animations, video notes, video stickers, albums and edits, end to end."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from PIL import Image

from tests.e2e.helpers import (
    ADMIN,
    CHAT,
    MEMBER,
    OTHER,
    RunBot,
    block_video,
    bot_reply,
    deleted,
    post_photo,
    post_video,
    send,
    settle,
)
from tests.fakebot import (
    FakeBotAPI,
    FakeFile,
    command,
    document_message,
    photo_message,
    sticker_message,
    text_message,
    video_message,
)
from tests.media import (
    caption_bar,
    edit_frames,
    embed,
    encode,
    gif,
    letterbox,
    mirror,
    reencode,
    resize,
    textured_video,
    trim,
    vertical_blur,
    video,
    video_note,
    webm,
)


def first_frame_jpeg(data: bytes, at_seconds: float = 2.5) -> bytes:
    """A frame grab of a video, as a screenshot of it posted as a photo would be."""
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= at_seconds:
                return encode(frame.to_image(), quality=80)
    raise AssertionError("video too short")


async def test_blocked_video_catches_trimmed_reencoded_resized_and_embedded_copies(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = video(101, seconds=8)
    # One sender posts four copies: only warn here (escalation has its own tests).
    async with run_bot(moderation_warn_limit="0") as app:
        assert "Blocked as entry #1" in await block_video(fake, post_video(fake, original))
        copies = [
            trim(original, 1.5, 7.0),
            reencode(original, crf=38),
            resize(original, (240, 136)),
            embed(original, video(102, seconds=6), video(103, seconds=6)),
        ]
        for number, copy in enumerate(copies, start=1):
            message = post_video(fake, copy, sender=OTHER)
            await deleted(fake, message)
            await bot_reply(fake, f"Warning {number}")
        unrelated = post_video(fake, video(104, seconds=8), sender=OTHER)
        await settle(fake, app, send(fake, text_message(CHAT, OTHER, ".")))
        assert not fake.is_deleted(CHAT["id"], unrelated["message_id"])

        send(fake, command(CHAT, ADMIN, "/logs 3"))
        logs = await bot_reply(fake, "audit events")
        assert "vpdq distance" in logs and "% of upload" in logs


async def test_animation_gif_document_video_note_and_video_sticker(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    async with run_bot():
        # An MP4 animation blocked; a GIF document of the same footage is caught.
        animation = video(111, seconds=4, fps=10, size=(240, 136))
        await block_video(fake, post_video(fake, animation, kind="animation"))
        gif_file = fake.add_file(gif(111, seconds=4), file_path_suffix=".gif")
        gif_doc = document_message(
            CHAT, OTHER, gif_file, mime_type="image/gif", file_name="funny.gif"
        )
        send(fake, gif_doc)
        await deleted(fake, gif_doc)

        # A round video note blocked; a re-encoded copy is caught.
        note = video_note(112)
        await block_video(fake, post_video(fake, note, kind="video_note"))
        await deleted(fake, post_video(fake, reencode(note, crf=36), kind="video_note"))

        # A WebM video sticker blocked; the same clip sent as a video document is caught.
        sticker_file = fake.add_file(webm(113), file_path_suffix=".webm")
        sticker = sticker_message(CHAT, MEMBER, sticker_file, is_video=True)
        send(fake, sticker)
        await block_video(fake, sticker)
        doc_file = fake.add_file(reencode(webm(113), codec="libx264", fmt="mp4", crf=30))
        doc = document_message(CHAT, OTHER, doc_file, mime_type="video/mp4", file_name="s.mp4")
        send(fake, doc)
        await deleted(fake, doc)


async def test_animated_tgs_sticker_is_judged_by_its_thumbnail(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    from tests.media import photo

    fake.set_admins(CHAT["id"], [ADMIN])
    picture = photo(114, (512, 512))
    async with run_bot():
        await block_video(fake, post_photo(fake, MEMBER, picture))
        tgs = fake.add_file(b"\x1f\x8b not decodable lottie", file_path_suffix=".tgs")
        thumb = fake.add_file(encode(picture.resize((128, 128)), "WEBP"), file_path_suffix=".webp")
        sticker = sticker_message(CHAT, OTHER, tgs, is_animated=True, thumb=thumb)
        send(fake, sticker)
        await deleted(fake, sticker)
        assert tgs.file_path not in " ".join(fake.downloads)


async def test_screenshot_of_a_blocked_video_is_caught_as_a_photo(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = video(121, seconds=6, size=(480, 270))
    async with run_bot():
        await block_video(fake, post_video(fake, original))
        grab = Image.open(io.BytesIO(first_frame_jpeg(original)))
        await deleted(fake, post_photo(fake, OTHER, grab))


async def test_album_item_match_removes_the_whole_album_once(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    from tests.media import edited_copy, photo

    fake.set_admins(CHAT["id"], [ADMIN])
    blocked = photo(131)
    async with run_bot() as app:
        await block_video(fake, post_photo(fake, MEMBER, blocked))
        items = []
        for index, image in enumerate((photo(132), edited_copy(blocked), photo(133))):
            file = fake.add_file(encode(image))
            items.append(
                photo_message(
                    CHAT, OTHER, file, width=image.width, height=image.height, media_group_id="A1"
                )
            )
            if index < 2:
                send(fake, items[-1])
        await fake.wait_for("deleteMessages")
        # An item arriving after the match goes too.
        send(fake, items[2])
        await fake.wait_for(
            "deleteMessages", lambda c: items[2]["message_id"] in c.params["message_ids"]
        )
        for item in items:
            assert fake.is_deleted(CHAT["id"], item["message_id"])
        await bot_reply(fake, "Warning 1")
        await settle(fake, app, send(fake, text_message(CHAT, OTHER, ".")))
        warnings = [m for m in fake.sent_messages if "Warning" in (m.text or "")]
        assert len(warnings) == 1


async def test_album_action_item_removes_only_the_matching_item(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    from tests.media import edited_copy, photo

    fake.set_admins(CHAT["id"], [ADMIN])
    blocked = photo(141)
    async with run_bot(media_album_action="item") as app:
        await block_video(fake, post_photo(fake, MEMBER, blocked))
        items = []
        for image in (photo(142), edited_copy(blocked)):
            file = fake.add_file(encode(image))
            items.append(
                photo_message(
                    CHAT, OTHER, file, width=image.width, height=image.height, media_group_id="B2"
                )
            )
            send(fake, items[-1])
        await deleted(fake, items[1])
        await settle(fake, app, send(fake, text_message(CHAT, OTHER, ".")))
        assert not fake.is_deleted(CHAT["id"], items[0]["message_id"])


async def test_editing_in_a_blocked_video_is_caught(fake: FakeBotAPI, run_bot: RunBot) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = video(151, seconds=6)
    async with run_bot() as app:
        await block_video(fake, post_video(fake, original))
        harmless = post_video(fake, video(152, seconds=6), sender=OTHER)
        await settle(fake, app, send(fake, text_message(CHAT, OTHER, ".")))
        swapped = dict(harmless)
        file = fake.add_file(reencode(original, crf=33))
        swapped["video"] = video_message(CHAT, OTHER, file)["video"]
        swapped["edit_date"] = int(time.time())
        fake.push_update({"edited_message": swapped})
        await deleted(fake, harmless)


async def test_video_over_the_download_cap_is_judged_by_its_thumbnail(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = video(161, seconds=6, size=(480, 270))
    async with run_bot():
        await block_video(fake, post_video(fake, original))
        thumb = fake.add_file(first_frame_jpeg(original))
        big = post_video(fake, b"", sender=OTHER, thumb=thumb, file_size=40 * 1024 * 1024)
        await deleted(fake, big)
        # The size Telegram reports is checked before any request for the file itself.
        asked = {c.str_param("file_id") for c in fake.calls_to("getFile")}
        assert big["video"]["file_id"] not in asked
        assert thumb.file_id in asked
        await bot_reply(fake, "Warning")  # sent once the match is audited
        send(fake, command(CHAT, ADMIN, "/logs 2"))
        logs = await bot_reply(fake, "audit events")
        assert "only the thumbnail was checked" in logs

        # Blocking a video over the cap fingerprints its thumbnail, and says so.
        other_thumb = fake.add_file(first_frame_jpeg(video(162, seconds=6, size=(480, 270))))
        too_big = post_video(fake, b"", thumb=other_thumb, file_size=45 * 1024 * 1024)
        reply = await block_video(fake, too_big)
        assert "only its thumbnail was fingerprinted" in reply
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/logs 1"))
        assert "only the thumbnail was fingerprinted" in await bot_reply(
            fake, "audit events", since=mark
        )


async def test_corrupt_video_is_skipped_and_the_next_update_is_handled(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = video(171, seconds=4)
    async with run_bot() as app:
        await block_video(fake, post_video(fake, original))
        broken = post_video(fake, original[: len(original) // 3] + b"\x00" * 500, sender=OTHER)
        garbage = post_video(fake, b"not a video at all" * 100, sender=OTHER)
        await settle(fake, app, send(fake, text_message(CHAT, OTHER, ".")))
        for message in (broken, garbage):
            assert not fake.is_deleted(CHAT["id"], message["message_id"])
        copy = post_video(fake, reencode(original, crf=34), sender=OTHER)
        await deleted(fake, copy)
        send(fake, command(CHAT, ADMIN, "/logs 5"))
        logs = await bot_reply(fake, "audit events")
        skipped = [line for line in logs.splitlines() if "media_skipped" in line]
        for message in (broken, garbage):
            assert any(f"message {message['message_id']} ·" in line for line in skipped), logs


async def test_blocking_a_dark_video_keeps_it_for_exact_resends(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    from tests.media import encode_video

    fake.set_admins(CHAT["id"], [ADMIN])
    import numpy as np

    dark = encode_video([np.full((180, 320, 3), 3, dtype=np.uint8)] * 60)
    async with run_bot():
        first = post_video(fake, dark)
        reply = await block_video(fake, first)
        assert "Blocked as entry #1" in reply and "too little detail" in reply
        forward = video_message(CHAT, OTHER, FakeFile(**_file_fields(first["video"])))
        send(fake, forward)
        await deleted(fake, forward)


async def test_forward_of_a_known_video_is_deleted_without_a_download(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = video(181, seconds=4)
    async with run_bot():
        first = post_video(fake, original)
        await block_video(fake, first)
        downloads = len(fake.downloads)
        # Telegram keeps the file (and its file_unique_id) when a message is forwarded.
        forward = video_message(CHAT, OTHER, FakeFile(**_file_fields(first["video"])))
        forward["forward_origin"] = {
            "type": "user",
            "date": int(time.time()),
            "sender_user": MEMBER,
        }
        send(fake, forward)
        await deleted(fake, forward)
        assert len(fake.downloads) == downloads


def _file_fields(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "file_id": item["file_id"],
        "file_unique_id": item["file_unique_id"],
        "file_size": item["file_size"],
        "file_path": "",
    }


async def test_local_bot_api_server_lifts_the_cap_and_files_are_read_in_place(
    fake: FakeBotAPI, run_bot: RunBot, tmp_path: Path
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = video(191, seconds=6)
    served = tmp_path / "bot-api-files"
    served.mkdir()
    async with run_bot(telegram_local_mode="true", media_max_file_bytes=str(2 * 1024**3)):
        file = fake.add_file(original, file_path_suffix=".mp4", local_dir=served)
        first = video_message(CHAT, MEMBER, file)
        send(fake, first)
        await block_video(fake, first)
        # Reported as 30 MB: over the cloud Bot API's cap, fine for a local server.
        big = fake.add_file(
            reencode(original, crf=33),
            file_path_suffix=".mp4",
            local_dir=served,
            file_size=30 * 1024 * 1024,
        )
        copy = video_message(CHAT, OTHER, big)
        send(fake, copy)
        await deleted(fake, copy)
        # Nothing was fetched over HTTP: the files were read where the server keeps them.
        assert fake.downloads == []


def _crop(frame: Any) -> Any:
    """An off-centre 75% crop, scaled back to the frame's size."""
    height, width = frame.shape[:2]
    cut = frame[height // 8 : height * 7 // 8, width // 5 : width // 5 + width * 3 // 4]
    return cv2.resize(np.ascontiguousarray(cut), (width, height))


async def test_mirrored_reframed_and_cropped_copies_of_a_blocked_video_are_deleted(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    original = textured_video(121, seconds=8)
    async with run_bot(moderation_warn_limit="0") as app:
        assert "Blocked as entry #1" in await block_video(fake, post_video(fake, original))
        copies = {
            "mirrored": edit_frames(original, mirror),
            "letterboxed and mirrored": edit_frames(original, lambda f: letterbox(mirror(f))),
            "vertical with a blurred fill": edit_frames(original, vertical_blur),
            "captioned": edit_frames(original, caption_bar),
            "cropped": edit_frames(original, _crop),
            "cropped and mirrored": edit_frames(original, lambda f: mirror(_crop(f))),
        }
        for copy in copies.values():
            message = post_video(fake, copy, sender=OTHER)
            await deleted(fake, message)
        for reframe in (letterbox, vertical_blur):
            unrelated = post_video(fake, edit_frames(textured_video(122, seconds=8), reframe))
            await settle(fake, app, send(fake, text_message(CHAT, OTHER, ".")))
            assert not fake.is_deleted(CHAT["id"], unrelated["message_id"])

        send(fake, command(CHAT, ADMIN, "/logs 10"))
        logs = await bot_reply(fake, "audit events")
        assert "local features" in logs and "% of upload" in logs
