"""The storage protocol: banks and their entries, audit events, strikes and known chats.

A *bank* is a named list of fingerprints that one authority curates: each group's own bank
(what ``/block`` fills), shared banks that an owner curates and groups subscribe to,
operator banks loaded from files named in the config, and the self-submission bank.

Everything the bot persists goes through ``Store``, the union of one protocol per
aggregate (banks, entries, cases, audit, strikes, chats, reports, jobs, copy); a part of the
core depends only on the protocols it uses. SQLite (``hashdb.sqlite``) is the
default implementation; another backend implements the same protocol and passes the same
shared test suite (``tests/hashdb/store/``, a file per protocol). Only fingerprints, Telegram ids,
short names and audit records are stored: never media bytes, never message text.

Times are Unix timestamps (float seconds, UTC). Chat and user ids are 64-bit signed ints.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

from hashdb.fingerprint import Fingerprint
from hashdb.records import (
    BANK_KINDS,
    CASE_STATUSES,
    GROUP_BANK,
    OPERATOR_BANK,
    SELF_BANK,
    SELF_BANK_NAME,
    SHARED_BANK,
    TABLES,
    UNAVAILABLE_REASONS,
    AuditEvent,
    Bank,
    BankExistsError,
    Case,
    Change,
    ChatRecord,
    Entry,
    Job,
    JobStep,
    MatchRecord,
    NewEntry,
    RecordedMatch,
    Report,
    StoreError,
    StoreUnavailableError,
    group_bank_name,
)

if TYPE_CHECKING:
    from hashdb.index import ColumnBuilder


class BankStore(Protocol):
    """The banks (groups' own, shared, operator and self-submission banks) and who
    subscribes to them."""

    def bank_lock(self, bank_id: int) -> AbstractAsyncContextManager[None]:
        """Held around "read the bank's hashes, add the new ones", so two processes
        importing one list at once do not both add it (every store, SQLite too: the bot and
        ``hashguard import`` may share one file)."""
        ...

    async def group_bank(self, chat_id: int, *, at: float) -> Bank:
        """The group's own bank, made on first use."""

    async def create_bank(
        self, name: str, kind: str, *, owner_id: int | None, at: float, source: str = ""
    ) -> Bank:
        """A new bank; raises ``BankExistsError`` if the name is taken."""

    async def get_bank(self, bank_id: int) -> Bank | None: ...

    async def bank_by_name(self, name: str) -> Bank | None:
        """The bank of this name (names compare case-insensitively)."""

    async def list_banks(self, kind: str | None = None) -> list[Bank]: ...

    async def set_bank_editor(
        self, bank_id: int, user_id: int, *, editor: bool, by: int | None, at: float
    ) -> bool:
        """Add (or remove) a bank editor; True if that changed anything."""

    async def subscribe(self, chat_id: int, bank_id: int, *, by: int | None, at: float) -> bool:
        """Make the chat use the bank; True if it was not subscribed yet."""

    async def unsubscribe(self, chat_id: int, bank_id: int) -> bool: ...

    async def subscriptions(self, chat_id: int) -> list[Bank]:
        """The banks the chat subscribed to, by name."""

    async def subscriber_count(self, bank_id: int) -> int: ...


class EntryStore(Protocol):
    """Blocked fingerprints (entries) in banks, their local features and hits, per-group
    exemptions and the warning notices that name them."""

    async def add_entry(self, entry: NewEntry, *, at: float) -> Entry: ...

    async def add_entries(self, entries: Sequence[NewEntry], *, at: float) -> list[Entry]:
        """Add many entries in one transaction (imports): all of them or none."""

    async def add_list(
        self,
        bank_id: int,
        items: Sequence[tuple[tuple[Fingerprint, ...], str, str]],
        *,
        chat_id: int,
        added_by: int | None,
        source: str,
        at: float,
    ) -> range:
        """Add a hash list's items (fingerprints, reason, origin) to a bank in one
        transaction; returns their ids, consecutive. The bulk path of imports: no per-entry
        objects are made."""

    async def get_entry(self, entry_id: int) -> Entry | None: ...

    async def remove_entries(
        self, bank_id: int, entry_ids: Sequence[int], *, removed_by: int | None, at: float
    ) -> list[Entry]:
        """Deactivate the bank's active entries among ``entry_ids``; return those removed."""

    async def active_entries(self) -> list[Entry]:
        """Every active entry of every bank (used to build the in-memory index)."""

    async def load_index(self, builder: ColumnBuilder) -> None:
        """Feed every active entry's hashes to ``builder``, as one consistent snapshot:
        start-up loads millions of hashes this way without an object per entry.

        Batches go to ``builder.feed`` as ``(entry id, bank id, signal, hex hash, quality,
        seconds)`` rows, or to ``builder.feed_joined`` as columns, in any order (the index
        does not depend on it). A damaged hash raises ``StoreError`` naming its entry."""

    async def bank_entries(self, bank_id: int) -> list[Entry]:
        """The bank's active entries, oldest first."""

    async def bank_hashes(self, bank_id: int) -> list[tuple[int, str, int]]:
        """(entry id, signal, value) of the bank's active entries, ordered by entry id: a
        light way to compare a list with what the bank holds."""

    async def count_active_entries(self, bank_id: int) -> int: ...

    async def add_entry_features(self, entry_id: int, data: bytes) -> bool:
        """Give an entry local features if it has none (one blocked before they existed);
        True if they were added."""

    async def entry_features(
        self, entry_ids: Sequence[int] | None = None
    ) -> list[tuple[int, int, bytes]]:
        """(entry id, bank id, local features) of active entries that have them: of these
        entries, or of all."""

    async def record_hit(self, entry_id: int, *, at: float) -> None:
        """Count one upload the entry matched."""

    async def remember_file(self, file_unique_id: str, entry_id: int) -> None:
        """Record that a Telegram file is known to match ``entry_id``."""

    async def entry_for_file(self, bank_ids: Sequence[int], file_unique_id: str) -> Entry | None:
        """The active entry of one of these banks that this file is known to match, if any."""

    async def count_imported_since(self, user_id: int, since: float) -> int:
        """How many entries ``user_id`` imported (source "import") at or after ``since``,
        removed ones included: what a per-person import quota counts."""
        ...

    async def set_exemption(
        self, chat_id: int, entry_id: int, *, exempt: bool, by: int | None, at: float
    ) -> bool:
        """Make an entry stop (``exempt``) or start again matching in one chat only; True
        if that changed anything. The entry stays as it is for every other chat."""
        ...

    async def exempted_entries(self, chat_id: int) -> list[int]:
        """The ids of the entries the chat exempted, ascending."""
        ...

    async def exemption_count(self, entry_id: int) -> int:
        """How many chats exempted the entry."""
        ...

    async def remember_notice(
        self, chat_id: int, message_id: int, entry_id: int, *, at: float
    ) -> None:
        """Record that the bot's message ``message_id`` (a deletion notice) is about
        ``entry_id``, so a reply to it can name the entry without the group seeing it."""
        ...

    async def notice_entry(self, chat_id: int, message_id: int) -> int | None:
        """The entry a deletion notice of the bot is about, if it is one."""
        ...


class CaseStore(Protocol):
    """Self-submission cases: what a person submitted of their own and its state."""

    async def add_case(
        self, user_id: int, code: str, kind: str, entry: NewEntry, *, at: float
    ) -> tuple[Case, Entry]:
        """Record a self-submission case and its entry in one transaction."""

    async def get_case(self, code: str) -> Case | None: ...

    async def user_cases(self, user_id: int) -> list[Case]:
        """The person's cases, newest first."""

    async def count_cases_since(self, user_id: int, since: float) -> int: ...

    async def set_case_status(self, code: str, status: str, *, at: float) -> list[Entry]:
        """Change a case's status and return its entries as they now are: leaving "active"
        removes them, returning to "active" restores them. A withdrawn case stays withdrawn
        (nothing changes and [] is returned), as does an unknown code."""

    async def accept_self_submission(self, user_id: int, *, at: float) -> None:
        """Remember that the person read and accepted what self-submission does."""

    async def self_submission_accepted(self, user_id: int) -> bool: ...


class AuditStore(Protocol):
    """The audit log."""

    async def add_audit(self, event: AuditEvent) -> int: ...

    async def recent_audit(
        self, chat_id: int, limit: int, *, before_id: int | None = None
    ) -> list[AuditEvent]:
        """The chat's last ``limit`` audit events (older than ``before_id``), newest first."""

    async def audit_since(self, chat_id: int, since: float | None = None) -> list[AuditEvent]:
        """The chat's audit events at or after ``since`` (all if None), oldest first."""


class StrikeStore(Protocol):
    """Strikes against members and the matches that earn them."""

    async def add_strike(
        self,
        chat_id: int,
        user_id: int,
        *,
        at: float,
        entry_id: int | None = None,
        since: float | None = None,
        reset_at: int | None = None,
    ) -> int:
        """Add one strike; return the user's strike count in the chat after it (counting
        strikes at or after ``since`` only, when given: older ones have expired).

        With ``reset_at``, a count that reaches it also clears the user's strikes in the
        same transaction: of several processes striking one member at once, exactly one
        sees the limit reached, so exactly one escalation follows."""

    async def strike_count(
        self, chat_id: int, user_id: int, *, since: float | None = None
    ) -> int: ...

    async def record_match(self, record: MatchRecord) -> RecordedMatch:
        """Write a matched upload's audit row, hit, known file and strike, and (with
        ``record.job``) mark the job's step made with the results it decided, all in one
        transaction: a crash leaves all of it or none, and repeating the step once it is
        made writes nothing. Raises whatever ``record.job.results`` raises, having written
        nothing."""

    async def clear_strikes(self, chat_id: int, user_id: int) -> int:
        """Remove the user's strikes in the chat; returns how many there were."""


class ChatStore(Protocol):
    """The chats the bot is in: titles, rights, settings, migrations and purging; members'
    first posts and actors' recent actions there."""

    async def upsert_chat(self, chat_id: int, title: str, *, at: float) -> ChatRecord: ...

    async def get_chat(self, chat_id: int) -> ChatRecord | None: ...

    async def list_chats(self) -> list[ChatRecord]: ...

    async def set_chat_rights(
        self, chat_id: int, *, rights_ok: bool, notice_sent: bool
    ) -> None: ...

    async def claim_rights_notice(self, chat_id: int) -> bool:
        """Mark the bot's rights missing; True for exactly one caller until rights return.

        Atomic, so several failures at once (an album in a raid) send one notice.
        """

    async def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> int:
        """A group became a supergroup with a new id: move its bank, subscriptions, audit
        and strikes. Returns the number of entries moved."""

    async def forget_chat(self, chat_id: int) -> None:
        """The bot left the chat: stop tracking it (its blocklist and audit stay)."""

    async def chat_settings(self, chat_id: int) -> dict[str, str]:
        """The group's own setting values (as text), by key."""

    async def set_chat_setting(self, chat_id: int, key: str, value: str | None) -> None:
        """Store a group's value for a setting; None goes back to the default."""

    async def purge_chat(self, chat_id: int) -> dict[str, int]:
        """Delete everything kept about a chat (its own bank included); returns the rows
        removed per kind."""

    async def record_first_post(self, chat_id: int, user_id: int, message_id: int) -> None:
        """Remember a message ``user_id`` posted in the chat; only the earliest is kept."""

    async def first_posts(self, chat_id: int, user_ids: Sequence[int]) -> dict[int, int]:
        """The earliest message id seen from each of ``user_ids`` in the chat (members
        never seen posting are absent)."""
        ...

    async def count_action(self, actor_id: int, *, at: float, window: float) -> int:
        """Record one action (a command, a button press) by ``actor_id`` at ``at``; return
        how many the actor made in the ``window`` seconds up to it, this one included.
        Exact however many processes count at once; older records are dropped."""
        ...


class ReportStore(Protocol):
    """Members' reports of messages, their review and the members barred from reporting."""

    async def add_report(
        self,
        *,
        chat_id: int,
        message_id: int,
        sender_id: int | None,
        sender_name: str,
        reporter_id: int,
        reason: str,
        fingerprints: tuple[Fingerprint, ...],
        file_unique_id: str | None,
        at: float,
    ) -> tuple[Report, bool]:
        """Record a member's report of a message; returns the report and whether this
        reporter is new to it (a member reporting the same message again counts once)."""

    async def get_report(self, report_id: int) -> Report | None: ...

    async def set_report_review(
        self, report_id: int, *, review_chat_id: int, review_message_id: int
    ) -> None:
        """Remember where the report's review message was posted."""

    async def decide_report(
        self, report_id: int, *, status: str, decided_by: int, at: float
    ) -> bool:
        """Close an open report as "blocked" or "dismissed"; False if it was already decided."""

    async def mark_report_hidden(self, report_id: int) -> bool:
        """Mark the reported message hidden; True only for the first caller."""

    async def count_reports_since(self, chat_id: int, reporter_id: int, since: float) -> int:
        """How many messages of the chat the member reported at or after ``since``."""

    async def has_reported(self, chat_id: int, message_id: int, reporter_id: int) -> bool:
        """Whether the member already reported this message (a repeat is answered before
        its media is fetched again)."""

    async def set_report_ban(
        self, chat_id: int, user_id: int, *, banned: bool, by: int | None, at: float
    ) -> bool:
        """Bar (or re-admit) a member from reporting in a chat; True if that changed."""

    async def is_report_banned(self, chat_id: int, user_id: int) -> bool: ...


class JobStore(Protocol):
    """The outbox: persisted jobs of platform actions, claimed by one worker at a time."""

    #: Whether one bot process has the database to itself (SQLite), so claims left at
    #: start-up are a dead process's; a shared database (PostgreSQL) keeps them until they
    #: lapse, since their holder may be another worker still running.
    single_process: bool

    async def add_job(
        self, chat_id: int, steps: Sequence[dict[str, Any]], *, at: float, claim_until: float
    ) -> Job:
        """Persist a job of Telegram actions, claimed by the caller until ``claim_until``."""
        ...

    async def due_jobs(self, now: float, limit: int) -> list[Job]:
        """Jobs whose ``next_at`` has come and that no worker holds, oldest first."""
        ...

    async def claim_job(self, job_id: int, *, now: float, until: float) -> Job | None:
        """Take a job if it is still there and nobody holds it; None otherwise."""
        ...

    async def update_job(
        self,
        job_id: int,
        *,
        done: int,
        results: dict[str, Any],
        attempts: int,
        next_at: float,
        last_error: str,
        claim_until: float,
    ) -> None:
        """Record progress (or a retry) of a job the caller holds."""
        ...

    async def finish_job(self, job_id: int) -> None:
        """Remove a job whose steps are all made (or given up)."""
        ...

    async def next_job_at(self) -> float | None:
        """When the earliest waiting job is due (None when there is none)."""
        ...

    async def release_jobs(self) -> int:
        """Drop every claim (at start-up: whoever held them is gone); returns how many."""
        ...


class CopyStore(Protocol):
    """Moving a deployment to another store (``hashguard copy-store``)."""

    def dump_table(
        self, table: str, batch: int
    ) -> AsyncIterator[tuple[list[str], list[tuple[Any, ...]]]]:
        """A table's rows in primary-key order, ``batch`` at a time, with the column names."""
        ...

    async def load_table(
        self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """Insert rows dumped from another store, ids included, in one transaction."""
        ...

    async def is_empty(self) -> bool:
        """Whether no table holds a row (a copy goes only into an empty store)."""
        ...

    async def id_high_water(self) -> dict[str, int]:
        """Per table with an id counter, the highest id it ever issued (ids of purged rows
        included: admins and audit rows may still name them)."""
        ...

    async def after_load(self, high_water: Mapping[str, int]) -> None:
        """After a copy: new ids continue past the copied ones and past the source's
        ``id_high_water``, so no id is ever issued twice."""
        ...


class Lifecycle(Protocol):
    """Opening and closing the database, its schema and the feed of other processes' changes."""

    async def open(self) -> None:
        """Open the database and apply pending schema migrations."""

    async def close(self) -> None: ...

    async def watch(self, on_change: Callable[[Change], Awaitable[None]]) -> None:
        """Call ``on_change`` for every change other processes commit to what the index and
        the caches hold, until cancelled. PostgreSQL sends a ``Change(resync=True)`` first
        and after every reconnect (catch up from the database); SQLite polls its change
        table every second or so and passes on what was committed since ``open``."""
        ...

    async def schema_version(self) -> int:
        """How many schema migrations the open database has (all of them, once open)."""
        ...


class Store(
    Lifecycle,
    BankStore,
    EntryStore,
    CaseStore,
    AuditStore,
    StrikeStore,
    ChatStore,
    ReportStore,
    JobStore,
    CopyStore,
    Protocol,
):
    """Async persistence for the moderation core: every aggregate's protocol."""


__all__ = [
    "BANK_KINDS",
    "CASE_STATUSES",
    "GROUP_BANK",
    "OPERATOR_BANK",
    "SELF_BANK",
    "SELF_BANK_NAME",
    "SHARED_BANK",
    "TABLES",
    "UNAVAILABLE_REASONS",
    "AuditEvent",
    "AuditStore",
    "Bank",
    "BankExistsError",
    "BankStore",
    "Case",
    "CaseStore",
    "Change",
    "ChatRecord",
    "ChatStore",
    "CopyStore",
    "Entry",
    "EntryStore",
    "Job",
    "JobStep",
    "JobStore",
    "Lifecycle",
    "MatchRecord",
    "NewEntry",
    "RecordedMatch",
    "Report",
    "ReportStore",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "StrikeStore",
    "group_bank_name",
]
