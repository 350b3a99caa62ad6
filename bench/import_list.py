"""Importing and exporting a large PDQ hash list, and loading the bot with it.

Writes N random PDQ lines (the python-threatexchange text format) to a temporary file, then
times, on a fresh SQLite database:

- parsing the file (``hashdb.lists.read_list``);
- importing it into a bank the way ``hashguard import`` does (``import_items``);
- importing it again (every item is already there: the duplicate check);
- exporting the bank as text;
- the bot's start-up load of the whole database into its index (``Core.load``).

    python bench/import_list.py --n 1000000

Ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import load_config
from bot.core import Core
from hashdb.fingerprint import Fingerprint, MediaFingerprints
from hashdb.lists import ListItem, read_list, write_text
from hashdb.sqlite import SQLiteStore


def _write_list(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w") as out:
        for _ in range(n):
            out.write(f"pdq {rng.getrandbits(256):064x}\n")


async def _run(n: int, folder: Path) -> dict[str, float]:
    listing = folder / "list.txt"
    _write_list(listing, n, seed=1)
    config = load_config(None, environ={}, require_token=False)
    figures: dict[str, float] = {"n": n, "file_mb": round(listing.stat().st_size / 1e6, 1)}

    started = time.perf_counter()
    parsed = read_list(listing)
    figures["parse_s"] = round(time.perf_counter() - started, 2)
    assert len(parsed.items) == n and not parsed.problems
    first_value = parsed.items[0].fingerprints[0].value

    store = SQLiteStore(folder / "bench.sqlite3")
    await store.open()
    try:
        service = Core.build(store, config.matching, config.video, config.moderation)
        bank = await store.group_bank(-1, at=time.time())
        started = time.perf_counter()
        result = await service.lists.import_items(
            bank, list(parsed.items), actor=None, chat_id=0, origin="list.txt"
        )
        figures["import_s"] = round(time.perf_counter() - started, 2)
        assert result.added == n
        started = time.perf_counter()
        again = await service.lists.import_items(
            bank, list(parsed.items), actor=None, chat_id=0, origin="list.txt"
        )
        figures["reimport_s"] = round(time.perf_counter() - started, 2)
        assert again.added == 0
        started = time.perf_counter()
        entries = await store.bank_entries(bank.id)
        out = io.StringIO()
        write_text([ListItem(e.fingerprints) for e in entries], out)
        figures["export_s"] = round(time.perf_counter() - started, 2)
        del entries, out, parsed
        await service.close()

    finally:
        await store.close()

    # Start-up as the bot does it: open the database, load the index, then match.
    started = time.perf_counter()
    store = SQLiteStore(folder / "bench.sqlite3")
    await store.open()
    try:
        loader = Core.build(store, config.matching, config.video, config.moderation)
        loaded = await loader.load()
        figures["startup_load_s"] = round(time.perf_counter() - started, 2)
        assert loaded == n
        probe = MediaFingerprints(
            "photo", (), (Fingerprint("pdq", first_value ^ 0b111, 100),), 512, 512
        )
        match = await loader.matching.find_match(-1, probe)
        figures["ready_to_match_s"] = round(time.perf_counter() - started, 2)
        assert match is not None and match.distance == 3
        await loader.close()
    finally:
        await store.close()
    figures["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="PDQ hashes in the list")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        figures = asyncio.run(_run(args.n, Path(folder)))
    for key, value in figures.items():
        print(f"{key:>16}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
