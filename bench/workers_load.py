"""Bot throughput with webhook workers on PostgreSQL: one worker against two.

Like ``bench/bot_load.py``, but the bot runs as ``python -m bot.cli run --webhook``
processes on one PostgreSQL database (a throwaway cluster from Debian's binaries, as the
tests start; or ``HASHGUARD_TEST_POSTGRES_URL``), and the photos are posted to the workers'
webhooks in turn, as a load balancer would. Half are copies of photos in an operator bank,
half unrelated. Measured: deletion latency of the copies from the worker accepting the post
(p50, p99), copies missed, unrelated photos deleted.

    python bench/workers_load.py --workers 1 --rate 40 --seconds 20
    python bench/workers_load.py --workers 2 --rate 40 --seconds 20

Each worker has a hashing pool of ``--pool-size`` processes (default 1, so two workers use
what one worker with two would). Ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bot_load import make_media, percentile, print_figures  # noqa: E402
from hashdb.lists import ListItem, write_text  # noqa: E402
from tests.fakebot import FakeBotAPI, group, message_update, photo_message, user  # noqa: E402
from tests.pg import free_port, fresh_database  # noqa: E402

SECRET = "bench-secret-0123456789"
PUBLIC_URL = "https://bot.example.org/telegram"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


async def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    width, height = (int(side) for side in args.size.split("x"))
    copies, unrelated, blocked = make_media(args.pool, (width, height))
    bank_file = folder / "blocked.txt"
    with bank_file.open("w") as out:
        write_text([ListItem(fps.stored) for fps in blocked], out)
    rng = random.Random(args.seed)
    groups = [group(-1001_600_000_000 - n, f"Load {n}") for n in range(args.groups)]
    total = int(args.rate * args.seconds)
    url = await fresh_database()
    ports = [free_port() for _ in range(args.workers)]
    hooks = [f"http://127.0.0.1:{port}/telegram" for port in ports]

    async with FakeBotAPI() as fake, aiohttp.ClientSession() as session:
        workers = []
        for n, port in enumerate(ports):
            env = {
                **os.environ,
                "HASHGUARD_TELEGRAM_TOKEN": fake.token,
                "HASHGUARD_TELEGRAM_API_URL": fake.base_url,
                "HASHGUARD_TELEGRAM_FILE_URL": fake.base_file_url,
                "HASHGUARD_STORAGE_URL": url,
                "HASHGUARD_BANKS_FILES": str(bank_file),
                "HASHGUARD_MODERATION_WARN_LIMIT": "0",
                "HASHGUARD_MEDIA_WORKERS": str(args.pool_size),
                "HASHGUARD_LOGGING_LEVEL": "WARNING",
                "HASHGUARD_WEBHOOK_PORT": str(port),
                "HASHGUARD_WEBHOOK_SECRET_TOKEN": SECRET,
                "HASHGUARD_WEBHOOK_PUBLIC_URL": "https://bot.example.org/telegram"
                if n == 0
                else "",
                "HASHGUARD_WEBHOOK_SET_WEBHOOK": "true" if n == 0 else "false",
            }
            log = (folder / f"worker{n}.log").open("w")
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bot.cli", "run", "--webhook"],
                    cwd=ROOT,
                    env=env,
                    stderr=log,
                )
            )
            # One at a time: they would otherwise load the operator list at once.
            await _listening(session, hooks[n], fake, workers[n], folder / f"worker{n}.log")

        accepted_at: dict[int, float] = {}

        async def offer(update: dict[str, Any], hook: str) -> None:
            async with session.post(hook, json=update, headers={HEADER: SECRET}) as response:
                if response.status == 200:
                    accepted_at[update["update_id"]] = time.monotonic()

        try:
            posts: list[asyncio.Task[None]] = []
            if args.warm_up:
                for n, chat in enumerate(groups):
                    file = fake.add_file(unrelated[0])
                    message = photo_message(chat, user(9), file, width=width, height=height)
                    update = fake.prepare_update(message_update(message))
                    posts.append(asyncio.create_task(offer(update, hooks[n % len(hooks)])))
                    await asyncio.sleep(1 / args.rate)
                await asyncio.gather(*posts)
                while len(fake.calls_to("getFile")) < len(groups):
                    await asyncio.sleep(0.1)
                await asyncio.sleep(2.0)

            sent: dict[int, tuple[str, int, int]] = {}
            started = time.monotonic()
            posts = []
            for n in range(total):
                delay = started + n / args.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                kind = "copy" if n % 2 == 0 else "other"
                data = (copies if kind == "copy" else unrelated)[(n // 2) % args.pool]
                chat = groups[rng.randrange(len(groups))]
                sender = user(10_000 + rng.randrange(100_000))
                message = photo_message(
                    chat, sender, fake.add_file(data), width=width, height=height
                )
                update = fake.prepare_update(message_update(message))
                sent[update["update_id"]] = (kind, chat["id"], message["message_id"])
                posts.append(asyncio.create_task(offer(update, hooks[n % len(hooks)])))
            offering = time.monotonic() - started
            await asyncio.gather(*posts)
            copies_sent = {(c, m) for kind, c, m in sent.values() if kind == "copy"}
            deadline = time.monotonic() + args.drain
            while time.monotonic() < deadline and not copies_sent <= fake.deleted:
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # a late, wrong deletion would show up here
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                try:
                    worker.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()

    deleted_at: dict[tuple[int, int], float] = {}
    for call in fake.calls_to("deleteMessage"):
        deleted_at.setdefault((call.int_param("chat_id"), call.int_param("message_id")), call.at)
    latencies: list[float] = []
    missed = wrongly_deleted = 0
    for update_id, (kind, chat_id, message_id) in sent.items():
        at = deleted_at.get((chat_id, message_id))
        accepted = accepted_at.get(update_id)
        if kind == "copy":
            if at is None or accepted is None:
                missed += 1
            else:
                latencies.append(max(0.0, at - accepted) * 1000)
        elif at is not None:
            wrongly_deleted += 1
    return {
        "bench": "workers_load",
        "workers": args.workers,
        "hashing_processes_per_worker": args.pool_size,
        "rate_target": args.rate,
        "rate_offered": round(total / offering, 1),
        "seconds": args.seconds,
        "cores": os.cpu_count(),
        "updates_offered": total,
        "updates_accepted": len(accepted_at) - (len(groups) if args.warm_up else 0),
        "copies": len(latencies) + missed,
        "copies_deleted": len(latencies),
        "copies_missed": missed,
        "unrelated_deleted": wrongly_deleted,
        "delete_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "delete_p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "worker_exit_codes": [worker.returncode for worker in workers],
    }


async def _listening(
    session: aiohttp.ClientSession, hook: str, fake: FakeBotAPI, worker: Any, log: Path
) -> None:
    """Wait until the worker answers on its webhook (a post without the secret: 403)."""
    deadline = time.monotonic() + 120
    while True:
        if worker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"a worker did not start:\n{log.read_text()}")
        try:
            async with session.post(hook, json={}) as response:
                if response.status == 403:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool-size", type=int, default=1, help="hashing processes per worker")
    parser.add_argument("--rate", type=float, default=40, help="photos offered per second")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--size", default="1280x960", help="photo size, WIDTHxHEIGHT")
    parser.add_argument("--pool", type=int, default=50, help="distinct blocked/unrelated photos")
    parser.add_argument("--drain", type=float, default=60, help="seconds allowed to catch up")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--no-warm-up", dest="warm_up", action="store_false")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print_figures(asyncio.run(run(args, Path(folder))))


if __name__ == "__main__":
    main()
