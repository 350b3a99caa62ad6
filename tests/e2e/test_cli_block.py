"""``hashguard block`` while the bot runs on SQLite: what the command line blocks (into an
operator bank it makes) is deleted in the groups without a restart, and what another process
removes stops being deleted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PIL import Image

from bot.cli import main
from handlers.context import HashguardApp
from hashdb.sqlite import SQLiteStore
from tests.e2e.helpers import ADMIN, CHAT, RunBot, is_deleted_on_sight
from tests.fakebot import FakeBotAPI
from tests.media import edited_copy, encode, photo

#: How long the bot may take to take in another process's write (it looks every second).
FOLLOW_WAIT = 10.0


async def deleted_soon(fake: FakeBotAPI, app: HashguardApp, image: Image.Image) -> None:
    """Post copies of ``image`` until one is deleted (the bot took the change in)."""
    deadline = asyncio.get_running_loop().time() + FOLLOW_WAIT
    while not await is_deleted_on_sight(fake, app, image):
        assert asyncio.get_running_loop().time() < deadline, "the bot never took the block in"
        await asyncio.sleep(0.2)


async def kept_soon(fake: FakeBotAPI, app: HashguardApp, image: Image.Image) -> None:
    """Post copies of ``image`` until one is left alone (the bot took the removal in)."""
    deadline = asyncio.get_running_loop().time() + FOLLOW_WAIT
    while await is_deleted_on_sight(fake, app, image):
        assert asyncio.get_running_loop().time() < deadline, "the bot never took the removal in"
        await asyncio.sleep(0.2)


async def test_a_running_bot_deletes_copies_of_what_hashguard_block_adds_meanwhile(
    fake: FakeBotAPI,
    run_bot: RunBot,
    db_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    # The command line reads the same config as the bot: here, its environment.
    monkeypatch.setenv("HASHGUARD_STORAGE_DATABASE", str(db_path))
    first, second = photo(941, (800, 600)), photo(942, (800, 600))
    for name, image in (("first.jpg", first), ("second.jpg", second)):
        (tmp_path / name).write_bytes(encode(image))

    def block(name: str) -> int:
        return main(["block", "--bank", "from-cli", "--jobs", "1", str(tmp_path / name)])

    async with run_bot() as app:
        assert not await is_deleted_on_sight(fake, app, edited_copy(first))

        # A new operator bank and its first entry, from another process (a thread here,
        # with its own store on the file, as a second process has).
        assert await asyncio.to_thread(block, "first.jpg") == 0
        entry = int(capsys.readouterr().out.split("\tentry ")[1].split()[0])
        await deleted_soon(fake, app, edited_copy(first))

        # A second entry in the bank the bot now knows.
        assert await asyncio.to_thread(block, "second.jpg") == 0
        await deleted_soon(fake, app, edited_copy(second))

        # Another process removes the first entry: its copies are left alone again.
        other = SQLiteStore(db_path)
        await other.open()
        try:
            bank = await other.bank_by_name("from-cli")
            assert bank is not None
            assert await other.remove_entries(bank.id, [entry], removed_by=None, at=1.0)
        finally:
            await other.close()
        await kept_soon(fake, app, edited_copy(first))
        assert await is_deleted_on_sight(fake, app, edited_copy(second))
