"""The platform-neutral moderation core: check media, block, unblock, warn, audit.

Handlers call this service with fingerprints and ids; it decides, persists and answers with
plain values. It knows nothing of Telegram or HTTP. The in-memory index is built from the
store at start and updated on every block and unblock, so a new entry is matchable at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import logging
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bot.config import BanksConfig, MatchingConfig, ModerationConfig, VideoConfig
from bot.matcher import LOCAL_SIGNAL, Match, Matcher, needs_regions
from bot.settings import GroupSettings, parse_setting
from bot.settings import apply as apply_settings
from bot.settings import check_name as check_setting_name
from bot.settings import defaults as default_settings
from bot.settings import describe as describe_setting
from hashdb import kernels
from hashdb.fingerprint import Fingerprint, MediaFingerprints, SkipReason
from hashdb.index import BlocklistIndex, ColumnBuilder
from hashdb.local import LocalIndex
from hashdb.local_format import LocalFeatures, pack_moments, unpack
from hashdb.signals import PDQ, VPDQ, get_signal_type
from hashdb.store import (
    GROUP_BANK,
    OPERATOR_BANK,
    SELF_BANK,
    SELF_BANK_NAME,
    SHARED_BANK,
    AuditEvent,
    Bank,
    BankExistsError,
    Case,
    Change,
    ChatRecord,
    Entry,
    JobStep,
    MatchRecord,
    NewEntry,
    RecordedMatch,
    Report,
    Store,
    group_bank_name,
)
from hashdb.video import VIDEO_KIND, distinct_frames

if TYPE_CHECKING:
    from hashdb.lists import ListItem

__all__ = ["BankError", "Match", "ModerationService", "Person"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Groups exempting one entry before the operator is told (a log line, ``hashguard
#: case``): one group may judge a match wrongly, several doing so points at a bad entry.
EXEMPTION_FLAG_GROUPS = 3

#: Distinct frame hashes kept of one self-submitted video. Nobody vetted what was
#: submitted, so one submission must not plant thousands of hashes (each a chance to
#: match someone else's photo); 64 frames spread over the video still find its copies,
#: since a copy needs only a share of them (video.query_match_pct).
SELF_VIDEO_MAX_FRAMES = 64
#: Frames at most this PDQ distance from a frame already kept add nothing (a still scene,
#: a slideshow): they are dropped before the cap is applied.
SELF_VIDEO_FRAME_DISTANCE = 16


@dataclass(frozen=True, slots=True)
class Person:
    """Who acted or was acted on: a user, or a chat posting as itself (anonymous admin)."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class BlockResult:
    entry: Entry
    #: False when an identical fingerprint was already blocked and that entry is returned.
    created: bool
    #: The image has too little detail for near-matching: only exact re-sends are caught.
    low_quality: bool = False
    #: A low-detail photo (dark, blurred, smooth): re-encodes and resizes are caught by the
    #: tighter low-detail rule (``bot.matcher.dim_matches``), edited copies may not be.
    low_detail: bool = False


@dataclass(frozen=True, slots=True)
class Unblocked:
    """What ``/unblock <entry>`` did in a group."""

    #: "removed" (from the group's own bank), "exempted" (an entry of a bank the group
    #: uses: it stops matching in this group only), "already_exempt", or "none" (the
    #: group uses no active entry of that id).
    outcome: str
    entry: Entry | None = None
    bank: Bank | None = None


@dataclass(eq=False, slots=True)
class SubmissionClaim:
    """A self-submission counted toward its person's daily limit while it waits for
    hashing; ``held`` until it is stored or given up."""

    user_id: int
    held: bool = True


@dataclass(frozen=True, slots=True)
class RightsDecision:
    #: True exactly once per loss of rights: the admins should be told now.
    notify_admins: bool


class ModerationService:
    """Decisions about one deployment's groups, backed by a ``Store`` and an index."""

    def __init__(
        self,
        store: Store,
        matching: MatchingConfig,
        video: VideoConfig,
        moderation: ModerationConfig,
        banks: BanksConfig | None = None,
    ) -> None:
        self._store = store
        #: Import quotas; None (offline tools) imports without them.
        self._banks = banks
        self._matching = matching
        self._moderation = moderation
        self._defaults = default_settings(matching, moderation)
        self._settings: dict[int, GroupSettings] = {}
        #: Called with every audit event once stored (the log chat posts it); its failures
        #: never affect the decision, which is already recorded.
        self.audit_listener: Callable[[AuditEvent], Coroutine[Any, Any, None]] | None = None
        self._listener_tasks: set[asyncio.Task[None]] = set()
        self._video = video
        self._matcher = Matcher(matching, video)
        self._index = BlocklistIndex()
        self._local = LocalIndex()
        #: Whether ``load`` built the index; offline tools (CLI imports) never match, so
        #: they skip keeping one.
        self._loaded = False
        #: chat id -> the banks its uploads are checked against (its own, subscribed, the
        #: operator's and the self-submitted as its settings say).
        self._bank_sets: dict[int, tuple[int, ...]] = {}
        #: chat id -> the entries it exempted for itself (cached with the bank sets).
        self._exempt_sets: dict[int, frozenset[int]] = {}
        self._bank_generation = 0
        #: The operator banks of the list files the config names (``use_operator_banks``).
        self._operator_banks: tuple[int, ...] = ()
        #: Operator banks without a file, which ``hashguard block`` fills: they apply as
        #: the files' banks do, and are read again with every (re)load.
        self._blocked_operator_banks: tuple[int, ...] = ()
        #: chat id -> its own bank's id, once looked up.
        self._own_banks: dict[int, int] = {}
        self._self_bank: int | None = None
        self._index_thread = ThreadPoolExecutor(1, thread_name_prefix="index")
        self._known_chats: set[int] = set()
        # A reload and the changes applied from the store's notices take turns: a change
        # applied to an index that a reload is about to replace would be lost.
        self._changes_lock = asyncio.Lock()
        # Serialises "is it already blocked? then add it", so two admins blocking the same
        # image at once make one entry.
        self._block_lock = asyncio.Lock()
        self._reporter_locks: dict[tuple[str, int, int], asyncio.Lock] = {}
        # Messages admins just blocked by reply: a check of the same message that was still
        # running when the block landed must not warn its sender as for a re-upload.
        self._blocked_messages: collections.deque[tuple[int, int]] = collections.deque(maxlen=1024)
        #: Reports (chat, message, reporter) claimed and not yet recorded (being hashed).
        self._pending_reports: set[tuple[int, int, int]] = set()
        #: Per (chat, reporter), when in the last hour they sent a report that was not
        #: stored (a repeat, or one refused for a full queue): each counts toward the hourly
        #: limit all the same (in this process).
        self._attempts: dict[tuple[int, int], collections.deque[float]] = {}
        #: Per person, self-submissions claimed and not yet stored (queued or being hashed).
        self._pending_submissions: collections.Counter[int] = collections.Counter()

    @property
    def store(self) -> Store:
        return self._store

    async def load(self) -> int:
        """Build the in-memory index from the store; returns the number of entries."""
        async with self._changes_lock:
            return await self._load()

    async def _load(self) -> int:
        # Compile the index's loops (or load them from numba's disk cache) now, not on the
        # first upload.
        await self._on_index(kernels.warm_up)
        builder = ColumnBuilder()
        await self._store.load_index(builder)
        columns, entry_ids, bank_ids = await self._on_index(builder.finish)
        index = BlocklistIndex()
        await self._on_index(
            index.add_columns, columns, entry_ids, bank_ids, self._matcher.index_quality()
        )
        await self._on_index(index.prepare)
        features = await self._store.entry_features()
        local = await self._on_index(_local_index, features)
        # Swapped in at once: checks running meanwhile use the old index to the end.
        self._index, self._local = index, local
        self._loaded = True
        own = await self._store.bank_by_name(SELF_BANK_NAME)
        self._self_bank = own.id if own is not None else None
        self._blocked_operator_banks = tuple(
            b.id for b in await self._store.list_banks(OPERATOR_BANK) if not b.follows_file
        )
        self._settings.clear()
        self._banks_changed()
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
            self._settings.pop(chat_id, None)
            self._known_chats.discard(chat_id)
            self._banks_changed(chat_id)
        if not change.entries:
            return
        features = {
            entry_id: data
            for entry_id, _, data in await self._store.entry_features(list(change.entries))
        }
        for entry_id in change.entries:
            entry = await self._store.get_entry(entry_id)
            # Removed first, so an entry this process indexed already is not doubled.
            await self._unindex(entry_id)
            if entry is None or not entry.active:
                continue
            await self._on_index(self._index.add_entry, self._matcher.indexable(entry))
            data = features.get(entry_id)
            if data is not None:
                try:
                    loaded = unpack(data)
                except ValueError as exc:
                    log.error("local_features_unreadable entry=%d error=%s", entry_id, exc)
                    continue
                await self._on_index(self._local.add, entry_id, entry.bank_id, loaded)
        log.info("index_changed entries=%d", len(change.entries))

    async def _on_index(self, function: Callable[..., T], *args: Any) -> T:
        """Run an index operation on the index's own thread.

        Scanning a large blocklist takes long enough to stall every group if done on the
        event loop; one thread for every read and write keeps them ordered without locks.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._index_thread, functools.partial(function, *args))

    async def _index_entry(self, entry: Entry, fingerprints: MediaFingerprints) -> None:
        """Make a new entry matchable: its hashes and its local features (a photo's, or a
        video's moments')."""
        await self._on_index(self._index.add_entry, self._matcher.indexable(entry))
        local = _local_of(fingerprints)
        if local is not None:
            await self._on_index(self._local.add, entry.id, entry.bank_id, local)

    async def _unindex(self, entry_id: int) -> None:
        await self._on_index(self._index.remove_entry, entry_id)
        await self._on_index(self._local.remove, entry_id)

    async def _audit(self, event: AuditEvent) -> int:
        event_id = await self._store.add_audit(event)
        self._announce(event, event_id)
        return event_id

    def _announce(self, event: AuditEvent, event_id: int) -> None:
        """Pass a committed audit row to the listener (the log chat)."""
        if self.audit_listener is not None:
            task = asyncio.create_task(self.audit_listener(dataclasses.replace(event, id=event_id)))
            self._listener_tasks.add(task)
            task.add_done_callback(self._listener_tasks.discard)

    async def close(self) -> None:
        await asyncio.gather(*self._listener_tasks, return_exceptions=True)
        self._index_thread.shutdown(wait=True)

    def index_size(self, chat_id: int | None = None) -> int:
        """Entries indexed: of the chat's own bank, or of every bank."""
        if chat_id is None:
            return self._index.size()
        bank_id = self._own_banks.get(chat_id)
        return self._index.size(bank_id) if bank_id is not None else 0

    async def held_for_review(self, chat_id: int, match: Match) -> bool:
        """Whether a match goes to the admins' review instead of being acted on: local
        matches in a group that reviews them, and any local match against a self-submission
        or a photo matching a frame of a self-submitted video (nobody vetted what was
        submitted, and one frame of a video is a weak reason to delete a photo)."""
        if self._self_video_frame(match):
            return True
        if match.signal != LOCAL_SIGNAL:
            return False
        if self._self_bank is not None and match.bank_id == self._self_bank:
            return True
        return (await self.settings(chat_id)).local_match == "review"

    def _self_video_frame(self, match: Match) -> bool:
        """A photo matching a self-submitted video's frame: a vPDQ match without the
        frame shares that only a video upload has."""
        return (
            self._self_bank is not None
            and match.bank_id == self._self_bank
            and match.signal == VPDQ.name
            and match.query_pct is None
        )

    @property
    def matcher(self) -> Matcher:
        return self._matcher

    # -- which banks a chat uses ---------------------------------------------------------
    async def bank_ids(self, chat_id: int) -> tuple[int, ...]:
        """The banks this chat's uploads are checked against."""
        cached = self._bank_sets.get(chat_id)
        if cached is not None:
            return cached
        # Cached only if nothing changed the chat's banks while they were being read.
        generation = self._bank_generation
        settings = await self.settings(chat_id)
        ids: list[int] = []
        own = await self._store.bank_by_name(group_bank_name(chat_id))
        if own is not None:
            ids.append(own.id)
            self._own_banks[chat_id] = own.id
        ids += [b.id for b in await self._store.subscriptions(chat_id)]
        if settings.use_operator_banks:
            ids += self._operator_banks + self._blocked_operator_banks
        if settings.use_self_submitted and self._self_bank is not None:
            ids.append(self._self_bank)
        result = tuple(dict.fromkeys(ids))
        if generation == self._bank_generation:
            self._bank_sets[chat_id] = result
        return result

    def _banks_changed(self, chat_id: int | None = None) -> None:
        """Forget cached bank sets (one chat's, or all) after a change to them."""
        self._bank_generation += 1
        if chat_id is None:
            self._bank_sets.clear()
            self._exempt_sets.clear()
        else:
            self._bank_sets.pop(chat_id, None)
            self._exempt_sets.pop(chat_id, None)

    async def exempted(self, chat_id: int) -> frozenset[int]:
        """The entries this chat exempted: they match nowhere in it, whatever the bank."""
        cached = self._exempt_sets.get(chat_id)
        if cached is not None:
            return cached
        generation = self._bank_generation
        result = frozenset(await self._store.exempted_entries(chat_id))
        if generation == self._bank_generation:
            self._exempt_sets[chat_id] = result
        return result

    async def own_bank(self, chat_id: int) -> Bank:
        """The group's own bank (what /block fills), made on first use."""
        bank = await self._store.group_bank(chat_id, at=time.time())
        self._own_banks[chat_id] = bank.id
        if bank.id not in self._bank_sets.get(chat_id, (bank.id,)):
            self._banks_changed(chat_id)
        return bank

    # -- checking uploads --------------------------------------------------------------
    async def known_match(self, chat_id: int, file_unique_id: str | None) -> Match | None:
        """A match by Telegram file id alone, without downloading the file."""
        if not file_unique_id:
            return None
        entry = await self._store.entry_for_file(await self.bank_ids(chat_id), file_unique_id)
        if entry is None or entry.id in await self.exempted(chat_id):
            # An exempted entry: the file is hashed and checked against the other entries.
            return None
        return Match(
            entry_id=entry.id, signal="file", distance=0, by_file_id=True, bank_id=entry.bank_id
        )

    async def find_match(self, chat_id: int, fingerprints: MediaFingerprints) -> Match | None:
        """The best actionable blocklist match for these fingerprints, if any."""
        found = await self.matches(
            chat_id, fingerprints, include_phash=self._matching.phash_auto_delete
        )
        # A vetted entry the photo matches acts before a self-submitted video's frame,
        # which only sends it to review (sorted stably: best first otherwise).
        found.sort(key=self._self_video_frame)
        return found[0] if found else None

    async def matches(
        self, chat_id: int, fingerprints: MediaFingerprints, *, include_phash: bool
    ) -> list[Match]:
        """Every entry these fingerprints match, best first (at most one per entry)."""
        return await self._matches_in(
            chat_id, await self.bank_ids(chat_id), fingerprints, include_phash=include_phash
        )

    async def _matches_in(
        self,
        chat_id: int,
        bank_ids: tuple[int, ...],
        fingerprints: MediaFingerprints,
        *,
        include_phash: bool,
    ) -> list[Match]:
        if not bank_ids:
            return []
        settings = await self.settings(chat_id)
        return await self._on_index(
            functools.partial(
                self._matcher.matches,
                self._index,
                bank_ids,
                fingerprints,
                include_phash=include_phash,
                max_distance=settings.match_threshold,
                local=self._local if settings.local_match != "off" else None,
                exclude=await self.exempted(chat_id),
            )
        )

    async def uses_regions(self, chat_id: int) -> bool:
        """Whether checking this chat's photos hashes the rectangles found inside them too:
        some bank it uses has entries without local features (imported hash lists, operator
        bank files, exports), which only a hash of the picture's own rectangle finds inside
        a border, a screenshot or a grid."""
        return needs_regions(self._matching, self._index, self._local, await self.bank_ids(chat_id))

    async def uses_local_features(self, chat_id: int) -> bool:
        """Whether checking this chat's uploads looks at local features: local matching is
        on and some bank it uses holds photos that have them."""
        if not self._local.holds_any(await self.bank_ids(chat_id)):
            return False
        return (await self.settings(chat_id)).local_match != "off"

    def blocked_by_admin(self, chat_id: int, message_id: int) -> bool:
        """Whether an admin blocked this very message (so it is no re-upload)."""
        return (chat_id, message_id) in self._blocked_messages

    async def record_match(
        self,
        chat_id: int,
        match: Match,
        *,
        sender: Person,
        message_id: int,
        deleted: bool,
        detail: str = "",
        strike: bool = True,
        event: str | None = None,
        job: JobStep | None = None,
    ) -> RecordedMatch:
        """Audit a matched upload and, if it was deleted, add a strike (``strikes`` is the
        count then). ``strike=False`` audits without one (further items of an album already
        struck).

        One transaction, which (with ``job``) also marks the outbox job's step made with the
        results it decided from the strike count: after a crash the match is recorded with
        its decision, or not at all, and never twice."""
        now = time.time()
        bank = await self._bank_note(match.bank_id)
        striking = deleted and strike
        audit = AuditEvent(
            chat_id=chat_id,
            event=event or ("match_deleted" if deleted else "match_not_deleted"),
            target_id=sender.id,
            target_name=sender.name,
            message_id=message_id,
            entry_id=match.entry_id,
            signal=match.signal,
            distance=match.distance,
            detail="; ".join(part for part in (match.describe(), bank, detail) if part)[:200],
            at=now,
        )
        recorded = await self._store.record_match(
            MatchRecord(
                audit=audit,
                strike=striking,
                strikes_since=self._strikes_since(now) if striking else None,
                reset_at=await self._warn_limit(chat_id) if striking else None,
                job=job,
            )
        )
        if recorded.audit_id is not None:
            self._announce(audit, recorded.audit_id)
        return recorded

    async def _warn_limit(self, chat_id: int) -> int | None:
        """The strike count that escalates, if any: reaching it starts the count again (in
        the same transaction), so the escalation happens once however many processes add
        strikes at the same moment."""
        return (await self.settings(chat_id)).warn_limit or None

    async def record_deferred_delete(
        self, chat_id: int, message_ids: list[int], *, refused: str
    ) -> None:
        """Audit a deletion made (or refused) on a retry, after its match was audited."""
        await self._audit(
            AuditEvent(
                chat_id=chat_id,
                event="delete_failed" if refused else "delete_retried",
                message_id=message_ids[0] if message_ids else None,
                detail=(refused or f"{len(message_ids)} message(s) deleted on a retry")[:200],
                at=time.time(),
            )
        )

    async def record_skip(
        self, chat_id: int, *, message_id: int | None, sender: Person | None, reason: SkipReason
    ) -> None:
        """Audit media that could not be checked (corrupt, too large, too slow).

        Only the reason's code and plain text are kept: the decoder's own words can quote a
        file path holding the bot token, and the audit is shown in /logs and the log chat.
        """
        await self._audit(
            AuditEvent(
                chat_id=chat_id,
                event="media_skipped",
                target_id=sender.id if sender else None,
                target_name=sender.name if sender else "",
                message_id=message_id,
                detail=f"{reason.value}: {reason.text}",
                at=time.time(),
            )
        )

    async def _bank_note(self, bank_id: int) -> str:
        """ "bank NAME" for an audit row, unless it is a group's own bank."""
        if not bank_id:
            return ""
        bank = await self._store.get_bank(bank_id)
        if bank is None or bank.kind == GROUP_BANK:
            return ""
        return f"bank {bank.name}"

    # -- admin actions -----------------------------------------------------------------
    async def block(
        self,
        chat_id: int,
        fingerprints: MediaFingerprints,
        *,
        actor: Person | None,
        reason: str,
        message_id: int | None,
        sender: Person | None,
        file_unique_id: str | None,
        note: str = "",
        bank: Bank | None = None,
        source: str = "reply",
    ) -> BlockResult:
        """Add a media item's fingerprints to the chat's own bank (or to ``bank``).

        ``note`` is added to the audit row (e.g. that only a thumbnail was fingerprinted).
        ``actor`` None is the operator (``hashguard block``, ``source`` "cli").
        """
        low_detail = self._matcher.only_low_detail(fingerprints.stored)
        low_quality = not low_detail and not any(
            f.signal in (PDQ.name, VPDQ.name) and self._matcher.usable(f)
            for f in fingerprints.stored
        )
        target = bank if bank is not None else await self.own_bank(chat_id)
        if message_id is not None and bank is None:
            # Only an admin's /block of the message itself: adding it to a shared bank is
            # open to any curator and must not exempt a message from the check.
            self._blocked_messages.append((chat_id, message_id))
        async with self._block_lock:
            # The same Telegram file, or (photos) the same whole-image PDQ: already blocked.
            existing = (
                await self._store.entry_for_file([target.id], file_unique_id)
                if file_unique_id
                else None
            ) or await self._identical_entry(target.id, fingerprints)
            if existing is None:
                entry = await self._store.add_entry(
                    NewEntry(
                        chat_id=chat_id,
                        fingerprints=fingerprints.stored,
                        added_by=actor.id if actor else None,
                        reason=reason,
                        source=source,
                        file_unique_id=file_unique_id,
                        bank_id=target.id,
                        features=_features_of(fingerprints),
                    ),
                    at=time.time(),
                )
                await self._index_entry(entry, fingerprints)
        bank_note = "" if target.kind == GROUP_BANK else f"bank {target.name}"
        if existing is not None:
            if file_unique_id:
                await self._store.remember_file(file_unique_id, existing.id)
            local, features = _local_of(fingerprints), _features_of(fingerprints)
            if (
                local is not None
                and features is not None
                and await self._store.add_entry_features(existing.id, features)
            ):
                # Blocked before local features existed: blocking it again adds them.
                await self._on_index(self._local.add, existing.id, existing.bank_id, local)
            await self._audit_admin(
                chat_id,
                "block",
                actor,
                existing,
                sender=sender,
                message_id=message_id,
                detail="; ".join(part for part in ("already blocked", bank_note) if part),
            )
            return BlockResult(
                entry=existing, created=False, low_quality=low_quality, low_detail=low_detail
            )
        await self._audit_admin(
            chat_id,
            "block",
            actor,
            entry,
            sender=sender,
            message_id=message_id,
            detail="; ".join(part for part in (reason, note, bank_note) if part),
        )
        log.info("entry_blocked chat=%d bank=%d entry=%d", chat_id, target.id, entry.id)
        return BlockResult(
            entry=entry, created=True, low_quality=low_quality, low_detail=low_detail
        )

    async def _identical_entry(self, bank_id: int, fingerprints: MediaFingerprints) -> Entry | None:
        """An active entry of the bank with the same whole-image PDQ (a photo), or with the
        very same frame hashes (a video hashed again from the same file)."""
        whole = next((f for f in fingerprints.stored if f.signal == PDQ.name), None)
        if whole is not None:
            # A low-detail photo's hash is indexed too (the low-detail rule matches it), so
            # blocking the same file again finds it rather than adding a twin.
            if not (self._matcher.usable(whole) or self._matcher.low_detail(whole)):
                return None
            hits = await self._on_index(self._index.query, [bank_id], [whole], {PDQ.name: 0})
            for hit in hits:
                entry = await self._store.get_entry(hit.entry_id)
                if entry is not None and entry.active:
                    return entry
            return None
        frame = next(
            (f for f in fingerprints.stored if f.signal == VPDQ.name and self._matcher.usable(f)),
            None,
        )
        if frame is None:
            return None
        hits = await self._on_index(self._index.query, [bank_id], [frame], {VPDQ.name: 0})
        wanted = {(f.signal, f.value) for f in fingerprints.stored}
        for hit in hits:
            entry = await self._store.get_entry(hit.entry_id)
            if (
                entry is not None
                and entry.active
                and {(f.signal, f.value) for f in entry.fingerprints} == wanted
            ):
                return entry
        return None

    async def load_bank(self, bank: Bank) -> int:
        """Index one bank's entries, all a tool that only blocks into that bank needs
        (``hashguard block``: ``block`` finds what the bank holds already); returns how
        many."""
        entries = await self._store.bank_entries(bank.id)
        await self._on_index(self._index.add_entries, [self._matcher.indexable(e) for e in entries])
        return len(entries)

    async def add_hash(
        self, chat_id: int, algorithm: str, hash_text: str, *, actor: Person, reason: str
    ) -> Entry:
        """Add a raw hash to the chat's bank; raises ``HashFormatError`` naming what is
        wrong."""
        signal = get_signal_type(algorithm)
        value = signal.parse(hash_text)
        # A raw hash carries no quality score; trust the admin who supplied it.
        quality = 100 if signal.has_quality else None
        bank = await self.own_bank(chat_id)
        entry = await self._store.add_entry(
            NewEntry(
                chat_id=chat_id,
                fingerprints=(Fingerprint(signal.name, value, quality),),
                added_by=actor.id,
                reason=reason,
                source="addhash",
                bank_id=bank.id,
            ),
            at=time.time(),
        )
        await self._on_index(self._index.add_entry, self._matcher.indexable(entry))
        await self._audit_admin(chat_id, "addhash", actor, entry, detail=reason)
        return entry

    async def unblock_entry(self, chat_id: int, entry_id: int, *, actor: Person) -> Entry | None:
        """Remove one entry of the chat's own bank."""
        own = await self._store.bank_by_name(group_bank_name(chat_id))
        if own is None:
            return None
        removed = await self._remove(chat_id, own, [entry_id], actor)
        return removed[0] if removed else None

    async def unblock_or_exempt(self, chat_id: int, entry_id: int, *, actor: Person) -> Unblocked:
        """``/unblock <entry>`` in a group: an entry of its own bank is removed; an entry of
        another bank it uses (subscribed, the operator's, self-submitted) is exempted for
        this group only, since the group does not own it, and stays for everyone else."""
        removed = await self.unblock_entry(chat_id, entry_id, actor=actor)
        if removed is not None:
            return Unblocked("removed", removed)
        entry = await self._store.get_entry(entry_id)
        if entry is None or not entry.active or entry.bank_id not in await self.bank_ids(chat_id):
            return Unblocked("none")
        bank = await self._store.get_bank(entry.bank_id)
        if bank is None or bank.kind == GROUP_BANK:
            return Unblocked("none")
        now = time.time()
        if not await self._store.set_exemption(chat_id, entry.id, exempt=True, by=actor.id, at=now):
            return Unblocked("already_exempt", entry, bank)
        self._banks_changed(chat_id)
        await self._audit_admin(
            chat_id, "exempt", actor, entry, detail=f"bank {bank.name}; this group only"
        )
        count = await self._store.exemption_count(entry.id)
        log.info("entry_exempted chat=%d entry=%d groups=%d", chat_id, entry.id, count)
        if count == EXEMPTION_FLAG_GROUPS:
            # Crossed just now (each group exempts once): the operator hears it once.
            log.warning(
                "entry_exempted_widely entry=%d bank=%d groups=%d case=%s",
                entry.id,
                bank.id,
                count,
                entry.case_id,
            )
        return Unblocked("exempted", entry, bank)

    async def lift_exemption(self, chat_id: int, entry_id: int, *, actor: Person) -> bool:
        """``/block <entry>``: an entry the group exempted matches there again; False if
        it was not exempted."""
        if not await self._store.set_exemption(
            chat_id, entry_id, exempt=False, by=actor.id, at=time.time()
        ):
            return False
        self._banks_changed(chat_id)
        entry = await self._store.get_entry(entry_id)
        if entry is not None:
            await self._audit_admin(chat_id, "unexempt", actor, entry, detail="applies here again")
        return True

    async def exemption_count(self, entry_id: int) -> int:
        """How many groups exempted the entry (for its curators and the operator)."""
        return await self._store.exemption_count(entry_id)

    async def remember_notice(self, chat_id: int, message_id: int, entry_id: int) -> None:
        """Remember which entry a deletion notice of the bot is about."""
        await self._store.remember_notice(chat_id, message_id, entry_id, at=time.time())

    async def notice_entry(self, chat_id: int, message_id: int) -> int | None:
        return await self._store.notice_entry(chat_id, message_id)

    async def unblock_matching(
        self,
        chat_id: int,
        fingerprints: MediaFingerprints | None,
        *,
        actor: Person,
        file_unique_id: str | None,
    ) -> list[Entry]:
        """Remove every entry of the chat's own bank that this media matches: by PDQ, pHash
        or local features.

        pHash counts here even when it cannot delete on its own: an admin asked for the
        entry to go, and a wider net only removes more of what they pointed at.
        """
        own = await self._store.bank_by_name(group_bank_name(chat_id))
        if own is None:
            return []
        ids: set[int] = set()
        if file_unique_id:
            known = await self._store.entry_for_file([own.id], file_unique_id)
            if known is not None:
                ids.add(known.id)
        if fingerprints is not None:
            found = await self._matches_in(chat_id, (own.id,), fingerprints, include_phash=True)
            ids.update(m.entry_id for m in found)
        return await self._remove(chat_id, own, sorted(ids), actor)

    async def _remove(
        self, chat_id: int, bank: Bank, entry_ids: list[int], actor: Person | None
    ) -> list[Entry]:
        if not entry_ids:
            return []
        removed = await self._store.remove_entries(
            bank.id, entry_ids, removed_by=actor.id if actor else None, at=time.time()
        )
        for entry in removed:
            await self._unindex(entry.id)
        note = "" if bank.kind == GROUP_BANK else f"bank {bank.name}"
        if len(removed) > 20:
            # A bulk removal (an operator list shrinking) is one audit row, not thousands.
            await self._audit(
                AuditEvent(
                    chat_id=chat_id,
                    event="unblock",
                    actor_id=actor.id if actor else None,
                    actor_name=actor.name if actor else "",
                    detail=f"{len(removed)} entries; {note}"[:200],
                    at=time.time(),
                )
            )
        else:
            for entry in removed:
                await self._audit_admin(chat_id, "unblock", actor, entry, detail=note)
        return removed

    async def _audit_admin(
        self,
        chat_id: int,
        event: str,
        actor: Person | None,
        entry: Entry,
        *,
        sender: Person | None = None,
        message_id: int | None = None,
        detail: str = "",
    ) -> None:
        first = entry.fingerprints[0] if entry.fingerprints else None
        await self._audit(
            AuditEvent(
                chat_id=chat_id,
                event=event,
                actor_id=actor.id if actor else None,
                actor_name=actor.name if actor else "",
                target_id=sender.id if sender else None,
                target_name=sender.name if sender else "",
                message_id=message_id,
                entry_id=entry.id,
                signal=first.signal if first else None,
                detail=detail[:200],
                at=time.time(),
            )
        )

    async def audit_log(
        self, chat_id: int, limit: int, *, before_id: int | None = None
    ) -> list[AuditEvent]:
        return await self._store.recent_audit(chat_id, limit, before_id=before_id)

    # -- reports -----------------------------------------------------------------------
    async def report(
        self,
        chat_id: int,
        message_id: int,
        *,
        sender: Person | None,
        reporter: Person,
        reason: str,
        fingerprints: MediaFingerprints | None,
        file_unique_id: str | None,
    ) -> tuple[Report, bool]:
        """Record a member's report; returns it and whether this member is a new reporter."""
        now = time.time()
        report, new = await self._store.add_report(
            chat_id=chat_id,
            message_id=message_id,
            sender_id=sender.id if sender else None,
            sender_name=sender.name if sender else "",
            reporter_id=reporter.id,
            reason=reason[:200],
            fingerprints=fingerprints.stored if fingerprints else (),
            file_unique_id=file_unique_id,
            at=now,
        )
        if new:
            await self._audit(
                AuditEvent(
                    chat_id=chat_id,
                    event="report",
                    actor_id=reporter.id,
                    actor_name=reporter.name,
                    target_id=sender.id if sender else None,
                    target_name=sender.name if sender else "",
                    message_id=message_id,
                    detail=f"report #{report.id}; {reason}"[:200],
                    at=now,
                )
            )
        return report, new

    def reporter_lock(self, chat_id: int, reporter_id: int) -> asyncio.Lock:
        """Held while one member's report is checked and recorded, so a burst of reports
        from one member is counted against the hourly limit one by one."""
        return self.keyed_lock("reporter", chat_id, reporter_id)

    def keyed_lock(self, kind: str, chat_id: int, item: int) -> asyncio.Lock:
        """A lock for one (kind, chat, item), kept for the most recent 10,000 keys."""
        key = (kind, chat_id, item)
        lock = self._reporter_locks.pop(key, None) or asyncio.Lock()
        self._reporter_locks[key] = lock  # most recently used last
        while len(self._reporter_locks) > 10_000:
            oldest = next(iter(self._reporter_locks))
            if self._reporter_locks[oldest].locked():
                break
            del self._reporter_locks[oldest]
        return lock

    async def claim_report(self, chat_id: int, message_id: int, reporter_id: int) -> str | None:
        """Whether a member's report of a message goes ahead, decided before its media is
        fetched: "banned", "rate" (over ``report_rate_per_hour``), "repeat" (this member
        reported this message already; counted toward the limit all the same) or None.

        None claims the report until ``release_report``: reports being hashed count toward
        the limit, so a burst of reports cannot all pass the check before one is recorded.
        """
        async with self.reporter_lock(chat_id, reporter_id):
            refusal = await self.report_refusal(chat_id, reporter_id)
            if refusal is not None:
                return refusal
            key = (chat_id, message_id, reporter_id)
            if key in self._pending_reports or await self._store.has_reported(*key):
                self._count_attempt(chat_id, reporter_id)
                return "repeat"
            self._pending_reports.add(key)
            return None

    def release_report(
        self, chat_id: int, message_id: int, reporter_id: int, *, count: bool = False
    ) -> None:
        """A claimed report was recorded (the store counts it from now on), or given up;
        ``count`` counts one given up (the chat's queue was full) toward the limit all the
        same, so a flood of reports bounced off a full queue is not free."""
        self._pending_reports.discard((chat_id, message_id, reporter_id))
        if count:
            self._count_attempt(chat_id, reporter_id)

    def _count_attempt(self, chat_id: int, reporter_id: int) -> None:
        if not self._moderation.report_rate_per_hour:
            return  # no limit to count toward
        key = (chat_id, reporter_id)
        self._attempts.setdefault(key, collections.deque()).append(time.time())
        if len(self._attempts) > 10_000:
            del self._attempts[next(iter(self._attempts))]  # the longest known

    def _recent_attempts(self, chat_id: int, reporter_id: int, since: float) -> int:
        attempts = self._attempts.get((chat_id, reporter_id))
        if attempts is None:
            return 0
        while attempts and attempts[0] < since:
            attempts.popleft()
        if not attempts:
            del self._attempts[(chat_id, reporter_id)]
        return len(attempts)

    async def report_refusal(self, chat_id: int, reporter_id: int) -> str | None:
        """Why a member may not report now ("banned", "rate"), or None if they may."""
        if await self._store.is_report_banned(chat_id, reporter_id):
            return "banned"
        per_hour = self._moderation.report_rate_per_hour
        if per_hour:
            since = time.time() - 3600
            recent = await self._store.count_reports_since(chat_id, reporter_id, since)
            pending = sum(
                1 for c, _, r in self._pending_reports if (c, r) == (chat_id, reporter_id)
            )
            recent += pending + self._recent_attempts(chat_id, reporter_id, since)
            if recent >= per_hour:
                return "rate"
        return None

    async def autohide_due(
        self, report: Report, *, sender_is_admin: Callable[[], Awaitable[bool]]
    ) -> bool:
        """Whether enough members reported this message to hide it now (claimed once).

        An admin's message, or one posted as the group itself, is never hidden: reports of
        it wait for review like any other. A reporter counts only if the bot had seen them
        post in the group before the reported message: otherwise a few accounts made for the
        purpose could delete anything (their reports still go to review).
        ``sender_is_admin`` is asked only when the reporters would hide the message.
        """
        threshold = (await self.settings(report.chat_id)).report_autohide
        if not threshold or report.status != "open" or report.hidden:
            return False
        if report.sender_id == report.chat_id or len(report.reporters) < threshold:
            return False
        first = await self._store.first_posts(report.chat_id, report.reporters)
        established = [r for r in report.reporters if first.get(r, math.inf) < report.message_id]
        if len(established) < threshold or await sender_is_admin():
            return False
        return await self._store.mark_report_hidden(report.id)

    async def record_autohide(self, report: Report, *, deleted: bool) -> None:
        await self._audit(
            AuditEvent(
                chat_id=report.chat_id,
                event="report_autohidden" if deleted else "report_autohide_failed",
                target_id=report.sender_id,
                target_name=report.sender_name,
                message_id=report.message_id,
                detail=f"report #{report.id}; {len(report.reporters)} reporters",
                at=time.time(),
            )
        )

    async def ban_reporter(
        self, chat_id: int, target: Person, *, actor: Person, banned: bool
    ) -> bool:
        changed = await self._store.set_report_ban(
            chat_id, target.id, banned=banned, by=actor.id, at=time.time()
        )
        if changed:
            await self._audit(
                AuditEvent(
                    chat_id=chat_id,
                    event="reportban" if banned else "reportunban",
                    actor_id=actor.id,
                    actor_name=actor.name,
                    target_id=target.id,
                    target_name=target.name,
                    at=time.time(),
                )
            )
        return changed

    async def set_review_message(self, report_id: int, chat_id: int, message_id: int) -> None:
        await self._store.set_report_review(
            report_id, review_chat_id=chat_id, review_message_id=message_id
        )

    async def get_report(self, report_id: int) -> Report | None:
        return await self._store.get_report(report_id)

    async def decide_report(
        self, report: Report, *, block: bool, actor: Person, add_entry: bool = True
    ) -> tuple[bool, Entry | None]:
        """Close a report; with ``block``, its fingerprints join the blocklist.

        Returns whether this call decided it (False: someone already had) and the entry.
        """
        status = "blocked" if block else "dismissed"
        if not await self._store.decide_report(
            report.id, status=status, decided_by=actor.id, at=time.time()
        ):
            return False, None
        entry: Entry | None = None
        sender = Person(report.sender_id, report.sender_name) if report.sender_id else None
        if block and add_entry and report.fingerprints:
            kind = (
                VIDEO_KIND if any(f.signal == VPDQ.name for f in report.fingerprints) else "photo"
            )
            result = await self.block(
                report.chat_id,
                MediaFingerprints(kind, report.fingerprints, report.fingerprints, 0, 0),
                actor=actor,
                reason=f"report #{report.id}",
                message_id=report.message_id,
                sender=sender,
                file_unique_id=report.file_unique_id,
            )
            entry = result.entry
        await self._audit(
            AuditEvent(
                chat_id=report.chat_id,
                event=f"report_{status}",
                actor_id=actor.id,
                actor_name=actor.name,
                target_id=report.sender_id,
                target_name=report.sender_name,
                message_id=report.message_id,
                entry_id=entry.id if entry else None,
                detail=f"report #{report.id}",
                at=time.time(),
            )
        )
        return True, entry

    async def strike_for_report(self, report: Report, entry: Entry | None) -> int | None:
        """A strike for the sender of a message removed by a report decision."""
        if report.sender_id is None:
            return None
        now = time.time()
        return await self._store.add_strike(
            report.chat_id,
            report.sender_id,
            at=now,
            entry_id=entry.id if entry else None,
            since=self._strikes_since(now),
            reset_at=await self._warn_limit(report.chat_id),
        )

    # -- strikes and escalation --------------------------------------------------------
    def _strikes_since(self, now: float) -> float | None:
        days = self._moderation.strike_expiry_days
        return now - days * 86400 if days else None

    async def strikes(self, chat_id: int, user_id: int) -> int:
        """The member's strikes in the chat that still count."""
        return await self._store.strike_count(
            chat_id, user_id, since=self._strikes_since(time.time())
        )

    @staticmethod
    def escalation(settings: GroupSettings, strikes: int) -> str | None:
        """The action due at this many strikes ("ban", "kick", "mute"), if any."""
        if not settings.warn_limit or strikes < settings.warn_limit:
            return None
        return settings.warn_action

    # -- per-group settings ------------------------------------------------------------
    async def settings(self, chat_id: int) -> GroupSettings:
        """The group's settings: the config's defaults with the group's own changes."""
        cached = self._settings.get(chat_id)
        if cached is None:
            overrides = await self._store.chat_settings(chat_id)
            cached = self._settings[chat_id] = apply_settings(self._defaults, overrides)
        return cached

    async def change_setting(
        self, chat_id: int, name: str, text: str | None, *, actor: Person
    ) -> GroupSettings:
        """Set (or with None, reset to the default) one setting; raises ``ValueError``
        naming the key and the accepted values."""
        key = check_setting_name(name)
        stored = None if text is None else describe_setting(parse_setting(key, text))
        await self._store.set_chat_setting(chat_id, key, stored)
        self._settings.pop(chat_id, None)
        self._banks_changed(chat_id)
        await self._audit(
            AuditEvent(
                chat_id=chat_id,
                event="setting",
                actor_id=actor.id,
                actor_name=actor.name,
                detail=f"{key} = {stored if stored is not None else 'default'}",
                at=time.time(),
            )
        )
        return await self.settings(chat_id)

    @property
    def default_settings(self) -> GroupSettings:
        return self._defaults

    async def record_escalation(
        self, chat_id: int, target: Person, action: str, *, done: bool, detail: str = ""
    ) -> None:
        """Audit an escalation (the member's strikes started again at zero when the strike
        that reached the limit was added)."""
        await self._audit(
            AuditEvent(
                chat_id=chat_id,
                event=action if done else f"{action}_failed",
                target_id=target.id,
                target_name=target.name,
                detail=detail[:200],
                at=time.time(),
            )
        )

    async def reset_strikes(self, chat_id: int, target: Person, *, actor: Person) -> int:
        cleared = await self._store.clear_strikes(chat_id, target.id)
        await self._audit(
            AuditEvent(
                chat_id=chat_id,
                event="resetwarns",
                actor_id=actor.id,
                actor_name=actor.name,
                target_id=target.id,
                target_name=target.name,
                detail=f"{cleared} strike(s) cleared",
                at=time.time(),
            )
        )
        return cleared

    # -- chats and the bot's own rights ------------------------------------------------
    async def ensure_chat(self, chat_id: int, title: str) -> None:
        """Remember a group the bot works in (cached, so cheap per message)."""
        if chat_id in self._known_chats:
            return
        await self._store.upsert_chat(chat_id, title, at=time.time())
        self._known_chats.add(chat_id)

    async def chat(self, chat_id: int) -> ChatRecord | None:
        return await self._store.get_chat(chat_id)

    async def chats(self) -> list[ChatRecord]:
        return await self._store.list_chats()

    async def forget_chat(self, chat_id: int) -> None:
        self._known_chats.discard(chat_id)
        await self._store.forget_chat(chat_id)

    async def note_rights(
        self, chat_id: int, title: str, *, rights_ok: bool, missing: str = ""
    ) -> RightsDecision:
        """Record what rights the bot has; say whether admins must be told (once)."""
        await self.ensure_chat(chat_id, title)
        if rights_ok:
            await self._store.set_chat_rights(chat_id, rights_ok=True, notice_sent=False)
            return RightsDecision(notify_admins=False)
        if not await self._store.claim_rights_notice(chat_id):
            return RightsDecision(notify_admins=False)
        await self._audit(
            AuditEvent(chat_id=chat_id, event="rights_missing", detail=missing, at=time.time())
        )
        return RightsDecision(notify_admins=True)

    async def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> int:
        """A group was upgraded to a supergroup: its bank follows it to the new id."""
        # The bank keeps its id when renamed, so the index needs no change; only when the
        # new id already had a bank are the two merged, and then the index is rebuilt.
        merging = await self._store.bank_by_name(group_bank_name(new_chat_id)) is not None
        moved = await self._store.migrate_chat(old_chat_id, new_chat_id)
        for chat_id in (old_chat_id, new_chat_id):
            self._settings.pop(chat_id, None)
            self._banks_changed(chat_id)
            self._own_banks.pop(chat_id, None)
        self._known_chats.discard(old_chat_id)
        self._known_chats.add(new_chat_id)
        if moved and merging:
            await self.load()
        log.info("chat_migrated old=%d new=%d entries=%d", old_chat_id, new_chat_id, moved)
        return moved

    # -- banks ---------------------------------------------------------------------------
    async def create_bank(self, name: str, *, owner: Person, chat_id: int) -> Bank:
        """A new shared bank owned by ``owner``; ``BankError`` names what is wrong."""
        checked = check_bank_name(name)
        try:
            bank = await self._store.create_bank(
                checked, SHARED_BANK, owner_id=owner.id, at=time.time()
            )
        except BankExistsError:
            raise BankError(f"a bank named {checked!r} already exists; pick another name") from None
        await self._audit_bank(chat_id, "bank_create", owner, bank)
        return bank

    async def _audit_bank(
        self, chat_id: int, event: str, actor: Person, bank: Bank, *, target: Person | None = None
    ) -> None:
        await self._audit(
            AuditEvent(
                chat_id=chat_id,
                event=event,
                actor_id=actor.id,
                actor_name=actor.name,
                target_id=target.id if target else None,
                target_name=target.name if target else "",
                detail=f"bank {bank.name}",
                at=time.time(),
            )
        )

    async def find_bank(self, name: str) -> Bank:
        """A bank groups can subscribe to, by name; ``BankError`` if there is none."""
        bank = await self._store.bank_by_name(name.strip())
        if bank is None or bank.kind != SHARED_BANK:
            raise BankError(
                f"there is no shared bank named {name.strip()[:40]!r}; ask its owner for the "
                "exact name (they see it with /bank list in a private chat with me)"
            )
        return bank

    async def editable_bank(self, name: str, user_id: int) -> Bank:
        """A shared bank this user curates; ``BankError`` otherwise."""
        bank = await self.find_bank(name)
        if not bank.can_edit(user_id):
            raise BankError(
                f"only the owner of bank {bank.name!r} and the editors they add can change it"
            )
        return bank

    async def banks_of_user(self, user_id: int) -> list[Bank]:
        """Shared banks the user owns or edits."""
        return [b for b in await self._store.list_banks(SHARED_BANK) if b.can_edit(user_id)]

    async def subscriptions(self, chat_id: int) -> list[Bank]:
        return await self._store.subscriptions(chat_id)

    async def operator_banks(self) -> list[Bank]:
        return await self._store.list_banks(OPERATOR_BANK)

    async def bank_size(self, bank_id: int) -> int:
        return await self._store.count_active_entries(bank_id)

    async def subscribe(self, chat_id: int, bank: Bank, *, actor: Person, on: bool) -> bool:
        """Make the group use (or stop using) a shared bank; True if that changed."""
        if on:
            changed = await self._store.subscribe(chat_id, bank.id, by=actor.id, at=time.time())
        else:
            changed = await self._store.unsubscribe(chat_id, bank.id)
        self._banks_changed(chat_id)
        if changed:
            event = "bank_subscribe" if on else "bank_unsubscribe"
            await self._audit_bank(chat_id, event, actor, bank)
        return changed

    async def set_bank_editor(
        self, bank: Bank, target: Person, *, actor: Person, editor: bool, chat_id: int
    ) -> bool:
        """The owner adds or removes an editor; ``BankError`` for anyone else."""
        if actor.id != bank.owner_id:
            raise BankError(f"only the owner of bank {bank.name!r} can change its editors")
        changed = await self._store.set_bank_editor(
            bank.id, target.id, editor=editor, by=actor.id, at=time.time()
        )
        if changed:
            event = "bank_editor_add" if editor else "bank_editor_remove"
            await self._audit_bank(chat_id, event, actor, bank, target=target)
        return changed

    async def remove_from_bank(
        self, bank: Bank, entry_ids: list[int], *, actor: Person | None, chat_id: int
    ) -> list[Entry]:
        return await self._remove(chat_id, bank, entry_ids, actor)

    async def entry(self, entry_id: int) -> Entry | None:
        return await self._store.get_entry(entry_id)

    async def bank(self, bank_id: int) -> Bank | None:
        return await self._store.get_bank(bank_id)

    # -- import and export ----------------------------------------------------------------
    async def import_items(
        self,
        bank: Bank,
        items: list[ListItem],
        *,
        actor: Person | None,
        chat_id: int,
        origin: str,
        source: str = "import",
    ) -> ImportResult:
        """Add a parsed hash list to a bank; items already in it are skipped."""
        # One import per bank at a time, in this process and across processes sharing the
        # database: two at once would each miss the other's items.
        # One import per person at a time too: two at once (into two banks) would each
        # count the person's quota without the other.
        person: contextlib.AbstractAsyncContextManager[Any] = (
            self.keyed_lock("import-person", 0, actor.id) if actor else contextlib.nullcontext()
        )
        async with (
            person,
            self.keyed_lock("import", 0, bank.id),
            self._store.bank_lock(bank.id),
        ):
            ids = await self._import(bank, items, actor, chat_id, origin, source)
        await self._audit(
            AuditEvent(
                chat_id=chat_id,
                event="import",
                actor_id=actor.id if actor else None,
                actor_name=actor.name if actor else "",
                detail=f"{len(ids)} entries into bank {bank.name} from {origin}"[:200],
                at=time.time(),
            )
        )
        log.info("bank_imported bank=%d added=%d skipped=%d", bank.id, len(ids),
                 len(items) - len(ids))  # fmt: skip
        return ImportResult(added=len(ids), already=len(items) - len(ids))

    async def _import(
        self,
        bank: Bank,
        items: list[ListItem],
        actor: Person | None,
        chat_id: int,
        origin: str,
        source: str,
    ) -> range:
        keys = await self._bank_keys(bank.id)
        known = set(keys.values())
        # A large list takes a second or more to sift and index: off the event loop.
        fresh = await asyncio.to_thread(_new_items, items, known, origin)
        now = time.time()
        added_by = actor.id if actor else None
        if actor is not None and fresh:
            await self._check_import_quota(bank, len(keys), len(fresh), actor, now)
        ids = await self._store.add_list(
            bank.id, fresh, chat_id=chat_id, added_by=added_by, source=source, at=now
        )
        if ids and self._loaded:
            entries = functools.partial(
                _list_entries, ids, fresh, bank.id, chat_id, added_by, source, now
            )
            await self._on_index(
                lambda: self._index.add_entries(self._matcher.indexable(e) for e in entries())
            )
        return ids

    async def _check_import_quota(
        self, bank: Bank, held: int, adding: int, actor: Person, now: float
    ) -> None:
        """Refuse, before anything is stored, an import by a person past the bank's size
        limit or the person's daily import limit; the operator's own loads have none."""
        if self._banks is None:
            return
        cap = self._banks.max_bank_entries
        if cap and held + adding > cap:
            log.info(
                "import_refused bank=%d actor=%d limit=bank adding=%d", bank.id, actor.id, adding
            )
            raise BankError(
                f"nothing was imported: {adding} new entries would bring "
                f"{_bank_label(bank)} to {held + adding}, over its limit of {cap} "
                "(banks.max_bank_entries)"
            )
        per_day = self._banks.import_items_per_day
        if per_day:
            done = await self._store.count_imported_since(actor.id, now - 86400)
            if done + adding > per_day:
                log.info(
                    "import_refused bank=%d actor=%d limit=person adding=%d",
                    bank.id,
                    actor.id,
                    adding,
                )
                raise BankError(
                    f"nothing was imported: you imported {done} entries in the last 24 hours "
                    f"and this list adds {adding}, over the limit of {per_day} per person per "
                    "day (banks.import_items_per_day)"
                )

    async def _bank_keys(self, bank_id: int) -> dict[int, object]:
        """Each active entry of the bank, as the key ``_item_key`` gives its fingerprints."""
        return await asyncio.to_thread(_keys_by_entry, await self._store.bank_hashes(bank_id))

    async def export_entries(self, bank: Bank) -> list[Entry]:
        return await self._store.bank_entries(bank.id)

    async def operator_bank(self, name: str, path: str) -> Bank:
        """The operator bank of a list file, made on first use."""
        bank = await self._store.bank_by_name(name)
        if bank is None:
            with contextlib.suppress(BankExistsError):
                await self._store.create_bank(
                    name, OPERATOR_BANK, owner_id=None, at=time.time(), source=path
                )
            bank = await self._store.bank_by_name(name)
            assert bank is not None
        if bank.kind != OPERATOR_BANK:
            raise BankError(f"bank name {name!r} is taken by a {bank.kind} bank")
        return bank

    def use_operator_banks(self, bank_ids: tuple[int, ...]) -> None:
        """The operator banks groups use: those of the files the config names now (a file
        dropped from the config stops matching, though its bank stays in the database)."""
        if bank_ids != self._operator_banks:
            self._operator_banks = bank_ids
            self._banks_changed()

    async def sync_operator_bank(
        self, bank: Bank, path: str, items: list[ListItem], *, removals: bool = True
    ) -> SyncResult:
        """Make an operator bank hold the items of its file: new ones are added and, with
        ``removals``, entries no longer in the file are removed."""
        removed: list[Entry] = []
        if removals:
            existing = await self._bank_keys(bank.id)
            stale = await asyncio.to_thread(_stale_entries, existing, items)
            removed = await self._remove(0, bank, stale, None)
        result = await self.import_items(
            bank, items, actor=None, chat_id=0, origin=Path(path).name, source="file"
        )
        return SyncResult(bank=bank, added=result.added, removed=len(removed))

    # -- self-submission ------------------------------------------------------------------
    async def accept_self_submission(self, user_id: int) -> None:
        await self._store.accept_self_submission(user_id, at=time.time())

    async def self_submission_accepted(self, user_id: int) -> bool:
        return await self._store.self_submission_accepted(user_id)

    async def self_submission_refusal(
        self, user_id: int, per_day: int, *, claim: SubmissionClaim | None = None
    ) -> str | None:
        """Why the person may not submit now ("rate"), or None. Submissions claimed and not
        yet stored count toward ``per_day`` too, except ``claim`` (the one asking)."""
        if not per_day:
            return None
        own = 1 if claim is not None and claim.held else 0
        # Read before the stored count: a claim stored and released meanwhile is then
        # counted twice (a refusal on the safe side), never missed.
        pending = self._pending_submissions[user_id] - own
        if await self._store.count_cases_since(user_id, time.time() - 86400) + pending >= per_day:
            return "rate"
        return None

    async def claim_self_submission(self, user_id: int, per_day: int) -> SubmissionClaim | None:
        """Count a self-submission toward ``per_day`` before its media is fetched; None
        when the person is over the limit (stored and claimed items together).

        The claim holds until ``self_submit`` stores the item or ``release_self_submission``
        gives it up, so a burst of media cannot all pass the check while none is stored yet.
        """
        async with self.keyed_lock("self_submission", 0, user_id):
            if await self.self_submission_refusal(user_id, per_day):
                return None
            self._pending_submissions[user_id] += 1
            return SubmissionClaim(user_id)

    def release_self_submission(self, claim: SubmissionClaim) -> None:
        """A claimed self-submission was stored or given up; releasing twice is harmless,
        so callers release in ``finally`` whatever happened."""
        if not claim.held:
            return
        claim.held = False
        self._pending_submissions[claim.user_id] -= 1
        if self._pending_submissions[claim.user_id] <= 0:
            del self._pending_submissions[claim.user_id]

    async def self_submit(
        self,
        person: Person,
        fingerprints: MediaFingerprints,
        *,
        per_day: int = 0,
        claim: SubmissionClaim | None = None,
    ) -> Case | None:
        """Add a person's own media's fingerprints to the self-submission bank; None when
        they already submitted ``per_day`` items in the last 24 hours (0: no limit).
        ``claim`` (from ``claim_self_submission``) is released once the case is stored."""
        bank = await self._self_submission_bank()
        now = time.time()
        stored = fingerprints.stored
        if fingerprints.kind == VIDEO_KIND:
            # Thousands of frames take a moment to compare: off the event loop.
            stored = await asyncio.to_thread(
                functools.partial(
                    distinct_frames,
                    stored,
                    within=SELF_VIDEO_FRAME_DISTANCE,
                    at_most=SELF_VIDEO_MAX_FRAMES,
                )
            )
        async with self._block_lock:
            # Counted again under the lock: an album arrives as several updates at once.
            if await self.self_submission_refusal(person.id, per_day, claim=claim):
                return None
            case, entry = await self._store.add_case(
                person.id,
                new_case_code(),
                fingerprints.kind,
                NewEntry(
                    chat_id=0,
                    fingerprints=stored,
                    added_by=person.id,
                    source="self",
                    bank_id=bank.id,
                    features=_features_of(fingerprints),
                ),
                at=now,
            )
            if claim is not None:
                # Stored: the store counts it from now on. Released under the lock, so the
                # check of another item sees it as pending or as stored, never as neither.
                self.release_self_submission(claim)
            await self._index_entry(entry, fingerprints)
        await self._audit(
            AuditEvent(
                chat_id=0,
                event="self_submit",
                actor_id=person.id,
                entry_id=entry.id,
                detail=f"case {case.code}",
                at=now,
            )
        )
        return case

    async def _self_submission_bank(self) -> Bank:
        bank = await self._store.bank_by_name(SELF_BANK_NAME)
        if bank is None:
            with contextlib.suppress(BankExistsError):
                await self._store.create_bank(
                    SELF_BANK_NAME, SELF_BANK, owner_id=None, at=time.time()
                )
            bank = await self._store.bank_by_name(SELF_BANK_NAME)
            assert bank is not None
        if self._self_bank != bank.id:
            self._self_bank = bank.id
            self._banks_changed()
        return bank

    async def user_cases(self, user_id: int) -> list[Case]:
        return await self._store.user_cases(user_id)

    async def case(self, code: str) -> Case | None:
        return await self._store.get_case(normalize_case_code(code))

    async def set_case_status(
        self, code: str, status: str, *, actor_id: int | None, user_id: int | None = None
    ) -> Case:
        """Withdraw (the person), suspend or resume (the operator) a case.

        With ``user_id``, only that person's own case can change; ``BankError`` otherwise.
        """
        case = await self.case(code)
        if case is None or (user_id is not None and case.user_id != user_id):
            raise BankError(
                f"there is no case {code.strip()!r} of yours; /mycases lists your case codes"
                if user_id is not None
                else f"there is no case {code.strip()!r}"
            )
        if case.status == "withdrawn" and status != "withdrawn":
            raise BankError(f"case {case.code} was withdrawn by its submitter; it stays withdrawn")
        entries = await self._store.set_case_status(case.code, status, at=time.time())
        # Every entry of the case, whatever the database said before: a case suspended
        # offline (by the CLI) must still stop matching here when the person withdraws it.
        features = {
            entry_id: data
            for entry_id, _, data in await self._store.entry_features([e.id for e in entries])
        }
        for entry in entries:
            if entry.active:
                await self._on_index(self._index.add_entry, self._matcher.indexable(entry))
                if entry.id in features:
                    moments = unpack(features[entry.id])
                    await self._on_index(self._local.add, entry.id, entry.bank_id, moments)
            else:
                await self._unindex(entry.id)
        await self._audit(
            AuditEvent(
                chat_id=0,
                event=f"case_{status}",
                actor_id=actor_id,
                detail=f"case {case.code}",
                at=time.time(),
            )
        )
        updated = await self._store.get_case(case.code)
        assert updated is not None
        return updated


class BankError(ValueError):
    """A bank or case request that cannot be done; the message says why, for the user."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    added: int
    #: Items that were already in the bank (or repeated in the list).
    already: int


@dataclass(frozen=True, slots=True)
class SyncResult:
    bank: Bank
    added: int
    removed: int


_BANK_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{2,31}")


def check_bank_name(name: str) -> str:
    """A shared bank's name, lowercased; ``BankError`` says what names are accepted."""
    checked = name.strip().lower()
    if not _BANK_NAME.fullmatch(checked) or checked == SELF_BANK_NAME:
        raise BankError(
            f"bank name {name.strip()[:40]!r} is not accepted; use 3 to 32 characters: "
            f"a-z, 0-9, '-' and '_', starting with a letter or digit"
            + (f" ({SELF_BANK_NAME!r} is reserved)" if checked == SELF_BANK_NAME else "")
        )
    return checked


#: Case codes avoid look-alike characters (0/O, 1/I/L) so people can copy them by hand.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def new_case_code() -> str:
    """A random code like ``HG-7KQ2-M9XD`` (40 bits: unguessable, short enough to type)."""
    chars = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
    return f"HG-{chars[:4]}-{chars[4:]}"


def normalize_case_code(text: str) -> str:
    compact = "".join(c for c in text.upper() if c.isalnum())
    if compact.startswith("HG"):
        compact = compact[2:]
    return f"HG-{compact[:4]}-{compact[4:]}" if len(compact) == 8 else text.strip().upper()


def _bank_label(bank: Bank) -> str:
    return "this group's bank" if bank.kind == GROUP_BANK else f"bank {bank.name!r}"


def _features_of(fingerprints: MediaFingerprints) -> bytes | None:
    local = _local_of(fingerprints)
    if isinstance(local, tuple):
        return pack_moments(local)
    return local.to_bytes() if local is not None else None


def _local_of(
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


def _stale_entries(existing: dict[int, object], items: list[ListItem]) -> list[int]:
    """Entries whose fingerprints none of the items has."""
    wanted = {_item_key(item.fingerprints) for item in items}
    return [entry_id for entry_id, key in existing.items() if key not in wanted]


def _keys_by_entry(hashes: list[tuple[int, str, int]]) -> dict[int, object]:
    grouped: dict[int, list[tuple[str, int]]] = {}
    for entry_id, signal, value in hashes:
        grouped.setdefault(entry_id, []).append((signal, value))
    return {entry_id: _key(pairs) for entry_id, pairs in grouped.items()}


def _new_items(
    items: list[ListItem], known: set[object], origin: str
) -> list[tuple[tuple[Fingerprint, ...], str, str]]:
    """The items not in ``known`` (nor repeated), as ``Store.add_list`` takes them."""
    fresh: list[tuple[tuple[Fingerprint, ...], str, str]] = []
    for item in items:
        key = _item_key(item.fingerprints)
        if key in known:
            continue
        known.add(key)
        label = origin if not item.label else f"{origin}: {item.label}"
        fresh.append((item.fingerprints, item.reason, label[:200]))
    return fresh


def _list_entries(
    ids: range,
    fresh: list[tuple[tuple[Fingerprint, ...], str, str]],
    bank_id: int,
    chat_id: int,
    added_by: int | None,
    source: str,
    at: float,
) -> list[Entry]:
    return [
        Entry(
            id=entry_id,
            chat_id=chat_id,
            fingerprints=fingerprints,
            added_by=added_by,
            added_at=at,
            reason=reason,
            source=source,
            bank_id=bank_id,
            origin=label,
        )
        for entry_id, (fingerprints, reason, label) in zip(ids, fresh, strict=True)
    ]


def _item_key(fingerprints: tuple[Fingerprint, ...]) -> object:
    """What makes two items the same: their set of (signal, value) pairs."""
    return _key([(f.signal, f.value) for f in fingerprints])


def _key(pairs: list[tuple[str, int]]) -> object:
    # Most list items are one PDQ hash: skip building a set for each of a million.
    return pairs[0] if len(pairs) == 1 else frozenset(pairs)
