"""Nobody can stall the bot: a file is fetched and hashed once, each group's own rules decide,
chats take turns for hashing, and a repeated report costs nothing.

The fake server counts downloads per file and can hold one file's downloads (a slow file)
without slowing any other.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from handlers.context import HashguardApp
from hashdb.lists import ListItem, text_lines
from hashdb.photo import hash_photo
from tests.e2e.helpers import (
    ADMIN,
    MEMBER,
    OTHER,
    SUBMITTER,
    RunBot,
    accept,
    bot_reply,
    case_texts,
    gone,
    post_file,
    send,
    set_in,
    settle,
    texts_to,
)
from tests.fakebot import (
    FakeBotAPI,
    command,
    group,
    private_chat,
    user,
    video_message,
)
from tests.media import edited_copy, encode, photo, video

LOOSE = group(-1001000000000101, "Loose")
STRICT = group(-1001000000000102, "Strict")
REPORTER = user(6101, "Rita")


def list_file(tmp_path: Path, *images: Any) -> str:
    """An operator list file with the photos' hashes (no local features: hashes only)."""
    path = tmp_path / "operator.txt"
    items = [ListItem(hash_photo(encode(image)).stored) for image in images]
    path.write_text("\n".join(text_lines(items)) + "\n")
    return str(path)


async def audited(app: HashguardApp, chat: dict[str, Any], event: str) -> list[str]:
    assert app.bot_data.services is not None
    rows = await app.bot_data.services.core.audit.recent(chat["id"], 500)
    return [row.detail for row in rows if row.event == event]


async def test_a_loose_groups_match_does_not_delete_the_file_in_a_strict_group(
    fake: FakeBotAPI, run_bot: RunBot, tmp_path: Path
) -> None:
    listed = photo(1501)
    copy = fake.add_file(encode(edited_copy(listed)))
    fake.set_admins(STRICT["id"], [ADMIN])
    async with run_bot(banks_files=list_file(tmp_path, listed)) as app:
        await set_in(fake, STRICT, "match_threshold 2")
        loose_message, _ = post_file(fake, LOOSE, copy)
        await gone(fake, LOOSE["id"], loose_message)
        # The same Telegram file (a forward keeps its file_unique_id) in the strict group:
        # its own threshold decides, and the near-copy is too far for it.
        strict_message, update_id = post_file(fake, STRICT, copy)
        await settle(fake, app, update_id)
        assert not fake.is_deleted(STRICT["id"], strict_message["message_id"])
        assert await audited(app, STRICT, "match_deleted") == []
        # Fetched once all the same: the fingerprints came from the cache.
        assert fake.downloads_of(copy) == 1


async def test_a_new_block_catches_a_file_seen_before_it_without_downloading_again(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    original = photo(1502)
    copy = fake.add_file(encode(edited_copy(original)))
    fake.set_admins(LOOSE["id"], [ADMIN])
    async with run_bot() as app:
        first, update_id = post_file(fake, LOOSE, copy)
        await settle(fake, app, update_id)
        assert not fake.is_deleted(LOOSE["id"], first["message_id"])
        send(
            fake,
            command(LOOSE, ADMIN, f"/addhash pdq {hash_photo(encode(original)).stored[0].hex}"),
        )
        await bot_reply(fake, "#1")
        again, _ = post_file(fake, LOOSE, copy, sender=OTHER)
        await gone(fake, LOOSE["id"], again)
        assert fake.downloads_of(copy) == 1


async def test_one_file_posted_in_many_groups_at_once_is_downloaded_and_hashed_once(
    fake: FakeBotAPI, run_bot: RunBot, tmp_path: Path
) -> None:
    listed = photo(1503)
    forwarded = fake.add_file(encode(edited_copy(listed)))
    chats = [group(-1001000000000200 - n, f"Group {n}") for n in range(8)]
    fake.hold_download(forwarded)
    async with run_bot(banks_files=list_file(tmp_path, listed)) as app:
        messages = [post_file(fake, chat, forwarded)[0] for chat in chats]
        last = send(fake, command(LOOSE, MEMBER, "/help"))
        await fake.wait_until_consumed(last)
        # Give a second download the chance to start (it would with no single flight).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        while fake.downloads_of(forwarded) < 2 and loop.time() < deadline:
            await asyncio.sleep(0.05)
        fake.release_download(forwarded)
        for chat, message in zip(chats, messages, strict=True):
            await gone(fake, chat["id"], message)
        await settle(fake, app, last)
        assert fake.downloads_of(forwarded) == 1
        assert len(fake.calls_to("getFile")) == 1


async def test_a_file_that_cannot_be_hashed_is_tried_once_and_skipped_in_every_group(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    # An MP4 cut short: its index (at the end) is missing, so no decoder can read it.
    corrupt = fake.add_file(video(1508, seconds=2, size=(128, 72))[:3000], file_path_suffix=".mp4")
    async with run_bot() as app:
        for chat in (LOOSE, STRICT):
            update_id = send(fake, video_message(chat, MEMBER, corrupt))
            await settle(fake, app, update_id)
            [skipped] = await audited(app, chat, "media_skipped")
            assert skipped.startswith("undecodable: ")
        # The second group's copy (a forward) was answered by the first one's failure.
        assert fake.downloads_of(corrupt) == 1


async def test_a_chat_over_its_queue_limit_is_audited_while_another_chats_upload_is_deleted(
    fake: FakeBotAPI, run_bot: RunBot, tmp_path: Path
) -> None:
    listed = photo(1504)
    data = encode(photo(1505))
    # More slow uploads in one group than python-telegram-bot has update slots (64).
    slow = [fake.add_file(data) for _ in range(70)]
    for file in slow:
        fake.hold_download(file)
    async with run_bot(banks_files=list_file(tmp_path, listed), media_queue_per_chat="66") as app:
        for file in slow:
            post_file(fake, LOOSE, file)
        # Meanwhile, in another group: a re-upload of a listed photo, deleted at once.
        reupload, _ = post_file(fake, STRICT, fake.add_file(encode(edited_copy(listed))))
        await gone(fake, STRICT["id"], reupload)
        skipped = await audited(app, LOOSE, "media_skipped")
        assert len(skipped) == 70 - 66
        assert all(detail.startswith("queue_full: ") for detail in skipped)
        for file in slow:
            fake.release_download(file)
        last = send(fake, command(LOOSE, MEMBER, "/help"))
        await settle(fake, app, last, timeout=60)
        assert len(await audited(app, LOOSE, "media_skipped")) == 70 - 66


async def test_a_repeated_report_is_answered_without_download_and_counts_toward_the_limit(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    reported = fake.add_file(encode(photo(1506)))
    other = fake.add_file(encode(photo(1507)))
    # No cache: only the repeat check can spare the second download.
    async with run_bot(
        moderation_report_rate_per_hour="2", media_fingerprint_cache_size="0"
    ) as app:
        target, update_id = post_file(fake, LOOSE, reported, sender=OTHER)
        second, _ = post_file(fake, LOOSE, other, sender=OTHER)
        await settle(fake, app, update_id)
        send(fake, command(LOOSE, REPORTER, "/report", reply_to=target))
        await fake.wait_for("sendMessage", lambda c: "Report #1" in str(c.params))
        downloads = fake.downloads_of(reported)
        update_id = send(fake, command(LOOSE, REPORTER, "/report again", reply_to=target))
        await settle(fake, app, update_id)
        assert fake.downloads_of(reported) == downloads
        # Two reports this hour, the repeat included: a third message is refused.
        send(fake, command(LOOSE, REPORTER, "/report", reply_to=second))
        await bot_reply(fake, "many reports")
        assert app.bot_data.services is not None
        store = app.bot_data.services.core.store
        assert not await store.has_reported(LOOSE["id"], second["message_id"], REPORTER["id"])


async def test_a_burst_of_self_submissions_waits_its_turn_while_a_groups_reupload_is_deleted(
    fake: FakeBotAPI, run_bot: RunBot, tmp_path: Path
) -> None:
    listed = photo(1508)
    data = encode(photo(1509))
    # More slow private submissions than python-telegram-bot has update slots (64).
    own = [fake.add_file(data) for _ in range(70)]
    for file in own:
        fake.hold_download(file)
    async with run_bot(
        banks_files=list_file(tmp_path, listed),
        moderation_actions_per_minute="0",
        self_submission_per_day="0",
    ) as app:
        await accept(fake, SUBMITTER)
        mark = time.monotonic()
        for file in own:
            post_file(fake, private_chat(SUBMITTER), file, sender=SUBMITTER)
        # While every one of them is still held: a re-upload in a group is deleted.
        reupload, _ = post_file(fake, STRICT, fake.add_file(encode(edited_copy(listed))))
        await gone(fake, STRICT["id"], reupload)
        assert not case_texts(fake, since=mark)
        # Past the private chat's queue (media.queue_per_chat, 20) the bot says it is busy
        # and keeps nothing.
        busy = [text for text in texts_to(fake, SUBMITTER, mark) if "busy" in text]
        assert len(busy) == 70 - 20
        for file in own:
            fake.release_download(file)
        last = send(fake, command(STRICT, MEMBER, "/help"))
        await settle(fake, app, last, timeout=60)
        assert len(case_texts(fake, since=mark)) == 20
        assert sum(fake.downloads_of(file) for file in own) == 20
        assert app.bot_data.services is not None
        assert len(await app.bot_data.services.core.selfsubmit.user_cases(SUBMITTER["id"])) == 20
