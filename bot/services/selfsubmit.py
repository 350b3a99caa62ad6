"""Self-submission: people add their own media to the self-submission bank, as cases."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import secrets
import time
from dataclasses import dataclass

from bot.services.audit import AuditLog
from bot.services.blocklist import BlocklistService
from bot.services.locks import KeyedLocks
from bot.services.matching import MatchingService, features_of
from bot.services.scope import Scope
from bot.values import BankError, Person
from hashdb.fingerprint import MediaFingerprints
from hashdb.local_format import unpack
from hashdb.store import (
    SELF_BANK,
    SELF_BANK_NAME,
    AuditEvent,
    Bank,
    BankExistsError,
    BankStore,
    Case,
    CaseStore,
    EntryStore,
    NewEntry,
)
from hashdb.video import VIDEO_KIND, distinct_frames

#: Distinct frame hashes kept of one self-submitted video. Nobody vetted what was
#: submitted, so one submission must not plant thousands of hashes (each a chance to
#: match someone else's photo); 64 frames spread over the video still find its copies,
#: since a copy needs only a share of them (video.query_match_pct).
SELF_VIDEO_MAX_FRAMES = 64


#: Frames at most this PDQ distance from a frame already kept add nothing (a still scene,
#: a slideshow): they are dropped before the cap is applied.
SELF_VIDEO_FRAME_DISTANCE = 16


@dataclass(eq=False, slots=True)
class SubmissionClaim:
    """A self-submission counted toward its person's daily limit while it waits for
    hashing; ``held`` until it is stored or given up."""

    user_id: int
    held: bool = True


class SelfSubmissionService:
    """Cases through a ``CaseStore``; each case's entries go to the self-submission bank."""

    def __init__(
        self,
        case_store: CaseStore,
        bank_store: BankStore,
        entry_store: EntryStore,
        audit: AuditLog,
        scope: Scope,
        matching: MatchingService,
        blocklist: BlocklistService,
        locks: KeyedLocks,
    ) -> None:
        self._case_store = case_store
        self._bank_store = bank_store
        self._entry_store = entry_store
        self._audit = audit
        self._scope = scope
        self._matching = matching
        self._blocklist = blocklist
        self._locks = locks
        #: Per person, self-submissions claimed and not yet stored (queued or being hashed).
        self._pending_submissions: collections.Counter[int] = collections.Counter()

    async def accept_self_submission(self, user_id: int) -> None:
        """Record that the person accepted the self-submission terms."""
        await self._case_store.accept_self_submission(user_id, at=time.time())

    async def self_submission_accepted(self, user_id: int) -> bool:
        """Whether the person accepted the self-submission terms."""
        return await self._case_store.self_submission_accepted(user_id)

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
        if (
            await self._case_store.count_cases_since(user_id, time.time() - 86400) + pending
            >= per_day
        ):
            return "rate"
        return None

    async def claim_self_submission(self, user_id: int, per_day: int) -> SubmissionClaim | None:
        """Count a self-submission toward ``per_day`` before its media is fetched; None
        when the person is over the limit (stored and claimed items together).

        The claim holds until ``self_submit`` stores the item or ``release_self_submission``
        gives it up, so a burst of media cannot all pass the check while none is stored yet.
        """
        async with self._locks.lock("self_submission", 0, user_id):
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
        async with self._blocklist.lock:
            # Counted again under the lock: an album arrives as several updates at once.
            if await self.self_submission_refusal(person.id, per_day, claim=claim):
                return None
            case, entry = await self._case_store.add_case(
                person.id,
                new_case_code(),
                fingerprints.kind,
                NewEntry(
                    chat_id=0,
                    fingerprints=stored,
                    added_by=person.id,
                    source="self",
                    bank_id=bank.id,
                    features=features_of(fingerprints),
                ),
                at=now,
            )
            if claim is not None:
                # Stored: the store counts it from now on. Released under the lock, so the
                # check of another item sees it as pending or as stored, never as neither.
                self.release_self_submission(claim)
            await self._matching.index_entry(entry, fingerprints)
        await self._audit.add(
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
        bank = await self._bank_store.bank_by_name(SELF_BANK_NAME)
        if bank is None:
            with contextlib.suppress(BankExistsError):
                await self._bank_store.create_bank(
                    SELF_BANK_NAME, SELF_BANK, owner_id=None, at=time.time()
                )
            bank = await self._bank_store.bank_by_name(SELF_BANK_NAME)
            assert bank is not None
        if self._scope.self_bank != bank.id:
            self._scope.self_bank = bank.id
            self._scope.banks_changed()
        return bank

    async def user_cases(self, user_id: int) -> list[Case]:
        """The person's own cases (``/mycases``)."""
        return await self._case_store.user_cases(user_id)

    async def case(self, code: str) -> Case | None:
        """A case by its code, as typed (spaces, case and dashes do not matter)."""
        return await self._case_store.get_case(normalize_case_code(code))

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
        entries = await self._case_store.set_case_status(case.code, status, at=time.time())
        # Every entry of the case, whatever the database said before: a case suspended
        # offline (by the CLI) must still stop matching here when the person withdraws it.
        features = {
            entry_id: data
            for entry_id, _, data in await self._entry_store.entry_features([e.id for e in entries])
        }
        for entry in entries:
            if entry.active:
                await self._matching.on_index(
                    self._matching.index.add_entry, self._matching.matcher.indexable(entry)
                )
                if entry.id in features:
                    moments = unpack(features[entry.id])
                    await self._matching.index_local(entry.id, entry.bank_id, moments)
            else:
                await self._matching.unindex(entry.id)
        await self._audit.add(
            AuditEvent(
                chat_id=0,
                event=f"case_{status}",
                actor_id=actor_id,
                detail=f"case {case.code}",
                at=time.time(),
            )
        )
        updated = await self._case_store.get_case(case.code)
        assert updated is not None
        return updated


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
