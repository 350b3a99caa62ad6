"""Bot throughput: a steady stream of photos across many groups, end to end.

Runs the bot as it is deployed (``python -m bot.cli run``: long polling, the hashing process
pool sized to the cores, SQLite) in its own process, against the fake Bot API server of the
tests on loopback, which runs in this process. Photos are offered at a fixed rate across
``--groups`` groups from distinct senders, each as a new file (so each one is downloaded and
hashed; nothing is answered from the file-id cache). Half are re-encoded, resized copies of
photos in an operator bank every group uses, half are unrelated photos. Each group first
gets one photo, untimed, as a bot that has served them for a while already knows them
(``--no-warm-up`` times first contact too).

``--local`` offers the real mix instead (``bench/load_mix.py``): the photos are blocked with
local features, as ``/block`` does, so every upload runs the local-feature (crop) check; 10%
of the traffic are copies, half plain (the hash stage finds them) and half cropped or
captioned (only the local features do), and 90% unrelated photos of varied sizes and shapes.

Measured (times on the fake server's clock):

- latency from the bot receiving an update (the getUpdates answer carrying it) to its
  deleteMessage, for the blocked copies: p50, p99, max (``delete_*``);
- latency from the photo being *offered* (put in the fake server's update queue) to its
  deleteMessage, which shows a bot that falls behind: for the copies the whole-image hash
  finds (``hash_stage_*``) and, with ``--local``, for those only local features find
  (``crop_stage_*``), each with how many of them were deleted and missed;
- updates lost: offered updates whose photo the bot never asked for (getFile; every photo
  is a new file, so each update handled is one getFile);
- peak memory of the bot's process and its hashing workers together, sampled from /proc
  twice a second (``peak_rss_mb``: resident sets summed, shared pages counted in each;
  ``peak_pss_mb``: shared pages split between the processes: what the group takes), and the
  CPU seconds the main process and its workers had used when last sampled, and those of
  this bench (the fake server) while offering and draining, on the same cores;
- updates offered, received by the bot and confirmed, and copies deleted (none may be
  missing) and unrelated photos deleted (must be none);
- how far the bot fell behind: the longest wait from an update being offered to being
  received;
- event-loop stalls: the bot runs with asyncio debug mode (``PYTHONASYNCIODEBUG=1``), which
  logs every callback that holds the loop over 100 ms; the count is reported.

    python bench/bot_load.py                      # 100 photos/s, 500 groups, 60 s
    python bench/bot_load.py --rate 50 --seconds 20 --size 800x600
    python bench/bot_load.py --local --rate 100 --seconds 60 --groups 500 --no-asyncio-debug

``--profile FILE`` runs the bot under ``python -m cProfile -o FILE`` (the main process only;
the hashing workers are not profiled); ``--py-spy FILE`` samples it with py-spy instead,
which does not slow it down: see docs/throughput.md, and ``bench/profile_report.py``.

A bot that falls behind needs longer than ``--drain`` (60 s) to catch up after the offering
ends; what it has not done by then counts as missed or lost, so give it longer (the figures
in docs/throughput.md used ``--drain 400``).

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

from bench.load_mix import MemorySampler, Photo, block_with_local, make_mix  # noqa: E402
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


def bot_env(fake: FakeBotAPI, database: Path) -> dict[str, str]:
    """What points the bot (and ``hashguard block``) at ``fake`` and ``database``."""
    return {
        "HASHGUARD_TELEGRAM_TOKEN": fake.token,
        "HASHGUARD_TELEGRAM_API_URL": fake.base_url,
        "HASHGUARD_TELEGRAM_FILE_URL": fake.base_file_url,
        "HASHGUARD_STORAGE_DATABASE": str(database),
        "HASHGUARD_LOGGING_LEVEL": "WARNING",
    }


@contextlib.asynccontextmanager
async def running_bot(
    fake: FakeBotAPI,
    database: Path,
    env: dict[str, str],
    *,
    stop_seconds: float = 20,
    profile: Path | None = None,
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """The bot as deployed (``python -m bot.cli run``) polling ``fake``, once it polls;
    stopped with SIGTERM (killed after ``stop_seconds``) on the way out. Its stderr goes to
    ``database`` with the suffix ``.log``. ``profile``: run it under cProfile, which writes
    its statistics there when the bot exits."""
    environ = {**os.environ, **bot_env(fake, database), **env}
    log_path = database.with_suffix(".log")
    profiler = ["-m", "cProfile", "-o", str(profile)] if profile is not None else []
    with log_path.open("w") as log:
        bot = subprocess.Popen(
            [sys.executable, *profiler, "-m", "bot.cli", "run"], cwd=ROOT, env=environ, stderr=log
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


def kind_of(n: int, local: bool) -> str:
    """What the ``n``-th photo offered is: "copy" (the whole-image hash finds it), "crop"
    (only local features do) or "other" (unrelated). Without ``--local``: every other photo
    a copy; with it, one in twenty a copy and one in twenty a crop."""
    if not local:
        return "copy" if n % 2 == 0 else "other"
    return {0: "copy", 10: "crop"}.get(n % 20, "other")


def traffic(
    args: argparse.Namespace, database: Path
) -> tuple[dict[str, list[Photo]], dict[str, str]]:
    """The photos to offer by kind (see ``kind_of``), with blocked photos already in
    ``database`` or named in the bot's environment (returned)."""
    if args.local:
        mix = make_mix(args.pool, args.seed)
        block_env = {
            "HASHGUARD_STORAGE_DATABASE": str(database),
            "HASHGUARD_LOGGING_LEVEL": "WARNING",
        }
        block_with_local(mix.originals, database.parent, block_env)
        return {"copy": mix.plain, "crop": mix.cropped, "other": mix.unrelated}, {}
    width, height = (int(side) for side in args.size.split("x"))
    copies, unrelated, blocked = make_media(args.pool, (width, height))
    bank_file = write_bank(blocked, database.parent)
    kinds = {
        "copy": [Photo(data, width, height) for data in copies],
        "other": [Photo(data, width, height) for data in unrelated],
    }
    return kinds, {"HASHGUARD_BANKS_FILES": str(bank_file)}


def stage_figures(name: str, latencies: list[float], missed: int) -> dict[str, Any]:
    """Deleted, missed and latency from offer (p50, p99, max, ms) of one kind of copy."""
    return {
        f"{name}_copies": len(latencies) + missed,
        f"{name}_deleted": len(latencies),
        f"{name}_missed": missed,
        f"{name}_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        f"{name}_p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        f"{name}_max_ms": round(max(latencies), 1) if latencies else None,
    }


def start_py_spy(output: Path | None, pid: int) -> subprocess.Popen[bytes] | None:
    """py-spy sampling the bot's process (every thread, on-CPU samples only) until it exits,
    its stacks written to ``output`` in the collapsed ("raw") format."""
    if output is None:
        return None
    command = ["py-spy", "record", "--pid", str(pid), "--format", "raw", "--output", str(output)]
    return subprocess.Popen([*command, "--rate", "100", "--nonblocking"], stdout=subprocess.DEVNULL)


async def sample_memory(sampler: MemorySampler) -> None:
    while True:
        await asyncio.to_thread(sampler.sample)
        await asyncio.sleep(0.5)


async def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    database = folder / "load.sqlite3"
    kinds, env = traffic(args, database)
    rng = random.Random(args.seed)
    groups = [group(-1001_500_000_000 - n, f"Load {n}") for n in range(args.groups)]
    total = int(args.rate * args.seconds)

    async with TimedFakeBotAPI() as fake:
        env = {**env, "HASHGUARD_MODERATION_WARN_LIMIT": "0"}
        if args.asyncio_debug:
            env["PYTHONASYNCIODEBUG"] = "1"
        async with running_bot(fake, database, env, profile=args.profile) as bot:
            sampler = MemorySampler(bot.pid)
            sampling = asyncio.create_task(sample_memory(sampler))
            spy = start_py_spy(args.py_spy, bot.pid)
            if args.warm_up:
                # A bot serving groups for months knows them: one photo per group first, so
                # the first-contact work (chat record, rights check) is not what is timed.
                warm = kinds["other"][0]
                for chat in groups:
                    file = fake.add_file(warm.data)
                    message = photo_message(
                        chat, user(9), file, width=warm.width, height=warm.height
                    )
                    warm_last = fake.push_update(message_update(message))
                    await asyncio.sleep(1 / args.rate)

                def warmed() -> bool:
                    fetched = len(fake.calls_to("getFile"))
                    return fake.confirmed_offset > warm_last and fetched >= len(groups)

                while not warmed():
                    await asyncio.sleep(0.1)
                await asyncio.sleep(2.0)

            # update id -> (kind, chat, message, file id)
            sent: dict[int, tuple[str, int, int, str]] = {}
            offered_at: dict[int, float] = {}
            counts = dict.fromkeys(kinds, 0)
            started = time.monotonic()
            cpu_before = os.times()
            for n in range(total):
                target = started + n / args.rate
                delay = target - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                kind = kind_of(n, args.local)
                pool = kinds[kind]
                media = pool[counts[kind] % len(pool)]
                counts[kind] += 1
                chat = groups[rng.randrange(len(groups))]
                sender = user(10_000 + rng.randrange(100_000))
                file = fake.add_file(media.data)
                message = photo_message(chat, sender, file, width=media.width, height=media.height)
                update_id = fake.push_update(message_update(message))
                offered_at[update_id] = time.monotonic()
                sent[update_id] = (kind, chat["id"], message["message_id"], file.file_id)
            offering = time.monotonic() - started

            # Let the bot drain: every update confirmed and every copy deleted, or time out.
            copies_sent = {(c, m) for kind, c, m, _ in sent.values() if kind != "other"}
            last = max(sent)
            drain_deadline = time.monotonic() + args.drain
            while time.monotonic() < drain_deadline:
                if fake.confirmed_offset > last and copies_sent <= fake.deleted:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # a late, wrong deletion would show up here
            sampling.cancel()
            cpu_after = os.times()

        if spy is not None:
            spy.wait(timeout=60)  # it writes its file when the bot has exited
        deleted_at: dict[tuple[int, int], float] = {}
        for call in fake.calls_to("deleteMessage"):
            key = (call.int_param("chat_id"), call.int_param("message_id"))
            deleted_at.setdefault(key, call.at)
        fetched = {call.str_param("file_id") for call in fake.calls_to("getFile")}
        latencies, behind = [], []
        from_offer: dict[str, list[float]] = {"copy": [], "crop": []}
        missed = dict.fromkeys(from_offer, 0)
        wrongly_deleted = lost = 0
        for update_id, (kind, chat_id, message_id, file_id) in sent.items():
            received = fake.received_at.get(update_id)
            if received is not None:
                behind.append(received - offered_at[update_id])
            lost += file_id not in fetched
            at = deleted_at.get((chat_id, message_id))
            if kind == "other":
                wrongly_deleted += at is not None
            elif at is None or received is None:
                missed[kind] += 1
            else:
                latencies.append((at - received) * 1000)
                from_offer[kind].append((at - offered_at[update_id]) * 1000)

    log_text = database.with_suffix(".log").read_text()
    found = SLOW_CALLBACK.findall(log_text)
    stalls = [float(seconds) for _, seconds in found]
    sizes = {(photo.width, photo.height) for pool in kinds.values() for photo in pool}
    figures: dict[str, Any] = {
        "bench": "bot_load",
        "local": args.local,
        "rate_target": args.rate,
        "rate_offered": round(total / offering, 1),
        "seconds": args.seconds,
        "groups": args.groups,
        "groups_warmed_up": args.warm_up,
        "photo_size": args.size if not args.local else "mixed",
        "photo_sizes": len(sizes),
        "cores": os.cpu_count(),
        "updates_offered": total,
        "updates_received": sum(update_id in fake.received_at for update_id in sent),
        "updates_confirmed": min(total, max(0, fake.confirmed_offset - min(sent))),
        "updates_lost": lost,
        "copies": len(latencies) + sum(missed.values()),
        "copies_deleted": len(latencies),
        "copies_missed": sum(missed.values()),
        "unrelated": sum(kind == "other" for kind, *_ in sent.values()),
        "unrelated_deleted": wrongly_deleted,
        "delete_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "delete_p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "delete_max_ms": round(max(latencies), 1) if latencies else None,
        **stage_figures("hash_stage", from_offer["copy"], missed["copy"]),
        **stage_figures("crop_stage", from_offer["crop"], missed["crop"]),
        "max_behind_s": round(max(behind), 2) if behind else None,
        "peak_rss_mb": round(sampler.peak_rss_kib / 1024, 1),
        "peak_pss_mb": round(sampler.peak_pss_kib / 1024, 1),
        "bot_processes": sampler.peak_processes,
        "cpu_main_s": sampler.cpu_main_s(),
        "cpu_workers_s": sampler.cpu_others_s(),
        # The fake Bot API server and this bench share the machine with the bot.
        "cpu_bench_s": round(
            cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system, 1
        ),
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
        "--local",
        action="store_true",
        help="block with local features and offer the real mix: 10%% copies (half plain, half "
        "cropped or captioned), 90%% unrelated photos of varied sizes (--size is ignored)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="run the bot under cProfile, writing its statistics to FILE when it stops",
    )
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
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="FILE",
        help="sample the bot's process with py-spy (pip install py-spy), stacks to FILE",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print_figures(asyncio.run(run(args, Path(folder))))


if __name__ == "__main__":
    main()
