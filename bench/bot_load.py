"""Bot throughput: a steady stream of photos across many groups, end to end.

Runs the bot as it is deployed (``python -m bot.cli run``: long polling, the hashing process
pool sized to the cores, SQLite) in its own process, against the fake Bot API server of the
tests on loopback, which runs in this process. Photos are offered at a fixed rate across
``--groups`` groups from distinct senders, each as a new file (so each one is downloaded and
hashed; nothing is answered from the file-id cache). Half are re-encoded, resized copies of
photos in an operator bank every group uses, half are unrelated photos. Each group first
gets one photo, untimed, as a bot that has served them for a while already knows them
(``--no-warm-up`` times first contact too).

Measured, all on the fake server's clock:

- latency from the bot receiving an update (the getUpdates answer carrying it) to its
  deleteMessage, for the blocked copies: p50, p99, max;
- updates offered, received by the bot and confirmed, and copies deleted (none may be
  missing) and unrelated photos deleted (must be none);
- how far the bot fell behind: the longest wait from an update being offered to being
  received;
- event-loop stalls: the bot runs with asyncio debug mode (``PYTHONASYNCIODEBUG=1``), which
  logs every callback that holds the loop over 100 ms; the count is reported.

    python bench/bot_load.py                      # 100 photos/s, 500 groups, 60 s
    python bench/bot_load.py --rate 50 --seconds 20 --size 800x600

Ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hashdb.lists import ListItem, write_text  # noqa: E402
from hashdb.photo import hash_photo  # noqa: E402
from tests.fakebot import (  # noqa: E402
    Call,
    FakeBotAPI,
    group,
    message_update,
    photo_message,
    user,
)
from tests.media import edited_copy, encode, photo  # noqa: E402

#: asyncio debug mode's report of a callback that held the event loop too long.
SLOW_CALLBACK = re.compile(r"Executing (.*) took (\d+\.\d+) seconds")


class TimedFakeBotAPI(FakeBotAPI):
    """The fake server, noting when each update first reached the bot."""

    def __init__(self) -> None:
        super().__init__()
        self.received_at: dict[int, float] = {}

    async def _get_updates(self, call: Call) -> list[dict[str, Any]]:
        updates = await super()._get_updates(call)
        now = time.monotonic()
        for update in updates:
            self.received_at.setdefault(update["update_id"], now)
        return updates


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def make_media(pool: int, size: tuple[int, int]) -> tuple[list[bytes], list[bytes], list[Any]]:
    """Blocked originals' fingerprints, copies of them, and unrelated photos (JPEG)."""
    originals = [photo(70_000 + n, size) for n in range(pool)]
    copies = [encode(edited_copy(image)) for image in originals]
    unrelated = [encode(photo(80_000 + n, size)) for n in range(pool)]
    blocked = [hash_photo(encode(image), for_block=True) for image in originals]
    return copies, unrelated, blocked


def write_bank(blocked: list[Any], folder: Path) -> Path:
    """An operator list file of the blocked photos' hashes."""
    bank_file = folder / "blocked.txt"
    with bank_file.open("w") as out:
        write_text([ListItem(fps.stored) for fps in blocked], out)
    return bank_file


@contextlib.asynccontextmanager
async def running_bot(
    fake: FakeBotAPI, database: Path, env: dict[str, str], *, stop_seconds: float = 20
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """The bot as deployed (``python -m bot.cli run``) polling ``fake``, once it polls;
    stopped with SIGTERM (killed after ``stop_seconds``) on the way out. Its stderr goes to
    ``database`` with the suffix ``.log``."""
    environ = {
        **os.environ,
        "HASHGUARD_TELEGRAM_TOKEN": fake.token,
        "HASHGUARD_TELEGRAM_API_URL": fake.base_url,
        "HASHGUARD_TELEGRAM_FILE_URL": fake.base_file_url,
        "HASHGUARD_STORAGE_DATABASE": str(database),
        "HASHGUARD_LOGGING_LEVEL": "WARNING",
        **env,
    }
    log_path = database.with_suffix(".log")
    with log_path.open("w") as log:
        bot = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"], cwd=ROOT, env=environ, stderr=log
        )
    try:
        deadline = time.monotonic() + 60
        while not fake.calls_to("getUpdates"):
            if bot.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the bot did not start:\n{log_path.read_text()}")
            await asyncio.sleep(0.05)
        yield bot
    finally:
        bot.terminate()
        try:
            bot.wait(timeout=stop_seconds)
        except subprocess.TimeoutExpired:
            bot.kill()
            bot.wait()


async def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    width, height = (int(side) for side in args.size.split("x"))
    copies, unrelated, blocked = make_media(args.pool, (width, height))
    bank_file = write_bank(blocked, folder)
    rng = random.Random(args.seed)
    groups = [group(-1001_500_000_000 - n, f"Load {n}") for n in range(args.groups)]
    total = int(args.rate * args.seconds)

    async with TimedFakeBotAPI() as fake:
        env = {"HASHGUARD_BANKS_FILES": str(bank_file), "HASHGUARD_MODERATION_WARN_LIMIT": "0"}
        if args.asyncio_debug:
            env["PYTHONASYNCIODEBUG"] = "1"
        database = folder / "load.sqlite3"
        async with running_bot(fake, database, env) as bot:
            if args.warm_up:
                # A bot serving groups for months knows them: one photo per group first, so
                # the first-contact work (chat record, rights check) is not what is timed.
                for chat in groups:
                    file = fake.add_file(unrelated[0])
                    message = photo_message(chat, user(9), file, width=width, height=height)
                    warm_last = fake.push_update(message_update(message))
                    await asyncio.sleep(1 / args.rate)

                def warmed() -> bool:
                    fetched = len(fake.calls_to("getFile"))
                    return fake.confirmed_offset > warm_last and fetched >= len(groups)

                while not warmed():
                    await asyncio.sleep(0.1)
                await asyncio.sleep(2.0)

            sent: dict[int, tuple[str, int, int]] = {}  # update id -> (kind, chat, message)
            offered_at: dict[int, float] = {}
            started = time.monotonic()
            for n in range(total):
                target = started + n / args.rate
                delay = target - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                kind = "copy" if n % 2 == 0 else "other"
                data = (copies if kind == "copy" else unrelated)[(n // 2) % args.pool]
                chat = groups[rng.randrange(len(groups))]
                sender = user(10_000 + rng.randrange(100_000))
                file = fake.add_file(data)
                message = photo_message(chat, sender, file, width=width, height=height)
                update_id = fake.push_update(message_update(message))
                offered_at[update_id] = time.monotonic()
                sent[update_id] = (kind, chat["id"], message["message_id"])
            offering = time.monotonic() - started

            # Let the bot drain: every update confirmed and every copy deleted, or time out.
            copies_sent = {(c, m) for kind, c, m in sent.values() if kind == "copy"}
            last = max(sent)
            drain_deadline = time.monotonic() + args.drain
            while time.monotonic() < drain_deadline:
                if fake.confirmed_offset > last and copies_sent <= fake.deleted:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # a late, wrong deletion would show up here

        deleted_at: dict[tuple[int, int], float] = {}
        for call in fake.calls_to("deleteMessage"):
            key = (call.int_param("chat_id"), call.int_param("message_id"))
            deleted_at.setdefault(key, call.at)
        latencies, behind = [], []
        missed = wrongly_deleted = 0
        for update_id, (kind, chat_id, message_id) in sent.items():
            received = fake.received_at.get(update_id)
            if received is not None:
                behind.append(received - offered_at[update_id])
            at = deleted_at.get((chat_id, message_id))
            if kind == "copy":
                if at is None or received is None:
                    missed += 1
                else:
                    latencies.append((at - received) * 1000)
            elif at is not None:
                wrongly_deleted += 1

    log_text = database.with_suffix(".log").read_text()
    found = SLOW_CALLBACK.findall(log_text)
    stalls = [float(seconds) for _, seconds in found]
    figures: dict[str, Any] = {
        "bench": "bot_load",
        "rate_target": args.rate,
        "rate_offered": round(total / offering, 1),
        "seconds": args.seconds,
        "groups": args.groups,
        "groups_warmed_up": args.warm_up,
        "photo_size": args.size,
        "cores": os.cpu_count(),
        "updates_offered": total,
        "updates_received": sum(update_id in fake.received_at for update_id in sent),
        "updates_confirmed": min(total, max(0, fake.confirmed_offset - min(sent))),
        "copies": len(latencies) + missed,
        "copies_deleted": len(latencies),
        "copies_missed": missed,
        "unrelated_deleted": wrongly_deleted,
        "delete_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "delete_p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "delete_max_ms": round(max(latencies), 1) if latencies else None,
        "max_behind_s": round(max(behind), 2) if behind else None,
        "asyncio_debug": args.asyncio_debug,
        "slow_callbacks": len(stalls),
        "slowest_callback_s": max(stalls) if stalls else None,
        "slow_callback_examples": [what[:160] for what, _ in found[:3]],
        "bot_exit_code": bot.returncode,
    }
    return figures


def print_figures(figures: dict[str, Any]) -> None:
    """One aligned line per figure, then all of them as one JSON line."""
    width = max(len(key) for key in figures)
    for key, value in figures.items():
        print(f"{key:>{width}}: {value}")
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100, help="photos offered per second")
    parser.add_argument("--seconds", type=float, default=60, help="how long to offer them")
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--size", default="1280x960", help="photo size, WIDTHxHEIGHT")
    parser.add_argument("--pool", type=int, default=100, help="distinct blocked/unrelated photos")
    parser.add_argument("--drain", type=float, default=60, help="seconds allowed to catch up")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--no-warm-up",
        dest="warm_up",
        action="store_false",
        help="time the first photo of each group too (the bot has never seen the groups)",
    )
    parser.add_argument(
        "--no-asyncio-debug",
        dest="asyncio_debug",
        action="store_false",
        help="run the bot without asyncio debug mode (no stall report, less overhead)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print_figures(asyncio.run(run(args, Path(folder))))


if __name__ == "__main__":
    main()
