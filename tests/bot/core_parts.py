"""The core as the wiring builds it, on a real SQLite store, for tests that drive one of its
calls (``UploadChecker``, ``Reporting``, ``ReplyBlocker``) through a stand-in platform."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from PIL import Image

from bot.config import load_config
from bot.core import Core
from bot.enforcement import Enforcer
from bot.fair_queue import FairQueue
from bot.fingerprint_cache import FingerprintCache, HashMode, footprint
from bot.jobs import Step
from bot.outbox import Outbox
from bot.uploads import Fetched, Unchecked
from bot.values import Person
from hashdb.photo import hash_image
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


#: The group, its admin and the member whose uploads the tests check.
CHAT = -1001
ADMIN = Person(10, "Alice")
SENDER = Person(20, "Mallory")


class HasHashes(Protocol):
    @property
    def hashes(self) -> FingerprintCache[Fetched]: ...


class StandInUpload:
    """The platform's side of one upload's check (``UploadPort``): hashes a test image through
    the harness's fingerprint cache (or answers given fingerprints, or a refusal), and records
    what it is asked to do. ``strict``: a rights failure fails the test at once."""

    def __init__(
        self,
        harness: HasHashes,
        image: Image.Image | None = None,
        *,
        unchecked: Unchecked | None = None,
        exempt: bool = False,
        gate: asyncio.Event | None = None,
        fingerprints: Fetched | None = None,
        strict: bool = False,
    ) -> None:
        self._harness = harness
        self._strict = strict
        self._image = image
        self._unchecked = unchecked
        self._exempt = exempt
        self._gate = gate
        self._fingerprints = fingerprints
        #: The file being checked (set by ``Harness.check``): the cache's key.
        self.file_id = ""
        self.fetches = 0
        #: Files hashed (fetches not answered by the cache).
        self.hashed = 0
        self.made: list[Step] = []
        self.flagged: list[str] = []
        self.missing: list[str] = []
        self.failures: list[Exception] = []

    async def make(self, chat_id: int, step: Step, results: Mapping[str, Any]) -> str:
        self.made.append(step)
        return "ok"

    async def exempt(self, chat_id: int, person: Person) -> bool:
        return self._exempt

    async def rights_failed(self, chat_id: int, why: str) -> None:
        if self._strict:
            raise AssertionError(why)
        self.missing.append(why)

    async def fetch(self, *, local: bool, regions: bool) -> Fetched | Unchecked:
        self.fetches += 1
        if self._gate is not None:
            await self._gate.wait()
        if self._unchecked is not None:
            return self._unchecked
        if self._fingerprints is not None:
            return self._fingerprints
        if self._image is None:
            raise RuntimeError("the test gave no image")
        image = self._image

        async def produce() -> Fetched:
            self.hashed += 1
            return Fetched(hash_image(image, local=local, regions=regions))

        # As the Telegram adapter does: through the cache, by the file's id and the mode.
        mode = HashMode.of(for_block=False, local=local, regions=regions)
        return await self._harness.hashes.get(self.file_id, mode, produce)

    async def flag_for_review(self, note: str) -> None:
        self.flagged.append(note)

    async def missing_rights(self, why: str) -> None:
        if self._strict:
            raise AssertionError(why)
        self.missing.append(why)

    async def failed(self, error: Exception) -> None:
        self.failures.append(error)
