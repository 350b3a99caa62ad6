"""The core as the wiring builds it, on a real SQLite store, for tests that drive one of its
calls (``UploadChecker``, ``Reporting``, ``ReplyBlocker``) through a stand-in platform."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import load_config
from bot.core import Core
from bot.enforcement import Enforcer
from bot.fair_queue import FairQueue
from bot.fingerprint_cache import FingerprintCache, footprint
from bot.outbox import Outbox
from bot.uploads import Fetched
from hashdb.sqlite import SQLiteStore

DEFAULTS = load_config(None, environ={"HASHGUARD_TELEGRAM_TOKEN": "x"})


@dataclass
class CoreParts:
    core: Core
    queue: FairQueue
    hashes: FingerprintCache[Fetched]
    enforcer: Enforcer


async def core_parts(store: SQLiteStore, *, per_chat: int = 20) -> CoreParts:
    """The core with its index loaded, a small fair queue, a fingerprint cache and an
    enforcer on the store's outbox."""
    core = Core.build(store, DEFAULTS.matching, DEFAULTS.video, DEFAULTS.moderation)
    await core.load()
    queue = FairQueue(concurrency=2, per_chat=per_chat, running_per_chat=1)
    hashes: FingerprintCache[Fetched] = FingerprintCache(
        100, 50_000_000, lambda fetched: footprint(fetched.fingerprints)
    )
    return CoreParts(core, queue, hashes, Enforcer(core, Outbox(store)))
