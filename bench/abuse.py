"""One member tries to stall the bot; how quickly another group's re-uploads still go.

Runs the bot as it is deployed (``python -m bot.cli run``: long polling, the hashing process
pool sized to the cores, SQLite) in its own process, against the fake Bot API server of the
tests, in this process. Group A holds a slow video (720p, two minutes: seconds to hash, more
to hash densely as a report does). Then, at once, one member of group A sends ``--reports``
``/report``s of that video and posts ``--videos`` long videos (each its own Telegram file,
so each would be hashed), while in group B members post re-encoded copies of photos in an
operator bank, ``--rate`` per second for ``--seconds``.

The member's command rate limit (``moderation.actions_per_minute``) is turned off, so every
one of their updates reaches the handlers; ``report_rate_per_hour`` keeps its default.

Measured, on the fake server's clock:

- group B: latency from an upload being offered (the moment the user posts it) to the bot's
  deleteMessage, p50 / p99 / max, and copies deleted / missed;
- the slow video: how many times it was downloaded while attacked (each download is one
  hash), and in all;
- group A: uploads audited as skipped because its queue was full, and reports answered.

    python bench/abuse.py
    python bench/abuse.py --reports 70 --videos 30 --seconds 20 --rate 2

Ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bot_load import (  # noqa: E402
    make_media,
    percentile,
    print_figures,
    running_bot,
    write_bank,
)
from tests.fakebot import (  # noqa: E402
    FakeBotAPI,
    command,
    group,
    message_update,
    photo_message,
    user,
    video_message,
)
from tests.media import video  # noqa: E402

GROUP_A = group(-1001_600_000_001, "Attacked")
GROUP_B = group(-1001_600_000_002, "Bystander")
ATTACKER = user(66_001, "Attacker")
POSTER = user(66_002, "Poster")


async def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    width, height = (int(side) for side in args.size.split("x"))
    copies, _, blocked = make_media(args.pool, (width, height))
    bank_file = write_bank(blocked, folder)
    started_making = time.monotonic()
    slow = video(11, seconds=args.video_seconds, fps=10, size=(1280, 720))
    print(f"made a {len(slow)}-byte video in {time.monotonic() - started_making:.0f} s")

    async with FakeBotAPI() as fake:
        env = {
            "HASHGUARD_BANKS_FILES": str(bank_file),
            "HASHGUARD_MODERATION_WARN_LIMIT": "0",
            "HASHGUARD_MODERATION_ACTIONS_PER_MINUTE": "0",
        }
        database = folder / "abuse.sqlite3"
        async with running_bot(fake, database, env, stop_seconds=30) as bot:
            # Untimed: the slow video is posted and checked, and group B is known.
            slow_file = fake.add_file(slow, file_path_suffix=".mp4")
            target = video_message(
                GROUP_A, POSTER, slow_file, width=1280, height=720, duration=args.video_seconds
            )
            fake.push_update(message_update(target))
            warm = fake.add_file(copies[-1])
            fake.push_update(
                message_update(photo_message(GROUP_B, POSTER, warm, width=width, height=height))
            )
            while fake.downloads_of(slow_file) < 1 or fake.downloads_of(warm) < 1:
                await asyncio.sleep(0.1)
            await asyncio.sleep(args.video_seconds / 20 + 2.0)
            slow_before = fake.downloads_of(slow_file)

            # The attack, as fast as a client can send: the reports, then the videos.
            for _ in range(args.reports):
                report = command(GROUP_A, ATTACKER, "/report", reply_to=target)
                fake.push_update(message_update(report))
            for _ in range(args.videos):
                file = fake.add_file(slow, file_path_suffix=".mp4")
                long_video = video_message(
                    GROUP_A, ATTACKER, file, width=1280, height=720, duration=120
                )
                fake.push_update(message_update(long_video))

            # Meanwhile in group B: re-uploads of blocked photos, each a new file.
            offered_at: dict[int, float] = {}
            total = int(args.rate * args.seconds)
            started = time.monotonic()
            for n in range(total):
                delay = started + n / args.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                file = fake.add_file(copies[n % args.pool])
                sender = user(70_000 + n)
                message = photo_message(GROUP_B, sender, file, width=width, height=height)
                fake.push_update(message_update(message))
                offered_at[message["message_id"]] = time.monotonic()

            drain_deadline = time.monotonic() + args.drain
            wanted = {(GROUP_B["id"], m) for m in offered_at}
            while time.monotonic() < drain_deadline and not wanted <= fake.deleted:
                await asyncio.sleep(0.1)
            slow_attacked = fake.downloads_of(slow_file) - slow_before
            slow_total = fake.downloads_of(slow_file)

        deleted_at: dict[int, float] = {}
        for call in fake.calls_to("deleteMessage"):
            if call.int_param("chat_id") == GROUP_B["id"]:
                deleted_at.setdefault(call.int_param("message_id"), call.at)
        latencies = [(deleted_at[m] - at) * 1000 for m, at in offered_at.items() if m in deleted_at]
        private = [
            c for c in fake.calls_to("sendMessage") if c.str_param("chat_id") == str(ATTACKER["id"])
        ]

    with sqlite3.connect(database) as db:
        skipped = db.execute(
            "SELECT count(*) FROM audit WHERE chat_id = ? AND event = 'media_skipped' "
            "AND detail LIKE 'queue_full:%'",
            (GROUP_A["id"],),
        ).fetchone()[0]
    db.close()
    return {
        "bench": "abuse",
        "cores": os.cpu_count(),
        "reports": args.reports,
        "long_videos": args.videos,
        "video_seconds": args.video_seconds,
        "b_copies": len(offered_at),
        "b_deleted": len(latencies),
        "b_missed": len(offered_at) - len(latencies),
        "b_delete_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "b_delete_p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "b_delete_max_ms": round(max(latencies), 1) if latencies else None,
        "slow_video_downloads_during_attack": slow_attacked,
        "slow_video_downloads_in_all": slow_total,
        "a_skipped_queue_full": skipped,
        "attacker_told_privately": len(private),
        "attacker_told": sorted({str(c.str_param("text"))[:60] for c in private}),
        "bot_exit_code": bot.returncode,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=70, help="/reports of the slow video")
    parser.add_argument("--videos", type=int, default=30, help="long videos posted in group A")
    parser.add_argument("--video-seconds", type=int, default=120, help="length of the videos")
    parser.add_argument("--rate", type=float, default=2, help="group B re-uploads per second")
    parser.add_argument("--seconds", type=float, default=20, help="how long group B posts")
    parser.add_argument("--size", default="1280x960", help="photo size, WIDTHxHEIGHT")
    parser.add_argument("--pool", type=int, default=20, help="distinct blocked photos")
    parser.add_argument("--drain", type=float, default=120, help="seconds allowed to catch up")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print_figures(asyncio.run(run(args, Path(folder))))


if __name__ == "__main__":
    main()
