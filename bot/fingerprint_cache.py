"""Fingerprints of recently seen Telegram files, so a file is fetched and hashed once.

Telegram keeps a file's ``file_unique_id`` when it is forwarded, so a video forwarded to 500
groups arrives 500 times under one id. The cache keeps what hashing it gave (fingerprints,
never media and never a verdict) under that id and the *mode* of hashing, and uploads landing
at the same moment share one download and hash (single flight). Every group's own rules are
applied to the fingerprints afresh (``MatchingService.find_match``), so a block made after
a file was first seen catches its next upload from the cache, and a loose group's match says
nothing about a strict group.

Memory per entry, measured with ``sys.getsizeof`` over the objects (``footprint`` estimates
it the same way): a photo's check fingerprints (whole-image PDQ, pHash and the 8 PDQ
orientations) take about 1.5 kB; its local features (ORB, up to ~600 points of 8 + 32 bytes)
add about 25 kB, and the rectangles found inside it (checks against hash-only entries) about
1.3 kB each, 13 kB at most; a video takes about 160 bytes per sampled frame and view (a check reads
each frame up to five ways: 500 kB at the 600-frame cap; 500 kB for a densely hashed blocked
one), plus about 20 kB per moment of local features (16 for a check, with mirrors). The
cache is bounded both in entries (``media.fingerprint_cache_size``) and in bytes
(``media.fingerprint_cache_mb``), least recently used first out: 100,000 photos fit in the
default 256 MB, while a flood of large items (local features, long videos) evicts by bytes
before it can grow the process.

A failure that would only repeat (the file cannot be decoded, or crashes or outlasts the
decoder) is remembered too, for a while (``FAILURE_SECONDS``), so a file built to hold a
hashing worker for the whole timeout costs that once per mode, not once per forward or
report. Which failures repeat is the caller's word (``remember``); a passing one (a failed
download) is never remembered.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from hashdb.fingerprint import MediaFingerprints

log = logging.getLogger(__name__)

V = TypeVar("V")

#: Estimated bytes of one ``Fingerprint`` (object, 256-bit int, optional quality and time),
#: and of one cache entry's fixed parts (key, tuples, ``MediaFingerprints``, bookkeeping).
_FINGERPRINT_BYTES = 160
_ENTRY_BYTES = 400

#: How long a failure that would repeat answers for its file. Long enough to cover a wave of
#: forwards of one file (minutes) and to make reposting it cost the attacker more than the
#: bot; short enough that a failure caused by the moment rather than the file (a timeout on
#: a machine busy with other work, a worker killed for memory another file took) is tried
#: again soon: a blocked video that failed that way is checked afresh 15 minutes later.
FAILURE_SECONDS = 15 * 60
#: Failures remembered at most (each a key and one small exception, well under 1 kB): a
#: flood of distinct bad files evicts the oldest instead of growing the process.
MAX_FAILURES = 10_000


@dataclass(frozen=True, slots=True)
class HashMode:
    """How a file was hashed, part of the cache key: a block's dense, exact hashing and a
    check's quick, sparse one give different fingerprints, and only some checks compute a
    photo's local features, or the rectangles found inside it (``regions``: for banks with
    entries that have no local features, such as imported hash lists)."""

    for_block: bool
    local: bool
    regions: bool = False

    @classmethod
    def of(cls, *, for_block: bool, local: bool, regions: bool = False) -> HashMode:
        # A block always keeps local features (Fingerprinter.hash_photo), whatever asked,
        # and never regions: what is stored is the whole photo.
        return cls(for_block, local or for_block, regions and not for_block)

    def usable(self) -> tuple[HashMode, ...]:
        """The cached modes whose fingerprints serve this one, best first: a check can use
        a check that computed more (local features, regions: they are simply not looked
        at), never one that computed less; a block only uses a block's."""
        if self.for_block:
            return (self,)
        more = [
            HashMode(for_block=False, local=local, regions=regions)
            for local in {self.local, True}
            for regions in {self.regions, True}
        ]
        return (self, *sorted((m for m in more if m != self), key=lambda m: (m.local, m.regions)))


#: How a file an admin blocks, a member reports or a person submits is hashed (densely, from
#: the exact pixels, local features included).
BLOCK_MODE = HashMode.of(for_block=True, local=True)


def footprint(fingerprints: MediaFingerprints) -> int:
    """Estimated bytes the fingerprints take in memory (see the module docstring)."""
    views = [f for view in fingerprints.views for f in view]
    distinct = len({id(f) for f in (*fingerprints.stored, *fingerprints.probes, *views)})
    regions = [f for region in fingerprints.regions for f in region.probes]
    distinct += len(regions)
    features = [f for f in (fingerprints.local, fingerprints.local_mirror) if f is not None]
    features += [region.local for region in fingerprints.regions if region.local is not None]
    features += fingerprints.moments
    extra = sum(f.points.nbytes + f.descriptors.nbytes + 200 for f in features)
    return _ENTRY_BYTES + _FINGERPRINT_BYTES * distinct + extra


class FingerprintCache(Generic[V]):
    """A bounded LRU of hashing results by (file_unique_id, mode), with single flight.

    ``V`` is what a hash gives (fingerprints and how they were obtained); ``size_of``
    estimates its bytes. ``max_entries`` 0 turns caching off, failures included (single
    flight stays: uploads of one file at the same moment still share one download).

    ``remember`` says of a failure whether it would repeat, and if so gives the exception
    every later call for the file and mode raises for ``failure_seconds`` (by ``clock``);
    None means a later call tries again.
    """

    def __init__(
        self,
        max_entries: int,
        max_bytes: int,
        size_of: Callable[[V], int],
        *,
        remember: Callable[[Exception], Exception | None] = lambda _: None,
        failure_seconds: float = FAILURE_SECONDS,
        max_failures: int = MAX_FAILURES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 0 or max_bytes < 0:
            raise ValueError(
                f"cache bounds must be 0 or more; got {max_entries} entries, {max_bytes} bytes"
            )
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._size_of = size_of
        self._items: collections.OrderedDict[tuple[str, HashMode], tuple[V, int]] = (
            collections.OrderedDict()
        )
        self._bytes = 0
        self._in_flight: dict[tuple[str, HashMode], asyncio.Future[V]] = {}
        self._remember = remember
        self._failure_seconds = failure_seconds
        self._max_failures = max(0, min(max_failures, max_entries))
        self._clock = clock
        #: Failures by the exact key they were made under, oldest first, with when they
        #: stop answering. Never shared between modes as results are: a check decodes at
        #: reduced scale and a check with local features does more work, so a file can
        #: fail (run out of time) in one mode and hash in another.
        self._failures: collections.OrderedDict[tuple[str, HashMode], tuple[Exception, float]] = (
            collections.OrderedDict()
        )
        #: How many ``get`` calls were answered from the cache, joined one in flight, or
        #: had to hash (for the benches and the logs).
        self.hits = 0
        self.joined = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        return self._bytes

    def known(self, file_unique_id: str, mode: HashMode) -> bool:
        """Whether ``get`` answers at once, from a result or a remembered failure, without
        hashing."""
        return (
            self.peek(file_unique_id, mode) is not None
            or self._failure((file_unique_id, mode)) is not None
        )

    def _failure(self, key: tuple[str, HashMode]) -> Exception | None:
        found = self._failures.get(key)
        if found is None:
            return None
        if self._clock() >= found[1]:
            del self._failures[key]
            return None
        return found[0]

    def peek(self, file_unique_id: str, mode: HashMode) -> V | None:
        """The cached result usable for ``mode``, if any (marked recently used)."""
        for usable in mode.usable():
            key = (file_unique_id, usable)
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found[0]
        return None

    async def get(
        self, file_unique_id: str, mode: HashMode, produce: Callable[[], Awaitable[V]]
    ) -> V:
        """The result for this file and mode: cached, shared with a hash in flight, or made
        now by ``produce`` (its exception reaches every caller waiting for it; a failure
        that would repeat is remembered, any other is not: a failed download may succeed
        next time)."""
        cached = self.peek(file_unique_id, mode)
        if cached is not None:
            self.hits += 1
            return cached
        failure = self._failure((file_unique_id, mode))
        if failure is not None:
            self.hits += 1
            # One exception raised again and again: drop the traceback of its last raise,
            # or each would grow it.
            raise failure.with_traceback(None)
        for usable in mode.usable():
            running = self._in_flight.get((file_unique_id, usable))
            if running is not None:
                self.joined += 1
                # Shielded: one waiter giving up (its update cancelled) must not cancel the
                # hash the others wait for.
                return await asyncio.shield(running)
        self.misses += 1
        key = (file_unique_id, mode)
        task = asyncio.ensure_future(self._produce(key, produce))
        # Retrieved here too, in case every caller gave up before it failed.
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._in_flight[key] = task
        return await asyncio.shield(task)

    async def _produce(self, key: tuple[str, HashMode], produce: Callable[[], Awaitable[V]]) -> V:
        try:
            value = await produce()
        except Exception as error:
            self._put_failure(key, error)
            raise
        finally:
            self._in_flight.pop(key, None)
        self._failures.pop(key, None)
        self._put(key, value)
        return value

    def _put_failure(self, key: tuple[str, HashMode], error: Exception) -> None:
        if not self._max_failures:
            return
        remembered = self._remember(error)
        if remembered is None:
            return
        self._failures.pop(key, None)
        self._failures[key] = (remembered, self._clock() + self._failure_seconds)
        while len(self._failures) > self._max_failures:
            self._failures.popitem(last=False)

    def _put(self, key: tuple[str, HashMode], value: V) -> None:
        if not self._max_entries:
            return
        size = self._size_of(value)
        if size > self._max_bytes:
            return  # larger than the whole budget: never worth evicting everything for
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= old[1]
        self._items[key] = (value, size)
        self._bytes += size
        while len(self._items) > self._max_entries or self._bytes > self._max_bytes:
            _, (_, dropped) = self._items.popitem(last=False)
            self._bytes -= dropped
