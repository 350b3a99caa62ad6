"""Blocking and unblocking: a group's own bank, exemptions from other banks, notices.

An entry added here is indexed at once (``MatchingService.index_entry``), so it is matchable
before the call returns; every change is audited.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass

from bot.services.audit import AuditLog
from bot.services.matching import MatchingService, features_of, local_of
from bot.services.scope import Scope
from bot.values import Person
from hashdb.fingerprint import Fingerprint, MediaFingerprints
from hashdb.signals import PDQ, VPDQ, get_signal_type
from hashdb.store import (
    GROUP_BANK,
    AuditEvent,
    Bank,
    BankStore,
    Entry,
    EntryStore,
    NewEntry,
    group_bank_name,
)

log = logging.getLogger(__name__)


#: Groups exempting one entry before the operator is told (a log line, ``hashguard
#: case``): one group may judge a match wrongly, several doing so points at a bad entry.
EXEMPTION_FLAG_GROUPS = 3


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


class BlocklistService:
    """What admins add to and take out of the blocklist, through the entry and bank stores."""

    def __init__(
        self,
        entry_store: EntryStore,
        bank_store: BankStore,
        audit: AuditLog,
        scope: Scope,
        matching: MatchingService,
    ) -> None:
        self._entry_store = entry_store
        self._bank_store = bank_store
        self._audit = audit
        self._scope = scope
        self._matching = matching
        # Serialises "is it already blocked? then add it", so two admins blocking the same
        # image at once make one entry (and self-submissions are counted one at a time).
        self.lock = asyncio.Lock()
        # Messages admins just blocked by reply: a check of the same message that was still
        # running when the block landed must not warn its sender as for a re-upload.
        self._blocked_messages: collections.deque[tuple[int, int]] = collections.deque(maxlen=1024)

    def blocked_by_admin(self, chat_id: int, message_id: int) -> bool:
        """Whether an admin blocked this very message (so it is no re-upload)."""
        return (chat_id, message_id) in self._blocked_messages

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
        low_detail = self._matching.matcher.only_low_detail(fingerprints.stored)
        low_quality = not low_detail and not any(
            f.signal in (PDQ.name, VPDQ.name) and self._matching.matcher.usable(f)
            for f in fingerprints.stored
        )
        target = bank if bank is not None else await self._scope.own_bank(chat_id)
        if message_id is not None and bank is None:
            # Only an admin's /block of the message itself: adding it to a shared bank is
            # open to any curator and must not exempt a message from the check.
            self._blocked_messages.append((chat_id, message_id))
        async with self.lock:
            # The same Telegram file, or (photos) the same whole-image PDQ: already blocked.
            existing = (
                await self._entry_store.entry_for_file([target.id], file_unique_id)
                if file_unique_id
                else None
            ) or await self._identical_entry(target.id, fingerprints)
            if existing is None:
                entry = await self._entry_store.add_entry(
                    NewEntry(
                        chat_id=chat_id,
                        fingerprints=fingerprints.stored,
                        added_by=actor.id if actor else None,
                        reason=reason,
                        source=source,
                        file_unique_id=file_unique_id,
                        bank_id=target.id,
                        features=features_of(fingerprints),
                    ),
                    at=time.time(),
                )
                await self._matching.index_entry(entry, fingerprints)
        bank_note = "" if target.kind == GROUP_BANK else f"bank {target.name}"
        if existing is not None:
            if file_unique_id:
                await self._entry_store.remember_file(file_unique_id, existing.id)
            local, features = local_of(fingerprints), features_of(fingerprints)
            if (
                local is not None
                and features is not None
                and await self._entry_store.add_entry_features(existing.id, features)
            ):
                # Blocked before local features existed: blocking it again adds them.
                await self._matching.index_local(existing.id, existing.bank_id, local)
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
            if not (
                self._matching.matcher.usable(whole) or self._matching.matcher.low_detail(whole)
            ):
                return None
            hits = await self._matching.on_index(
                self._matching.index.query, [bank_id], [whole], {PDQ.name: 0}
            )
            for hit in hits:
                entry = await self._entry_store.get_entry(hit.entry_id)
                if entry is not None and entry.active:
                    return entry
            return None
        frame = next(
            (
                f
                for f in fingerprints.stored
                if f.signal == VPDQ.name and self._matching.matcher.usable(f)
            ),
            None,
        )
        if frame is None:
            return None
        hits = await self._matching.on_index(
            self._matching.index.query, [bank_id], [frame], {VPDQ.name: 0}
        )
        wanted = {(f.signal, f.value) for f in fingerprints.stored}
        for hit in hits:
            entry = await self._entry_store.get_entry(hit.entry_id)
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
        entries = await self._entry_store.bank_entries(bank.id)
        await self._matching.on_index(
            self._matching.index.add_entries, [self._matching.matcher.indexable(e) for e in entries]
        )
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
        bank = await self._scope.own_bank(chat_id)
        entry = await self._entry_store.add_entry(
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
        await self._matching.on_index(
            self._matching.index.add_entry, self._matching.matcher.indexable(entry)
        )
        await self._audit_admin(chat_id, "addhash", actor, entry, detail=reason)
        return entry

    async def unblock_entry(self, chat_id: int, entry_id: int, *, actor: Person) -> Entry | None:
        """Remove one entry of the chat's own bank."""
        own = await self._bank_store.bank_by_name(group_bank_name(chat_id))
        if own is None:
            return None
        removed = await self.remove(chat_id, own, [entry_id], actor)
        return removed[0] if removed else None

    async def unblock_or_exempt(self, chat_id: int, entry_id: int, *, actor: Person) -> Unblocked:
        """``/unblock <entry>`` in a group: an entry of its own bank is removed; an entry of
        another bank it uses (subscribed, the operator's, self-submitted) is exempted for
        this group only, since the group does not own it, and stays for everyone else."""
        removed = await self.unblock_entry(chat_id, entry_id, actor=actor)
        if removed is not None:
            return Unblocked("removed", removed)
        entry = await self._entry_store.get_entry(entry_id)
        if (
            entry is None
            or not entry.active
            or entry.bank_id not in await self._scope.bank_ids(chat_id)
        ):
            return Unblocked("none")
        bank = await self._bank_store.get_bank(entry.bank_id)
        if bank is None or bank.kind == GROUP_BANK:
            return Unblocked("none")
        now = time.time()
        if not await self._entry_store.set_exemption(
            chat_id, entry.id, exempt=True, by=actor.id, at=now
        ):
            return Unblocked("already_exempt", entry, bank)
        self._scope.banks_changed(chat_id)
        await self._audit_admin(
            chat_id, "exempt", actor, entry, detail=f"bank {bank.name}; this group only"
        )
        count = await self._entry_store.exemption_count(entry.id)
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
        if not await self._entry_store.set_exemption(
            chat_id, entry_id, exempt=False, by=actor.id, at=time.time()
        ):
            return False
        self._scope.banks_changed(chat_id)
        entry = await self._entry_store.get_entry(entry_id)
        if entry is not None:
            await self._audit_admin(chat_id, "unexempt", actor, entry, detail="applies here again")
        return True

    async def exemption_count(self, entry_id: int) -> int:
        """How many groups exempted the entry (for its curators and the operator)."""
        return await self._entry_store.exemption_count(entry_id)

    async def remember_notice(self, chat_id: int, message_id: int, entry_id: int) -> None:
        """Remember which entry a deletion notice of the bot is about."""
        await self._entry_store.remember_notice(chat_id, message_id, entry_id, at=time.time())

    async def notice_entry(self, chat_id: int, message_id: int) -> int | None:
        """The entry a deletion notice of the bot is about, if it was remembered."""
        return await self._entry_store.notice_entry(chat_id, message_id)

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
        own = await self._bank_store.bank_by_name(group_bank_name(chat_id))
        if own is None:
            return []
        ids: set[int] = set()
        if file_unique_id:
            known = await self._entry_store.entry_for_file([own.id], file_unique_id)
            if known is not None:
                ids.add(known.id)
        if fingerprints is not None:
            found = await self._matching.matches_in(
                chat_id, (own.id,), fingerprints, include_phash=True
            )
            ids.update(m.entry_id for m in found)
        return await self.remove(chat_id, own, sorted(ids), actor)

    async def remove(
        self, chat_id: int, bank: Bank, entry_ids: list[int], actor: Person | None
    ) -> list[Entry]:
        """Remove entries of a bank, take them out of the index and audit it (one row for a
        bulk removal)."""
        if not entry_ids:
            return []
        removed = await self._entry_store.remove_entries(
            bank.id, entry_ids, removed_by=actor.id if actor else None, at=time.time()
        )
        for entry in removed:
            await self._matching.unindex(entry.id)
        note = "" if bank.kind == GROUP_BANK else f"bank {bank.name}"
        if len(removed) > 20:
            # A bulk removal (an operator list shrinking) is one audit row, not thousands.
            await self._audit.add(
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
        await self._audit.add(
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
