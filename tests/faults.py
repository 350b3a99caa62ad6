"""Real storage faults for tests: a database locked by another process, a read-only file
or folder, a database that cannot grow.

Read-only is file permissions; root writes through those, so as root the immutable
attribute (``chattr +i``) is used, which stops root too. Where neither works the test is
skipped and says why, rather than pass without the fault.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from contextlib import ExitStack
from pathlib import Path

import pytest

from hashdb.sqlite import SQLiteStore


class LockHolder:
    """Another process's connection, holding the database's write lock until released."""

    def __init__(self, path: Path) -> None:
        # check_same_thread=False: a test may release it from a timer thread.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("BEGIN EXCLUSIVE")
        self._db.execute("INSERT INTO audit (chat_id, at, event) VALUES (1, 1.0, 'other')")
        self._released = False

    def release(self, commit: bool = False) -> None:
        """Let go of the lock, keeping this connection's one audit row if ``commit``."""
        if self._released:
            return
        self._released = True
        self._db.execute("COMMIT" if commit else "ROLLBACK")
        self._db.close()


def make_read_only(path: Path, undo: ExitStack) -> None:
    """Make a file or folder read-only for this process until ``undo`` closes, or skip the
    test when that cannot be done here."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        undo.callback(path.chmod, mode)
    else:
        chattr = shutil.which("chattr")
        if chattr is None:
            pytest.skip("running as root, where chmod does not stop writes, without chattr")
        done = subprocess.run([chattr, "+i", str(path)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(
                f"running as root, where chmod does not stop writes, and chattr +i {path} "
                f"failed: {done.stderr.strip()}"
            )
        undo.callback(subprocess.run, [chattr, "-i", str(path)], check=True)
    probe = path / ".write-probe" if path.is_dir() else path
    try:
        with open(probe, "ab"):
            pass
    except OSError:
        return
    if probe != path:
        probe.unlink()
    pytest.skip(f"{path} is still writable for this process after making it read-only")


async def limit_pages(store: SQLiteStore, spare: int | None) -> None:
    """Let the database grow by ``spare`` more pages only (None lifts the limit): writes
    that need more fail with ``SQLITE_FULL``, as on a full disk.

    ``max_page_count`` is a setting of one connection, so it goes on the store's own."""
    db = store._db
    assert db is not None, "the store is open"
    if spare is None:
        await db.execute("PRAGMA max_page_count = 4294967294")
        return
    async with db.execute("PRAGMA page_count") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    await db.execute(f"PRAGMA max_page_count = {row[0] + spare}")
