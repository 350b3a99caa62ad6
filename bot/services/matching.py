"""Matching uploads against the blocklist: the in-memory index and the local index.

Both are built from the store at start (``load``) and kept current from the store's change
feed (``apply_change``) and by the services that add and remove entries; every index
operation runs on the index's own thread. The search of local features alone (the second
stage of an upload's check, ``find_local_match``) runs on a thread of its own, so the hash
lookups of other uploads never wait behind it; it and the writers of the local index take
turns on a lock.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

from bot.config import MatchingConfig, VideoConfig
from bot.matcher import LOCAL_SIGNAL, Match, Matcher, needs_regions
from bot.services.scope import Scope
from bot.services.settings import SettingsService
from hashdb import kernels
from hashdb.fingerprint import MediaFingerprints
from hashdb.index import BlocklistIndex, ColumnBuilder
from hashdb.local import LocalIndex
from hashdb.local_format import LocalFeatures, pack_moments, unpack
from hashdb.signals import VPDQ
from hashdb.store import OPERATOR_BANK, SELF_BANK_NAME, BankStore, Change, Entry, EntryStore

log = logging.getLogger(__name__)


T = TypeVar("T")


class MatchingService:
    """The indexes of blocked entries, and the questions asked of them per upload."""

    def __init__(
        self,
        entry_store: EntryStore,
        bank_store: BankStore,
        config: MatchingConfig,
        video: VideoConfig,
        settings: SettingsService,
        scope: Scope,
    ) -> None:
        self._entry_store = entry_store
        self._bank_store = bank_store
        self._config = config
        self._settings = settings
        self._scope = scope
        self._matcher = Matcher(config, video)
        self._index = BlocklistIndex()
        self._local = LocalIndex()
        #: Whether ``load`` built the index; offline tools (CLI imports) never match, so
        #: they skip keeping one.
        self._loaded = False
        self._index_thread = ThreadPoolExecutor(1, thread_name_prefix="index")
        # OpenCV's knnMatch and RANSAC release the GIL: on their own thread they run beside
        # the hash lookups instead of ahead of them.
        self._local_thread = ThreadPoolExecutor(1, thread_name_prefix="local")
        #: Held by a local search and by every change to the local index in use: a search
        #: must not see an index half changed (its matchers are rebuilt on change).
        self._local_lock = threading.Lock()
        # A reload and the changes applied from the store's notices take turns: a change
        # applied to an index that a reload is about to replace would be lost.
        self._changes_lock = asyncio.Lock()
        #: Told each chat a change from the store names (its cached state is stale).
        self._chat_listeners: list[Callable[[int], None]] = []

    def on_chat_change(self, listener: Callable[[int], None]) -> None:
        """Call ``listener`` with each chat id a change from the store names."""
        self._chat_listeners.append(listener)

    @property
    def index(self) -> BlocklistIndex:
        """The index now in use (``load`` swaps in a new one)."""
        return self._index

    @property
    def local(self) -> LocalIndex:
        """The local-features index now in use."""
        return self._local

    @property
    def loaded(self) -> bool:
        """Whether ``load`` built the index (offline tools skip it)."""
        return self._loaded

    def close(self) -> None:
        """Stop the index's thread once the work queued on it is done."""
        self._index_thread.shutdown(wait=True)
        self._local_thread.shutdown(wait=True)

    async def load(self) -> int:
        """Build the in-memory index from the store; returns the number of entries."""
        async with self._changes_lock:
            return await self._load()

    async def _load(self) -> int:
        # Compile the index's loops (or load them from numba's disk cache) now, not on the
        # first upload.
        await self.on_index(kernels.warm_up)
        builder = ColumnBuilder()
        await self._entry_store.load_index(builder)
        columns, entry_ids, bank_ids = await self.on_index(builder.finish)
        index = BlocklistIndex()
        await self.on_index(
            index.add_columns, columns, entry_ids, bank_ids, self._matcher.index_quality()
        )
        await self.on_index(index.prepare)
        features = await self._entry_store.entry_features()
        local = await self.on_index(_local_index, features)
        # Swapped in at once: checks running meanwhile use the old index to the end.
        self._index, self._local = index, local
        self._loaded = True
        own = await self._bank_store.bank_by_name(SELF_BANK_NAME)
        self._scope.self_bank = own.id if own is not None else None
        self._scope.blocked_operator_banks = tuple(
            b.id for b in await self._bank_store.list_banks(OPERATOR_BANK) if not b.follows_file
        )
        self._settings.forget()
        self._scope.banks_changed()
        log.info("index_loaded entries=%d", len(entry_ids))
        return len(entry_ids)

    async def apply_change(self, change: Change) -> None:
        """Take in a change committed to the store, by another process or this one
        (``Store.watch``); applying one twice changes nothing, since it re-reads the store."""
        async with self._changes_lock:
            await self._apply_change(change)

    async def _apply_change(self, change: Change) -> None:
        if change.resync:
            await self._load()
            return
        for chat_id in change.chats:
            self._settings.forget(chat_id)
            for listener in self._chat_listeners:
                listener(chat_id)
            self._scope.banks_changed(chat_id)
        if not change.entries:
            return
        features = {
            entry_id: data
            for entry_id, _, data in await self._entry_store.entry_features(list(change.entries))
        }
        for entry_id in change.entries:
            entry = await self._entry_store.get_entry(entry_id)
            # Removed first, so an entry this process indexed already is not doubled.
            await self.unindex(entry_id)
            if entry is None or not entry.active:
                continue
            await self.on_index(self._index.add_entry, self._matcher.indexable(entry))
            data = features.get(entry_id)
            if data is not None:
                try:
                    loaded = unpack(data)
                except ValueError as exc:
                    log.error("local_features_unreadable entry=%d error=%s", entry_id, exc)
                    continue
                await self.on_index(self._local_add, entry_id, entry.bank_id, loaded)
        log.info("index_changed entries=%d", len(change.entries))

    async def on_index(self, function: Callable[..., T], *args: Any) -> T:
        """Run an index operation on the index's own thread.

        Scanning a large blocklist takes long enough to stall every group if done on the
        event loop; one thread for every read and write keeps them ordered without locks.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._index_thread, functools.partial(function, *args))

    async def index_entry(self, entry: Entry, fingerprints: MediaFingerprints) -> None:
        """Make a new entry matchable: its hashes and its local features (a photo's, or a
        video's moments')."""
        await self.on_index(self._index.add_entry, self._matcher.indexable(entry))
        local = local_of(fingerprints)
        if local is not None:
            await self.on_index(self._local_add, entry.id, entry.bank_id, local)

    async def unindex(self, entry_id: int) -> None:
        """Make an entry unmatchable: out of both indexes."""
        await self.on_index(self._index.remove_entry, entry_id)
        await self.on_index(self._local_remove, entry_id)

    async def index_local(
        self, entry_id: int, bank_id: int, features: LocalFeatures | tuple[LocalFeatures, ...]
    ) -> None:
        """Make an entry's local features searchable (a photo's, or a video's moments)."""
        await self.on_index(self._local_add, entry_id, bank_id, features)

    def _local_add(
        self,
        entry_id: int,
        bank_id: int,
        features: LocalFeatures | tuple[LocalFeatures, ...],
    ) -> None:
        with self._local_lock:
            self._local.add(entry_id, bank_id, features)

    def _local_remove(self, entry_id: int) -> None:
        with self._local_lock:
            self._local.remove(entry_id)

    def index_size(self, chat_id: int | None = None) -> int:
        """Entries indexed: of the chat's own bank, or of every bank."""
        if chat_id is None:
            return self._index.size()
        bank_id = self._scope.own_banks.get(chat_id)
        return self._index.size(bank_id) if bank_id is not None else 0

    async def held_for_review(self, chat_id: int, match: Match) -> bool:
        """Whether a match goes to the admins' review instead of being acted on: local
        matches in a group that reviews them, and any local match against a self-submission
        or a photo matching a frame of a self-submitted video (nobody vetted what was
        submitted, and one frame of a video is a weak reason to delete a photo)."""
        if self.self_video_frame(match):
            return True
        if match.signal != LOCAL_SIGNAL:
            return False
        if self._scope.self_bank is not None and match.bank_id == self._scope.self_bank:
            return True
        return (await self._settings.get(chat_id)).local_match == "review"

    def self_video_frame(self, match: Match) -> bool:
        """A photo matching a self-submitted video's frame: a vPDQ match without the
        frame shares that only a video upload has."""
        return (
            self._scope.self_bank is not None
            and match.bank_id == self._scope.self_bank
            and match.signal == VPDQ.name
            and match.query_pct is None
        )

    @property
    def matcher(self) -> Matcher:
        """The matching rules (usable hashes, low detail) the index is built with."""
        return self._matcher

    async def known_match(self, chat_id: int, file_unique_id: str | None) -> Match | None:
        """A match by Telegram file id alone, without downloading the file."""
        if not file_unique_id:
            return None
        entry = await self._entry_store.entry_for_file(
            await self._scope.bank_ids(chat_id), file_unique_id
        )
        if entry is None or entry.id in await self._scope.exempted(chat_id):
            # An exempted entry: the file is hashed and checked against the other entries.
            return None
        return Match(
            entry_id=entry.id, signal="file", distance=0, by_file_id=True, bank_id=entry.bank_id
        )

    async def find_match(
        self, chat_id: int, fingerprints: MediaFingerprints, *, local: bool = True
    ) -> Match | None:
        """The best actionable blocklist match for these fingerprints, if any; without
        ``local``, by the hashes alone (the first stage of an upload's check)."""
        found = await self.matches(
            chat_id, fingerprints, include_phash=self._config.phash_auto_delete, local=local
        )
        # A vetted entry the photo matches acts before a self-submitted video's frame,
        # which only sends it to review (sorted stably: best first otherwise).
        found.sort(key=self.self_video_frame)
        return found[0] if found else None

    async def matches(
        self,
        chat_id: int,
        fingerprints: MediaFingerprints,
        *,
        include_phash: bool,
        local: bool = True,
    ) -> list[Match]:
        """Every entry these fingerprints match, best first (at most one per entry)."""
        return await self.matches_in(
            chat_id,
            await self._scope.bank_ids(chat_id),
            fingerprints,
            include_phash=include_phash,
            local=local,
        )

    async def matches_in(
        self,
        chat_id: int,
        bank_ids: tuple[int, ...],
        fingerprints: MediaFingerprints,
        *,
        include_phash: bool,
        local: bool = True,
    ) -> list[Match]:
        """Every entry of ``bank_ids`` these fingerprints match in this chat, best first
        (without ``local``, by the hashes alone)."""
        if not bank_ids:
            return []
        settings = await self._settings.get(chat_id)
        local_index = self._local if local and settings.local_match != "off" else None
        return await self.on_index(
            functools.partial(
                self._locked if local_index is not None else _call,
                self._matcher.matches,
                self._index,
                bank_ids,
                fingerprints,
                include_phash=include_phash,
                max_distance=settings.match_threshold,
                local=local_index,
                exclude=await self._scope.exempted(chat_id),
            )
        )

    async def find_local_match(self, chat_id: int, fingerprints: MediaFingerprints) -> Match | None:
        """The entry this chat's banks hold that the upload's local features show best
        (crops, tilts, screenshots), if any: the second stage of an upload's check, run on
        the local search's own thread."""
        bank_ids = await self._scope.bank_ids(chat_id)
        if not bank_ids or (await self._settings.get(chat_id)).local_match == "off":
            return None
        exclude = await self._scope.exempted(chat_id)
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(
            self._local_thread,
            functools.partial(self._search_local, bank_ids, fingerprints, exclude),
        )
        if not found:
            return None
        bank_id = await self.on_index(self._index.bank_of, found[0].entry_id)
        return replace(found[0], bank_id=bank_id or 0)

    def _locked(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``function`` holding the local index's lock (it searches the local index)."""
        with self._local_lock:
            return function(*args, **kwargs)

    def _search_local(
        self, bank_ids: tuple[int, ...], fingerprints: MediaFingerprints, exclude: frozenset[int]
    ) -> list[Match]:
        with self._local_lock:
            return self._matcher.local_matches(self._local, bank_ids, fingerprints, exclude)

    async def uses_regions(self, chat_id: int) -> bool:
        """Whether checking this chat's photos hashes the rectangles found inside them too:
        some bank it uses has entries without local features (imported hash lists, operator
        bank files, exports), which only a hash of the picture's own rectangle finds inside
        a border, a screenshot or a grid."""
        return needs_regions(
            self._config, self._index, self._local, await self._scope.bank_ids(chat_id)
        )

    async def uses_local_features(self, chat_id: int) -> bool:
        """Whether checking this chat's uploads looks at local features: local matching is
        on and some bank it uses holds photos that have them."""
        if not self._local.holds_any(await self._scope.bank_ids(chat_id)):
            return False
        return (await self._settings.get(chat_id)).local_match != "off"


def _call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return function(*args, **kwargs)


def features_of(fingerprints: MediaFingerprints) -> bytes | None:
    local = local_of(fingerprints)
    if isinstance(local, tuple):
        return pack_moments(local)
    return local.to_bytes() if local is not None else None


def local_of(
    fingerprints: MediaFingerprints,
) -> LocalFeatures | tuple[LocalFeatures, ...] | None:
    """What the local index keeps of a blocked item: a video's moments, or a photo's
    features (with its mirror image's, when it has them)."""
    if fingerprints.local is not None and fingerprints.local_mirror is not None:
        return (fingerprints.local, fingerprints.local_mirror)
    return fingerprints.moments or fingerprints.local


def _local_index(rows: list[tuple[int, int, bytes]]) -> LocalIndex:
    index = LocalIndex()
    loaded: list[tuple[int, int, tuple[LocalFeatures, ...]]] = []
    for entry_id, bank_id, data in rows:
        try:
            loaded.append((entry_id, bank_id, unpack(data)))
        except ValueError as exc:
            # One unreadable row costs that entry its crop matching, not the bot its start.
            log.error("local_features_unreadable entry=%d error=%s", entry_id, exc)
    index.add_many(loaded)
    return index
