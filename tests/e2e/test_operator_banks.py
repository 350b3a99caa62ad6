"""Operator banks end to end: hash list files named in the config are in force from the
first update, follow their files as they change, and survive a file going missing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from PIL import Image

from handlers.context import HashguardApp
from hashdb.lists import ListItem, text_lines
from hashdb.photo import hash_photo
from hashdb.store import Bank
from tests.e2e.helpers import (
    ADMIN,
    CHAT,
    DEFAULT_GROUP,
    MEMBER,
    RunBot,
    bot_reply,
    gone,
    is_deleted_on_sight,
    operator_bank,
    pdq_line,
    post,
    posted_and_kept,
    send,
    set_in,
    settle,
)
from tests.fakebot import FakeBotAPI, command
from tests.media import edited_copy, encode, photo

#: How long a test waits for the watcher (checking every second) to pick up a change.
RELOAD_WAIT = 5.0


def hash_output(image: Image.Image, name: str) -> list[str]:
    """The lines ``hashguard hash`` prints for a photo: every hash, labelled with the file."""
    item = ListItem(hash_photo(encode(image)).stored, label=name)
    return list(text_lines([item]))


async def active_entries(app: HashguardApp, bank: Bank) -> int:
    assert app.bot_data.services is not None
    return await app.bot_data.services.core.store.count_active_entries(bank.id)


def unreadable_logged(caplog: pytest.LogCaptureFixture, path: Path) -> int:
    return sum(
        1
        for r in caplog.records
        if r.levelno == logging.ERROR
        and "operator_list_unreadable" in r.getMessage()
        and str(path) in r.getMessage()
    )


async def test_listed_photo_is_deleted_unless_the_group_opts_out(
    fake: FakeBotAPI, run_bot: RunBot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    fake.set_admins(DEFAULT_GROUP["id"], [ADMIN])
    listed = photo(901)
    path = tmp_path / "Pledge-List.txt"
    path.write_text(f"# from the operator\n{pdq_line(listed)}\npdq not-a-hash\n")
    caplog.set_level(logging.WARNING, logger="bot.operator_banks")
    async with run_bot(banks_files=str(path)) as app:
        # Loaded before the first update; the malformed line is skipped, not fatal.
        bank = await operator_bank(app, "operator:pledge-list")
        assert await active_entries(app, bank) == 1
        assert any(
            "operator_list_line" in r.getMessage() and "line=3" in r.getMessage()
            for r in caplog.records
        )

        copy, update_id = post(fake, CHAT, MEMBER, edited_copy(listed))
        await gone(fake, CHAT["id"], copy)
        # The audit row is written after the deletion: let the handler finish first.
        await settle(fake, app, update_id)
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, "/logs 5"))
        logs = await bot_reply(fake, "audit events", since=mark)
        assert "bank operator:pledge-list" in logs

        await set_in(fake, DEFAULT_GROUP, "use_operator_banks off")
        await posted_and_kept(fake, app, DEFAULT_GROUP, edited_copy(listed))


async def test_changed_file_is_reloaded_removing_and_adding_hashes(
    fake: FakeBotAPI, run_bot: RunBot, tmp_path: Path
) -> None:
    dropped, added = photo(911), photo(912)
    path = tmp_path / "ncii.txt"
    path.write_text(pdq_line(dropped) + "\n")
    async with run_bot(banks_files=str(path), banks_reload_seconds="1") as app:
        copy, _ = post(fake, CHAT, MEMBER, edited_copy(dropped))
        await gone(fake, CHAT["id"], copy)
        assert not await is_deleted_on_sight(fake, app, edited_copy(added))

        # ``hashguard hash`` output pasted into the list, with a comment saying why.
        path.write_text("\n".join(["# replaced", *hash_output(added, "b.jpg"), ""]))
        deadline = asyncio.get_running_loop().time() + RELOAD_WAIT
        while not await is_deleted_on_sight(fake, app, edited_copy(added)):
            assert asyncio.get_running_loop().time() < deadline, "the list was not reloaded"
            await asyncio.sleep(0.1)

        # Removals are applied before additions, so the dropped photo is already free.
        assert not await is_deleted_on_sight(fake, app, edited_copy(dropped))
        bank = await operator_bank(app, "operator:ncii")
        assert await active_entries(app, bank) == 1


async def test_missing_file_is_logged_and_a_loaded_bank_outlives_its_file(
    fake: FakeBotAPI, run_bot: RunBot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    listed = photo(921)
    missing = tmp_path / "not-there-yet.txt"
    present = tmp_path / "present.txt"
    present.write_text(pdq_line(listed) + "\n")
    files = f"{missing},{present}"
    async with run_bot(banks_files=files, banks_reload_seconds="1") as app:
        assert unreadable_logged(caplog, missing) >= 1
        copy, _ = post(fake, CHAT, MEMBER, edited_copy(listed))
        await gone(fake, CHAT["id"], copy)

        # A sync job moving the file away must not empty the bank.
        present.unlink()
        deadline = asyncio.get_running_loop().time() + RELOAD_WAIT
        while not unreadable_logged(caplog, present):
            assert asyncio.get_running_loop().time() < deadline, "the watcher never looked"
            await asyncio.sleep(0.1)
        bank = await operator_bank(app, "operator:present")
        assert await active_entries(app, bank) == 1
        assert await is_deleted_on_sight(fake, app, edited_copy(listed))

    # Nor a restart without it.
    async with run_bot(banks_files=files) as app:
        assert await is_deleted_on_sight(fake, app, edited_copy(listed))


async def test_a_garbled_file_adds_its_good_lines_and_removes_nothing(
    fake: FakeBotAPI, run_bot: RunBot, tmp_path: Path
) -> None:
    first, second = photo(921), photo(922)
    path = tmp_path / "feed.txt"
    path.write_text(pdq_line(first) + "\n")
    async with run_bot(banks_files=str(path), banks_reload_seconds="1") as app:
        bank = await operator_bank(app, "operator:feed")
        assert await active_entries(app, bank) == 1
        # An error page saved over the list, with one good line in it: the good line is
        # added, and the first photo's entry is not removed on the strength of a bad file.
        path.write_text(f"<html>\n<body>502 Bad Gateway</body>\n{pdq_line(second)}\n</html>\n")
        deadline = asyncio.get_running_loop().time() + RELOAD_WAIT
        while await active_entries(app, bank) < 2:
            assert asyncio.get_running_loop().time() < deadline, "the list was not reloaded"
            await asyncio.sleep(0.1)
        assert await is_deleted_on_sight(fake, app, edited_copy(first))
        # A clean file is applied in full again.
        path.write_text(pdq_line(second) + "\n")
        deadline = asyncio.get_running_loop().time() + RELOAD_WAIT
        while await active_entries(app, bank) != 1:
            assert asyncio.get_running_loop().time() < deadline, "the list was not reloaded"
            await asyncio.sleep(0.1)
        assert not await is_deleted_on_sight(fake, app, edited_copy(first))


async def test_a_list_dropped_from_the_config_stops_matching(
    fake: FakeBotAPI, run_bot: RunBot, tmp_path: Path
) -> None:
    listed = photo(931)
    path = tmp_path / "old.txt"
    path.write_text(pdq_line(listed) + "\n")
    async with run_bot(banks_files=str(path)) as app:
        assert await is_deleted_on_sight(fake, app, edited_copy(listed))
    async with run_bot() as app:
        assert not await is_deleted_on_sight(fake, app, edited_copy(listed))
