"""The platform-neutral moderation core: check media, block, unblock, warn, audit.

Handlers call this service with fingerprints and ids; it decides, persists and answers with
plain values. It knows nothing of Telegram or HTTP. The in-memory index is built from the
store at start and updated on every block and unblock, so a new entry is matchable at once.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from bot.config import MatchingConfig, ModerationConfig, VideoConfig
from bot.settings import GroupSettings, parse_setting
from bot.settings import apply as apply_settings
from bot.settings import check_name as check_setting_name
from bot.settings import defaults as default_settings
from bot.settings import describe as describe_setting
from hashdb.fingerprint import Fingerprint, MediaFingerprints
from hashdb.index import BlocklistIndex, IndexHit
from hashdb.signals import PDQ, PHASH, VPDQ, get_signal_type
from hashdb.store import AuditEvent, ChatRecord, Entry, NewEntry, Report, Store
from hashdb.video import VIDEO_KIND
from hashdb.video_match import VideoComparison, VideoMatchRule, comparison_from_pairs

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Person:
    """Who acted or was acted on: a user, or a chat posting as itself (anonymous admin)."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Match:
    """Why an upload is considered blocked content."""

    entry_id: int
    signal: str
    #: Hamming distance of the closest fingerprint; 0 for a known Telegram file.
    distance: int
    #: True when Telegram's file_unique_id was already known, so nothing was downloaded.
    by_file_id: bool = False
    #: For videos: the share of the upload's frames found in the entry, and of the entry's
    #: frames found in the upload (vPDQ's two directions).
    query_pct: float | None = None
    compared_pct: float | None = None

    def describe(self) -> str:
        """A short note for the audit row."""
        if self.by_file_id:
            return "same Telegram file"
        if self.query_pct is None or self.compared_pct is None:
            return ""
        return f"frames: {self.query_pct:.0f}% of upload, {self.compared_pct:.0f}% of entry"


@dataclass(frozen=True, slots=True)
class BlockResult:
    entry: Entry
    #: False when an identical fingerprint was already blocked and that entry is returned.
    created: bool
    #: The image has too little detail for near-matching: only exact re-sends are caught.
    low_quality: bool = False


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
    ) -> None:
        self._store = store
        self._matching = matching
        self._moderation = moderation
        self._defaults = default_settings(matching, moderation)
        self._settings: dict[int, GroupSettings] = {}
        #: Called with every audit event once stored (the log chat posts it); its failures
        #: never affect the decision, which is already recorded.
        self.audit_listener: Callable[[AuditEvent], Coroutine[Any, Any, None]] | None = None
        self._listener_tasks: set[asyncio.Task[None]] = set()
        self._video = video
        self._video_rule = VideoMatchRule(
            query_pct=video.query_match_pct,
            compared_pct=video.compared_match_pct,
            min_frames=video.min_matched_frames,
        )
        self._index = BlocklistIndex()
        self._index_thread = ThreadPoolExecutor(1, thread_name_prefix="index")
        self._known_chats: set[int] = set()
        # Serialises "is it already blocked? then add it", so two admins blocking the same
        # image at once make one entry.
        self._block_lock = asyncio.Lock()
        self._reporter_locks: dict[tuple[str, int, int], asyncio.Lock] = {}
        # Messages admins just blocked by reply: a check of the same message that was still
        # running when the block landed must not warn its sender as for a re-upload.
        self._blocked_messages: collections.deque[tuple[int, int]] = collections.deque(maxlen=1024)

    @property
    def store(self) -> Store:
        return self._store

    async def load(self) -> int:
        """Build the in-memory index from the store; returns the number of entries."""
        entries = await self._store.active_entries()
        indexable = [self._indexable(e) for e in entries]
        self._index = await self._on_index(BlocklistIndex.build, indexable)
        log.info("index_loaded entries=%d", len(entries))
        return len(entries)

    async def _on_index(self, function: Callable[..., T], *args: Any) -> T:
        """Run an index operation on the index's own thread.

        Scanning a large blocklist takes long enough to stall every group if done on the
        event loop; one thread for every read and write keeps them ordered without locks.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._index_thread, functools.partial(function, *args))

    async def _audit(self, event: AuditEvent) -> int:
        event_id = await self._store.add_audit(event)
        if self.audit_listener is not None:
            task = asyncio.create_task(self.audit_listener(dataclasses.replace(event, id=event_id)))
            self._listener_tasks.add(task)
            task.add_done_callback(self._listener_tasks.discard)
        return event_id

    async def close(self) -> None:
        await asyncio.gather(*self._listener_tasks, return_exceptions=True)
        self._index_thread.shutdown(wait=True)

    def index_size(self, chat_id: int | None = None) -> int:
        return self._index.size(chat_id)

    # -- checking uploads --------------------------------------------------------------
    async def known_match(self, chat_id: int, file_unique_id: str | None) -> Match | None:
        """A match by Telegram file id alone, without downloading the file."""
        if not file_unique_id:
            return None
        entry = await self._store.entry_for_file(chat_id, file_unique_id)
        if entry is None:
            return None
        return Match(entry_id=entry.id, signal="file", distance=0, by_file_id=True)

    async def find_match(self, chat_id: int, fingerprints: MediaFingerprints) -> Match | None:
        """The best actionable blocklist match for these fingerprints, if any."""
        found = await self.matches(
            chat_id, fingerprints, include_phash=self._matching.phash_auto_delete
        )
        return found[0] if found else None

    async def matches(
        self, chat_id: int, fingerprints: MediaFingerprints, *, include_phash: bool
    ) -> list[Match]:
        """Every entry these fingerprints match, best first (at most one per entry)."""
        max_distance = (await self.settings(chat_id)).match_threshold
        return await self._on_index(
            self._matches, chat_id, fingerprints, include_phash, max_distance
        )

    def _matches(
        self,
        chat_id: int,
        fingerprints: MediaFingerprints,
        include_phash: bool,
        max_distance: int,
    ) -> list[Match]:
        if fingerprints.kind == VIDEO_KIND:
            return self._video_matches(chat_id, fingerprints, max_distance)
        hits = self._hits(
            chat_id, fingerprints, include_phash=include_phash, max_distance=max_distance
        )
        if self._video.frames_as_images:
            # A screenshot of a blocked video: the photo's orientations against its frames.
            frames = [_as(VPDQ.name, p) for p in fingerprints.probes if p.signal == PDQ.name]
            hits += self._index.query(
                chat_id,
                [f for f in frames if self._usable(f)],
                {VPDQ.name: max_distance},
            )
        # PDQ is the primary signal: prefer it (and video frames, which are PDQ) over pHash.
        hits.sort(key=lambda h: (h.signal == PHASH.name, h.distance, h.entry_id))
        result: list[Match] = []
        seen: set[int] = set()
        for hit in hits:
            if hit.entry_id not in seen:
                seen.add(hit.entry_id)
                result.append(
                    Match(entry_id=hit.entry_id, signal=hit.signal, distance=hit.distance)
                )
        return result

    def _video_matches(
        self, chat_id: int, fingerprints: MediaFingerprints, max_distance: int
    ) -> list[Match]:
        frames = [f for f in fingerprints.probes if self._usable(f)]
        if not frames:
            return []
        found: list[tuple[str, int, VideoComparison]] = [
            (VPDQ.name, entry_id, c)
            for entry_id, c in self._accepted(
                self._frame_comparisons(chat_id, VPDQ.name, frames, max_distance)
            )
        ]
        if self._video.frames_as_images:
            # A video showing a blocked photo (a slideshow, a screen recording). A photo
            # entry is a one-frame video, so one matching frame is as sure as a photo match.
            found += [
                (PDQ.name, entry_id, c)
                for entry_id, c in self._accepted(
                    self._frame_comparisons(chat_id, PDQ.name, frames, max_distance)
                )
            ]
        found.sort(key=lambda item: (-(item[2].query_pct + item[2].compared_pct), item[1]))
        return [
            Match(
                entry_id=entry_id,
                signal=signal,
                distance=comparison.best_distance or 0,
                query_pct=comparison.query_pct,
                compared_pct=comparison.compared_pct,
            )
            for signal, entry_id, comparison in found
        ]

    def _accepted(
        self, comparisons: list[tuple[int, VideoComparison]]
    ) -> list[tuple[int, VideoComparison]]:
        return [(entry_id, c) for entry_id, c in comparisons if self._video_rule.accepts(c)]

    def _frame_comparisons(
        self, chat_id: int, signal: str, frames: list[Fingerprint], max_distance: int
    ) -> list[tuple[int, VideoComparison]]:
        """Per entry of ``signal``, how the upload's frames and the entry's hashes met."""
        pairs = self._index.pairs(chat_id, signal, [f.value for f in frames], max_distance)
        by_entry: dict[int, list[tuple[int, int, int]]] = {}
        for probe, entry_id, group, distance in pairs:
            by_entry.setdefault(entry_id, []).append((probe, group, distance))
        return [
            (
                entry_id,
                comparison_from_pairs(
                    entry_pairs, len(frames), self._index.group_count(chat_id, signal, entry_id)
                ),
            )
            for entry_id, entry_pairs in sorted(by_entry.items())
        ]

    def _hits(
        self,
        chat_id: int,
        fingerprints: MediaFingerprints,
        *,
        include_phash: bool,
        max_distance: int,
    ) -> list[IndexHit]:
        probes = [p for p in fingerprints.probes if self._usable(p)]
        limits = {PDQ.name: max_distance}
        if include_phash:
            limits[PHASH.name] = self._matching.phash_max_distance
        if not probes:
            return []
        return self._index.query(chat_id, probes, limits)

    def _usable(self, fingerprint: Fingerprint) -> bool:
        # Featureless images (flat colour, tiny thumbnails) give PDQ hashes that sit close
        # to many unrelated ones; upstream discards quality < 50, and so do we for actions.
        if fingerprint.signal_type.has_quality:
            quality = fingerprint.quality if fingerprint.quality is not None else 0
            return quality >= self._matching.pdq_min_quality
        return True

    def _indexable(self, entry: Entry) -> Entry:
        kept = tuple(f for f in entry.fingerprints if self._usable(f))
        return (
            entry if kept == entry.fingerprints else dataclasses.replace(entry, fingerprints=kept)
        )

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
        file_unique_id: str | None,
        deleted: bool,
        detail: str = "",
        strike: bool = True,
        event: str | None = None,
    ) -> int | None:
        """Audit a matched upload; if it was deleted, add a strike and return the count.

        ``strike=False`` audits without a strike (further items of an album already struck).
        """
        now = time.time()
        await self._audit(
            AuditEvent(
                chat_id=chat_id,
                event=event or ("match_deleted" if deleted else "match_not_deleted"),
                target_id=sender.id,
                target_name=sender.name,
                message_id=message_id,
                entry_id=match.entry_id,
                signal=match.signal,
                distance=match.distance,
                detail="; ".join(part for part in (match.describe(), detail) if part)[:200],
                at=now,
            )
        )
        if file_unique_id and not match.by_file_id:
            await self._store.remember_file(file_unique_id, match.entry_id)
        if not deleted or not strike:
            return None
        return await self._store.add_strike(
            chat_id, sender.id, at=now, entry_id=match.entry_id, since=self._strikes_since(now)
        )

    async def record_skip(
        self, chat_id: int, *, message_id: int | None, sender: Person | None, detail: str
    ) -> None:
        """Audit media that could not be checked (corrupt, too large, too slow)."""
        await self._audit(
            AuditEvent(
                chat_id=chat_id,
                event="media_skipped",
                target_id=sender.id if sender else None,
                target_name=sender.name if sender else "",
                message_id=message_id,
                detail=detail[:200],
                at=time.time(),
            )
        )

    # -- admin actions -----------------------------------------------------------------
    async def block(
        self,
        chat_id: int,
        fingerprints: MediaFingerprints,
        *,
        actor: Person,
        reason: str,
        message_id: int | None,
        sender: Person | None,
        file_unique_id: str | None,
        note: str = "",
    ) -> BlockResult:
        """Add a media item's fingerprints to the chat's blocklist.

        ``note`` is added to the audit row (e.g. that only a thumbnail was fingerprinted).
        """
        low_quality = not any(
            f.signal in (PDQ.name, VPDQ.name) and self._usable(f) for f in fingerprints.stored
        )
        if message_id is not None:
            self._blocked_messages.append((chat_id, message_id))
        async with self._block_lock:
            # The same Telegram file, or (photos) the same whole-image PDQ: already blocked.
            existing = (
                await self._store.entry_for_file(chat_id, file_unique_id)
                if file_unique_id
                else None
            ) or await self._identical_entry(chat_id, fingerprints)
            if existing is None:
                entry = await self._store.add_entry(
                    NewEntry(
                        chat_id=chat_id,
                        fingerprints=fingerprints.stored,
                        added_by=actor.id,
                        reason=reason,
                        source="reply",
                        file_unique_id=file_unique_id,
                    ),
                    at=time.time(),
                )
                await self._on_index(self._index.add_entry, self._indexable(entry))
        if existing is not None:
            if file_unique_id:
                await self._store.remember_file(file_unique_id, existing.id)
            await self._audit_admin(
                chat_id,
                "block",
                actor,
                existing,
                sender=sender,
                message_id=message_id,
                detail="already blocked",
            )
            return BlockResult(entry=existing, created=False, low_quality=low_quality)
        await self._audit_admin(
            chat_id,
            "block",
            actor,
            entry,
            sender=sender,
            message_id=message_id,
            detail="; ".join(part for part in (reason, note) if part),
        )
        log.info("entry_blocked chat=%d entry=%d", chat_id, entry.id)
        return BlockResult(entry=entry, created=True, low_quality=low_quality)

    async def _identical_entry(self, chat_id: int, fingerprints: MediaFingerprints) -> Entry | None:
        whole = next((f for f in fingerprints.stored if f.signal == PDQ.name), None)
        if whole is None or not self._usable(whole):
            return None
        hits = await self._on_index(self._index.query, chat_id, [whole], {PDQ.name: 0})
        for hit in hits:
            entry = await self._store.get_entry(hit.entry_id)
            if entry is not None and entry.active:
                return entry
        return None

    async def add_hash(
        self, chat_id: int, algorithm: str, hash_text: str, *, actor: Person, reason: str
    ) -> Entry:
        """Add a raw hash; raises ``HashFormatError`` naming what is wrong."""
        signal = get_signal_type(algorithm)
        value = signal.parse(hash_text)
        # A raw hash carries no quality score; trust the admin who supplied it.
        quality = 100 if signal.has_quality else None
        entry = await self._store.add_entry(
            NewEntry(
                chat_id=chat_id,
                fingerprints=(Fingerprint(signal.name, value, quality),),
                added_by=actor.id,
                reason=reason,
                source="addhash",
            ),
            at=time.time(),
        )
        await self._on_index(self._index.add_entry, self._indexable(entry))
        await self._audit_admin(chat_id, "addhash", actor, entry, detail=reason)
        return entry

    async def unblock_entry(self, chat_id: int, entry_id: int, *, actor: Person) -> Entry | None:
        removed = await self._remove(chat_id, [entry_id], actor)
        return removed[0] if removed else None

    async def unblock_matching(
        self,
        chat_id: int,
        fingerprints: MediaFingerprints | None,
        *,
        actor: Person,
        file_unique_id: str | None,
    ) -> list[Entry]:
        """Remove every entry of the chat that this media matches, by PDQ or pHash.

        pHash counts here even when it cannot delete on its own: an admin asked for the
        entry to go, and a wider net only removes more of what they pointed at.
        """
        ids: set[int] = set()
        known = await self.known_match(chat_id, file_unique_id)
        if known is not None:
            ids.add(known.entry_id)
        if fingerprints is not None:
            found = await self.matches(chat_id, fingerprints, include_phash=True)
            ids.update(m.entry_id for m in found)
        return await self._remove(chat_id, sorted(ids), actor)

    async def _remove(self, chat_id: int, entry_ids: list[int], actor: Person) -> list[Entry]:
        if not entry_ids:
            return []
        removed = await self._store.remove_entries(
            chat_id, entry_ids, removed_by=actor.id, at=time.time()
        )
        for entry in removed:
            await self._on_index(self._index.remove_entry, entry.id)
            await self._audit_admin(chat_id, "unblock", actor, entry)
        return removed

    async def _audit_admin(
        self,
        chat_id: int,
        event: str,
        actor: Person,
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
                actor_id=actor.id,
                actor_name=actor.name,
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

    async def report_refusal(self, chat_id: int, reporter_id: int) -> str | None:
        """Why a member may not report now ("banned", "rate"), or None if they may."""
        if await self._store.is_report_banned(chat_id, reporter_id):
            return "banned"
        per_hour = self._moderation.report_rate_per_hour
        if per_hour:
            recent = await self._store.count_reports_since(chat_id, reporter_id, time.time() - 3600)
            if recent >= per_hour:
                return "rate"
        return None

    async def autohide_due(self, report: Report) -> bool:
        """Whether enough members reported this message to hide it now (claimed once)."""
        threshold = (await self.settings(report.chat_id)).report_autohide
        if not threshold or report.status != "open" or report.hidden:
            return False
        if len(report.reporters) < threshold:
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
        self, report: Report, *, block: bool, actor: Person
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
        if block and report.fingerprints:
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
        """Audit an escalation; once it is done, the member's strikes start again at zero."""
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
        if done:
            await self._store.clear_strikes(chat_id, target.id)

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
        """A group was upgraded to a supergroup: its blocklist follows it to the new id."""
        moved = await self._store.migrate_chat(old_chat_id, new_chat_id)
        self._settings.pop(old_chat_id, None)
        self._settings.pop(new_chat_id, None)
        self._known_chats.discard(old_chat_id)
        self._known_chats.add(new_chat_id)
        # The index follows in memory; a full rebuild only if the new id had entries too.
        if moved and not await self._on_index(self._index.move_chat, old_chat_id, new_chat_id):
            await self.load()
        log.info("chat_migrated old=%d new=%d entries=%d", old_chat_id, new_chat_id, moved)
        return moved


def _as(signal: str, fingerprint: Fingerprint) -> Fingerprint:
    """The same hash under another signal name (PDQ photo hash <-> vPDQ frame hash)."""
    return Fingerprint(signal, fingerprint.value, fingerprint.quality)
