"""What the SQLite change feed costs, and how soon a running bot sees another process's block.

Three figures, on a fresh SQLite file in a temp folder:

- an idle look: one ``watch`` poll when nobody else wrote (``PRAGMA data_version`` only);
- a write's extra cost: ``add_entry`` with its ``changes`` row against the same call with
  the row left out (the store's ``_record_change`` replaced by a no-op), alternating rounds;
- follow latency: from a second store's ``add_entry`` returning until the first store's
  ``watch`` hands the change over (polling every ``_WATCH_POLL_S``, 1 s by default).

    python bench/change_feed.py [--writes 400] [--follows 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hashdb.fingerprint import Fingerprint
from hashdb.signals import PDQ, PHASH
from hashdb.sqlite import SQLiteStore
from hashdb.sqlite import base as sqlite_store
from hashdb.store import Change, NewEntry

CHAT = -1001


def _entry(n: int) -> NewEntry:
    return NewEntry(
        chat_id=CHAT,
        fingerprints=(Fingerprint(PDQ.name, 2**200 + n, 90), Fingerprint(PHASH.name, n + 1, None)),
        added_by=1,
    )


async def _idle_look(store: SQLiteStore, rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        change, _ = await store._changes_since_seen()
        assert change is None
    return (time.perf_counter() - started) / rounds


async def _write_cost(store: SQLiteStore, writes: int) -> tuple[float, float]:
    """Median seconds per add_entry with the change row and without, alternating rounds of
    50 writes so both see the same file growth and disk state."""

    async def skip(*_: Any, **__: Any) -> None:
        return None

    with_row: list[float] = []
    without_row: list[float] = []
    record = store._record_change
    n = 0
    for round_no in range(writes // 50):
        plain = round_no % 2 == 1
        if plain:
            store._record_change = skip  # type: ignore[method-assign]
        started = time.perf_counter()
        for _ in range(50):
            await store.add_entry(_entry(n), at=1.0)
            n += 1
        (without_row if plain else with_row).append((time.perf_counter() - started) / 50)
        store._record_change = record  # type: ignore[method-assign]
    return statistics.median(with_row), statistics.median(without_row)


async def _follow(path: Path, follows: int) -> list[float]:
    bot, cli = SQLiteStore(path), SQLiteStore(path)
    await bot.open()
    await cli.open()
    seen: asyncio.Queue[tuple[float, Change]] = asyncio.Queue()

    async def on_change(change: Change) -> None:
        await seen.put((time.perf_counter(), change))

    watching = asyncio.create_task(bot.watch(on_change))
    latencies: list[float] = []
    try:
        for n in range(follows):
            # Start each write at a random point of the poll cycle, as a real block would.
            await asyncio.sleep(0.37 * (n % 3))
            entry = await cli.add_entry(_entry(10**6 + n), at=1.0)
            written = time.perf_counter()
            while True:
                at, change = await asyncio.wait_for(seen.get(), 10)
                if entry.id in change.entries or change.resync:
                    latencies.append(at - written)
                    break
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        await cli.close()
        await bot.close()
    return latencies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=400)
    parser.add_argument("--follows", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.sqlite3"
        store = SQLiteStore(path)
        await store.open()
        try:
            idle = await _idle_look(store, 2000)
            with_row, without_row = await _write_cost(store, args.writes)
        finally:
            await store.close()
        latencies = await _follow(path, args.follows)
    print(f"idle look (PRAGMA data_version): {idle * 1e6:.0f} µs per poll, one poll per "
          f"{sqlite_store._WATCH_POLL_S:g} s")  # fmt: skip
    print(
        f"add_entry: {with_row * 1e3:.3f} ms with its changes row, "
        f"{without_row * 1e3:.3f} ms without (+{(with_row - without_row) * 1e3:.3f} ms)"
    )
    print(
        f"another store's add_entry to this store's watch: p50 "
        f"{statistics.median(latencies) * 1e3:.0f} ms, max {max(latencies) * 1e3:.0f} ms "
        f"over {len(latencies)}"
    )
    print(
        json.dumps(
            {
                "idle_look_us": round(idle * 1e6, 1),
                "add_entry_ms": round(with_row * 1e3, 3),
                "add_entry_without_row_ms": round(without_row * 1e3, 3),
                "follow_p50_ms": round(statistics.median(latencies) * 1e3),
                "follow_max_ms": round(max(latencies) * 1e3),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
