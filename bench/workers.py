"""Two webhook workers on one PostgreSQL database: how soon a block through one worker is
matchable in the other.

Starts a throwaway PostgreSQL cluster (Debian's binaries, as the tests do; or
``HASHGUARD_TEST_POSTGRES_URL``), two bot applications in webhook mode on it, and the fake
Bot API of the tests. Each round posts a new photo and ``/block`` to worker 1 and measures,
from posting the ``/block``, the time until worker 2's in-memory index holds the entry
(worker 1 hashes and commits; LISTEN/NOTIFY; worker 2 reads the entry back), beside the
time until worker 1's own "Blocked as entry #N" reply. Then a copy posted to worker 2 must
be deleted.

    python bench/workers.py --rounds 30

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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


async def main(rounds: int) -> dict[str, object]:
    from tests.e2e.helpers import ADMIN, CHAT, MEMBER, OTHER, two_workers
    from tests.fakebot import FakeBotAPI
    from tests.media import edited_copy, encode, photo

    latencies: list[float] = []
    replies: list[float] = []
    async with FakeBotAPI() as fake:
        fake.set_admins(CHAT["id"], [ADMIN])
        with tempfile.TemporaryDirectory() as tmp:
            # One admin blocks many times a minute here: no per-person limit.
            limits = {"HASHGUARD_MODERATION_ACTIONS_PER_MINUTE": "0"}
            async with two_workers(fake, Path(tmp), **limits) as (apps, telegram):
                other = apps[1].bot_data.services
                assert other is not None
                for n in range(rounds):
                    original = photo(10_000 + n)
                    target = await telegram[0].photo(MEMBER, encode(original))
                    posted = time.monotonic()
                    block = asyncio.create_task(telegram[0].block(target))
                    while other.core.matching.index_size() < n + 1:
                        await asyncio.sleep(0.001)
                    latencies.append(time.monotonic() - posted)
                    await block
                    replies.append(_reply_time(fake, posted) - posted)
                    copy = await telegram[1].photo(OTHER, encode(edited_copy(original)))
                    await fake.wait_deleted(CHAT["id"], copy["message_id"], timeout=30)
    ms = sorted(x * 1000 for x in latencies)
    return {
        "bench": "workers",
        "rounds": rounds,
        "block_to_matchable_p50_ms": round(statistics.median(ms), 1),
        "block_to_matchable_max_ms": round(ms[-1], 1),
        "block_reply_p50_ms": round(statistics.median(replies) * 1000, 1),
        "copies_deleted_by_other_worker": rounds,
    }


def _reply_time(fake: object, since: float) -> float:
    """When worker 1 answered the /block posted at ``since`` (the fake's clock)."""
    calls = fake.calls_to("sendMessage")  # type: ignore[attr-defined]
    return min(c.at for c in calls if c.at >= since and "entry #" in str(c.params))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    figures = asyncio.run(main(parser.parse_args().rounds))
    print(
        f"/block posted to worker 1 -> matchable on worker 2: p50 "
        f"{figures['block_to_matchable_p50_ms']} ms, max {figures['block_to_matchable_max_ms']} ms"
        f" (worker 1's reply: p50 {figures['block_reply_p50_ms']} ms) over {figures['rounds']}"
        " blocks"
    )
    print(json.dumps(figures))
