"""A group whose bank holds a hash-only list (no local features) deletes re-framed copies:
the photo padded to a square, or one cell of a collage, found by hashing the picture's own
rectangle inside the upload; a collage of unrelated photos stays. With
``region_probes = "hash_only"``, a file first hashed before the group held hash-only
entries is hashed again for its regions. By default the same holds for photos blocked by
reply, which local features alone do not find as one cell of a collage."""

from __future__ import annotations

import time

from PIL import Image

from hashdb.lists import text_lines
from tests.e2e.helpers import (
    ADMIN,
    CHAT,
    MEMBER,
    OTHER,
    RunBot,
    block_by_reply,
    bot_reply,
    deleted_from_chat,
    is_kept,
    list_file,
    list_item,
    post,
    post_file,
    post_photo,
    send,
    settle,
)
from tests.fakebot import FakeBotAPI, command, text_message
from tests.media import encode, photo


def _padded(image: Image.Image) -> Image.Image:
    side = max(image.size)
    canvas = Image.new("RGB", (side, side), (0, 0, 0))
    canvas.paste(image, (0, (side - image.height) // 2))
    return canvas


def _collage(pictures: list[Image.Image], cell: int = 400) -> Image.Image:
    canvas = Image.new("RGB", (2 * cell, 2 * cell))
    for number, picture in enumerate(pictures):
        row, column = divmod(number, 2)
        canvas.paste(picture.resize((cell, cell)), (column * cell, row * cell))
    return canvas


async def test_a_hash_only_list_deletes_padded_and_collaged_copies(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    listed = photo(741)
    others = [photo(742), photo(743), photo(744), photo(745)]
    padded_file = fake.add_file(encode(_padded(listed)))
    async with run_bot(matching_region_probes="hash_only") as app:
        # Seen before the group held any hash-only entry: hashed without regions, kept.
        before, update_id = post_file(fake, CHAT, padded_file, sender=OTHER)
        assert await is_kept(fake, app, before, update_id)

        send(fake, list_file(fake, CHAT, ADMIN, "\n".join(text_lines([list_item(listed)])),
                             caption="/import"))  # fmt: skip
        assert "Imported 1 entries" in await bot_reply(fake, "Imported")

        # The same file again: its cached hashes have no regions, so it is hashed again.
        padded, _ = post_file(fake, CHAT, padded_file, sender=OTHER)
        await deleted_from_chat(fake, padded)
        assert fake.downloads_of(padded_file) == 2
        collage, _ = post(fake, CHAT, OTHER, _collage([others[0], others[1], listed, others[2]]))
        await deleted_from_chat(fake, collage)
        unrelated, update_id = post(fake, CHAT, OTHER, _collage(others))
        assert await is_kept(fake, app, unrelated, update_id)

        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/logs 4"))
        logs = await bot_reply(fake, "audit events", since=mark)
        assert "picture found inside the upload (cell)" in logs


async def test_a_collage_holding_a_photo_blocked_by_reply_is_deleted(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    blocked = photo(751, (800, 600))
    others = [photo(752 + n, (800, 600)) for n in range(8)]
    async with run_bot() as app:
        first = post_photo(fake, MEMBER, blocked)
        await settle(fake, app, send(fake, text_message(CHAT, MEMBER, "look")))
        await block_by_reply(fake, first)

        cells = [others[0], others[1], others[2], blocked, *others[3:8]]
        grid = Image.new("RGB", (900, 900))
        for number, picture in enumerate(cells):
            row, column = divmod(number, 3)
            grid.paste(picture.resize((300, 300)), (column * 300, row * 300))
        collage, _ = post(fake, CHAT, OTHER, grid)
        await deleted_from_chat(fake, collage)
        unrelated, update_id = post(fake, CHAT, OTHER, _collage(others[:4]))
        assert await is_kept(fake, app, unrelated, update_id)
