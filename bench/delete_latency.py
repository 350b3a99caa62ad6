"""Time from an upload reaching the bot to its ``deleteMessage``, end to end.

Runs the real application (long polling, the hashing process pool) against the fake Bot API
server the tests use, blocks a set of photos, then posts copies one at a time and measures,
for each, the time from the update being offered to the bot to the bot's deleteMessage call.
Copies are of two kinds: re-encoded and resized (found by PDQ) and cropped to 75% (found by
local features). Runs once with ``matching.local_match = delete`` and once with ``off``.

    python bench/delete_latency.py [--blocked 50] [--copies 40]

Ends with one JSON line of the figures.
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

from bot.app import ALLOWED_UPDATES, build_application
from bot.config import load_config
from bot.values import Person
from hashdb.photo import hash_photo
from tests.fakebot import FakeBotAPI, group, message_update, photo_message, user
from tests.media import edited_copy, encode, photo

CHAT = group(-1001000000001, "Bench")
SENDER = user(5001, "Sender")


async def _run(local_match: str, blocked: int, copies: int, folder: Path) -> dict[str, Any]:
    async with FakeBotAPI() as fake:
        environ = {
            "HASHGUARD_TELEGRAM_TOKEN": fake.token,
            "HASHGUARD_TELEGRAM_API_URL": fake.base_url,
            "HASHGUARD_TELEGRAM_FILE_URL": fake.base_file_url,
            "HASHGUARD_STORAGE_DATABASE": str(folder / f"{local_match}.sqlite3"),
            "HASHGUARD_MATCHING_LOCAL_MATCH": local_match,
            "HASHGUARD_MODERATION_WARN_LIMIT": "0",
        }
        app = build_application(load_config(None, environ=environ))
        await app.initialize()
        assert app.post_init is not None
        await app.post_init(app)
        services = app.bot_data.services
        assert services is not None and app.updater is not None
        originals = [photo(9000 + n, (1280, 960)) for n in range(blocked)]
        for image in originals:
            await services.core.blocklist.block(
                CHAT["id"],
                hash_photo(encode(image), for_block=True),
                actor=Person(1, "admin"),
                reason="",
                message_id=None,
                sender=None,
                file_unique_id=None,
            )
        await app.updater.start_polling(
            poll_interval=0.0, timeout=1, allowed_updates=ALLOWED_UPDATES
        )
        await app.start()
        timings: dict[str, list[float]] = {"pdq": [], "local": []}
        try:
            for n in range(copies):
                image = originals[n % blocked]
                kind = "pdq" if n % 2 == 0 else "local"
                if kind == "pdq":
                    copy = edited_copy(image)
                else:
                    w, h = image.size
                    copy = image.crop((w // 8, h // 8, w - w // 8, h - h // 8))
                file = fake.add_file(encode(copy))
                message = photo_message(CHAT, SENDER, file, width=copy.width, height=copy.height)
                started = time.monotonic()
                fake.push_update(message_update(message))
                try:
                    call = await fake.wait_for(
                        "deleteMessage",
                        lambda c, m=message: c.int_param("message_id") == m["message_id"],
                        timeout=10,
                    )
                except AssertionError:
                    continue  # not deleted (local_match off): no timing
                timings[kind].append((call.at - started) * 1000)
        finally:
            await app.updater.stop()
            await app.stop()
            await app.shutdown()
            assert app.post_shutdown is not None
            await app.post_shutdown(app)
    figures: dict[str, Any] = {"local_match": local_match}
    for kind, values in timings.items():
        half = copies // 2
        figures[f"{kind}_deleted"] = f"{len(values)}/{half}"
        if values:
            figures[f"{kind}_p50_ms"] = round(statistics.median(values), 1)
            figures[f"{kind}_max_ms"] = round(max(values), 1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocked", type=int, default=50, help="photos blocked first")
    parser.add_argument("--copies", type=int, default=40, help="copies posted, half cropped")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for local_match in ("delete", "off"):
            figures = asyncio.run(_run(local_match, args.blocked, args.copies, Path(folder)))
            print(figures)
            results.append(figures)
    print(json.dumps({"bench": "delete_latency", "runs": results}))


if __name__ == "__main__":
    main()
