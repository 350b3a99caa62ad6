"""The bot and the ``hashguard`` command when the database is locked, read-only or full.

Start-up (``hashguard run``) and the offline commands refuse such a database with one line
on stderr and exit status 1. A running bot whose database fails under a command tells the
sender it could not be saved, logs the cause once, and handles the next update normally.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from handlers.context import HashguardApp
from hashdb.fingerprint import Fingerprint
from hashdb.photo import hash_photo
from hashdb.signals import PDQ
from hashdb.sqlite import SQLiteStore
from hashdb.sqlite import base as sqlite_store
from hashdb.store import NewEntry, StoreUnavailableError
from tests.e2e.helpers import ADMIN, CHAT, MEMBER, RunBot, bot_reply, send, settle
from tests.fakebot import FakeBotAPI, command, group, message_update, photo_message
from tests.faults import LockHolder, limit_pages, make_read_only
from tests.media import encode, photo

REPO = Path(__file__).resolve().parents[2]
NEW_GROUP = group(-1005550000222, "Not seen before")


@pytest.fixture
def read_only() -> Iterator[Callable[[Path], None]]:
    with ExitStack() as undo:
        yield lambda path: make_read_only(path, undo)


def _store(app: HashguardApp) -> SQLiteStore:
    services = app.bot_data.services
    assert services is not None
    store = services.core.store
    assert isinstance(store, SQLiteStore)
    return store


async def _made(path: Path) -> None:
    """A database with the current schema, closed."""
    path.parent.mkdir(exist_ok=True)
    store = SQLiteStore(path)
    await store.open()
    await store.close()


def _errors_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- a running bot -----------------------------------------------------------------------


async def test_addhash_on_a_full_disk_tells_the_admin_and_the_bot_goes_on(
    fake: FakeBotAPI, run_bot: RunBot, caplog: pytest.LogCaptureFixture
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    pdq = hash_photo(encode(photo(41))).stored[0]
    async with run_bot() as app:
        store = _store(app)
        await limit_pages(store, spare=0)
        # Fill what room is left in the group's bank, as months of blocking would.
        filled = 0
        with pytest.raises(StoreUnavailableError):
            for n in range(20_000):
                await store.add_entry(
                    NewEntry(CHAT["id"], (Fingerprint(PDQ.name, n + 1, 100),), ADMIN["id"]),
                    at=1.0,
                )
                filled += 1
        caplog.clear()

        mark = time.monotonic()
        update_id = send(fake, command(CHAT, ADMIN, f"/addhash pdq {pdq.hex} from a list"))
        reply = await bot_reply(fake, "could not be saved", since=mark)
        await settle(fake, app, update_id)

        assert reply == (
            "That could not be saved: the bot's disk is full. Please tell the bot's operator."
        )
        [logged] = _errors_logged(caplog)
        assert logged.name == "handlers.errors"
        message = logged.getMessage()
        assert message.startswith(f"storage_failed update={update_id} chat={CHAT['id']} ")
        assert "reason=full cause=database or disk is full error=database " in message
        assert logged.exc_info is None  # the cause is in the line; no traceback per update

        # Room again: the same command works, and the failed one left no entry behind.
        await limit_pages(store, spare=None)
        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, f"/addhash pdq {pdq.hex} from a list"))
        reply = await bot_reply(fake, "Added", since=mark)
        assert f"as entry #{filled + 1}." in reply


async def test_addhash_while_another_process_holds_the_lock_asks_to_try_again(
    fake: FakeBotAPI,
    run_bot: RunBot,
    db_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sqlite_store, "_BUSY_TIMEOUT_MS", 300)
    fake.set_admins(CHAT["id"], [ADMIN])
    pdq = hash_photo(encode(photo(42))).stored[0]
    async with run_bot() as app:
        holder = LockHolder(db_path)
        try:
            # A member's photo in a group the bot has not seen yet: recording the group
            # fails too, and is only logged, not answered.
            image = photo(43)
            file = fake.add_file(encode(image))
            posted = photo_message(NEW_GROUP, MEMBER, file, width=image.width, height=image.height)
            await settle(fake, app, fake.push_update(message_update(posted)))
            mark = time.monotonic()
            update_id = send(fake, command(CHAT, ADMIN, f"/addhash pdq {pdq.hex}"))
            reply = await bot_reply(fake, "could not be saved", since=mark)
            await settle(fake, app, update_id)
        finally:
            holder.release()
        assert reply == (
            "That could not be saved: the bot's database is busy with another program. "
            "Try again in a minute."
        )
        assert not [c for c in fake.calls_to("sendMessage") if c.int_param("chat_id") != CHAT["id"]]
        logged = [r.getMessage() for r in _errors_logged(caplog)]
        assert logged and all("storage_failed" in m and "reason=locked" in m for m in logged)
        assert f"storage_failed update={update_id} " in logged[-1]

        mark = time.monotonic()
        send(fake, command(CHAT, ADMIN, f"/addhash pdq {pdq.hex}"))
        assert "as entry #1." in await bot_reply(fake, "Added", since=mark)


# -- start-up and offline commands -------------------------------------------------------


async def _hashguard(fake: FakeBotAPI, database: Path, *args: str) -> tuple[int, str]:
    """Run ``python -m bot.cli ARGS`` on ``database``; its exit status and stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HASHGUARD_")}
    env.update(
        HASHGUARD_TELEGRAM_TOKEN=fake.token,
        HASHGUARD_TELEGRAM_API_URL=fake.base_url,
        HASHGUARD_TELEGRAM_FILE_URL=fake.base_file_url,
        HASHGUARD_STORAGE_DATABASE=str(database),
        HASHGUARD_MEDIA_WORKERS="1",
        HASHGUARD_LOGGING_LEVEL="WARNING",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        # Its own process group: a bot that did start has hashing workers to stop too.
        start_new_session=True,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def test_run_and_audit_refuse_a_locked_database_in_one_line(
    fake: FakeBotAPI, db_path: Path
) -> None:
    await _made(db_path)
    holder = LockHolder(db_path)
    try:
        # Both wait out the real 5 s busy timeout, side by side.
        results = await asyncio.gather(
            _hashguard(fake, db_path, "run"),
            _hashguard(fake, db_path, "audit", "--chat", str(CHAT["id"])),
        )
    finally:
        holder.release()

    expected = (
        f"hashguard: database error: database {db_path} is locked by another process: cannot "
        "open it (still locked after 5 s); stop the other program using it (another "
        "hashguard, an import, a backup) or try again later\n"
    )
    assert list(results) == [(1, expected), (1, expected)]


async def test_run_and_import_refuse_a_read_only_database_in_one_line(
    fake: FakeBotAPI, tmp_path: Path, read_only: Callable[[Path], None]
) -> None:
    existing = tmp_path / "existing" / "hashguard.sqlite3"
    await _made(existing)
    read_only(existing)
    new = tmp_path / "read-only folder" / "hashguard.sqlite3"
    new.parent.mkdir()
    read_only(new.parent)
    hash_list = tmp_path / "list.txt"
    hash_list.write_text(f"pdq {hash_photo(encode(photo(43))).stored[0].hex} item\n")

    run, imported = await asyncio.gather(
        _hashguard(fake, existing, "run"),
        _hashguard(fake, new, "import", str(hash_list), "--bank", "shared", "--owner", "1"),
    )

    advice = "make the file and its directory writable for the user running hashguard\n"
    assert run == (
        1,
        f"hashguard: database error: database {existing} is read-only (the file is not "
        f"writable): cannot open it; {advice}",
    )
    assert imported == (
        1,
        f"hashguard: database error: database {new} is read-only (its directory {new.parent} "
        "is not writable, and SQLite keeps its -wal and -shm files beside the database): "
        f"cannot open it; {advice}",
    )
    assert not new.exists()
