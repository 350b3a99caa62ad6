"""The storage protocol: banks and their entries, audit events, strikes and known chats.

A *bank* is a named list of fingerprints that one authority curates: each group's own bank
(what ``/block`` fills), shared banks that an owner curates and groups subscribe to,
operator banks loaded from files named in the config, and the self-submission bank.

Everything the bot persists goes through ``Store``. SQLite (``hashdb.sqlite_store``) is the
default implementation; another backend implements the same protocol and passes the same
shared test suite (``tests/hashdb/test_store_contract.py``). Only fingerprints, Telegram ids,
short names and audit records are stored: never media bytes, never message text.

Times are Unix timestamps (float seconds, UTC). Chat and user ids are 64-bit signed ints.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from hashdb.fingerprint import Fingerprint

if TYPE_CHECKING:
    from hashdb.index import ColumnBuilder


class StoreError(Exception):
    """The database cannot be used (locked, read-only, full, newer schema...)."""


#: Why a database refused an operation (``StoreUnavailableError.reason``).
UNAVAILABLE_REASONS = ("locked", "read-only", "full", "io-error", "unreachable")


class StoreUnavailableError(StoreError):
    """The database refused an operation for a reason the operator has to fix, not the
    bot: it is locked by another process, read-only, on a full disk, the disk failed, or
    (a database server) it cannot be reached.

    The operation was rolled back, so the database holds nothing of it and is still
    consistent; the same call can succeed once the cause is gone. ``reason`` is one of
    ``UNAVAILABLE_REASONS``; ``path`` names the database (a server's URL without its
    password).
    """

    def __init__(self, message: str, *, path: str, reason: str) -> None:
        super().__init__(message)
        self.path = path
        self.reason = reason


class BankExistsError(ValueError):
    """A bank of that name already exists."""


#: Bank kinds. A group's own bank is named ``group:<chat id>``; the others by their names.
GROUP_BANK = "group"
SHARED_BANK = "shared"
OPERATOR_BANK = "operator"
SELF_BANK = "self"
BANK_KINDS = (GROUP_BANK, SHARED_BANK, OPERATOR_BANK, SELF_BANK)

#: A self-submission case's states.
CASE_STATUSES = ("active", "withdrawn", "suspended")

#: The one bank that self-submitted fingerprints go to.
SELF_BANK_NAME = "self-submitted"


def group_bank_name(chat_id: int) -> str:
    return f"group:{chat_id}"


@dataclass(frozen=True, slots=True)
class Bank:
    """A named list of fingerprints with an owner."""

    id: int
    name: str
    kind: str
    #: The group (for a group's bank) or the user (for a shared bank) that owns it.
    owner_id: int | None
    created_at: float
    #: Users the owner allowed to add to and remove from a shared bank.
    editors: tuple[int, ...] = ()
    #: For an operator bank, the file it is loaded from; empty for one ``hashguard block``
    #: made, which holds what the operator blocked from the command line.
    source: str = ""

    @property
    def follows_file(self) -> bool:
        """An operator bank kept in step with a list file (``[banks] files``): what is not
        in the file is removed when the file is next read."""
        return self.kind == OPERATOR_BANK and bool(self.source)

    def can_edit(self, user_id: int) -> bool:
        """Whether this user curates the bank (owner or editor of a shared bank)."""
        return self.kind == SHARED_BANK and (user_id == self.owner_id or user_id in self.editors)


@dataclass(frozen=True, slots=True)
class Case:
    """One self-submission: a person's media item, known to them by its code."""

    id: int
    code: str
    user_id: int
    created_at: float
    #: "active", "withdrawn" (by the person) or "suspended" (by the operator).
    status: str
    #: "photo" or "video".
    kind: str
    #: How many uploads its fingerprints matched, over all groups.
    hits: int = 0
    #: How many groups exempted its entry (``Store.set_exemption``).
    exemptions: int = 0


@dataclass(frozen=True, slots=True)
class NewEntry:
    """A blocklist entry about to be added: one blocked item and its fingerprints."""

    #: The chat the entry was made from (0 when made offline, e.g. a CLI import).
    chat_id: int
    fingerprints: tuple[Fingerprint, ...]
    added_by: int | None
    reason: str = ""
    #: How the entry was made: "reply" (/block), "addhash", "import", "self", "file"...
    source: str = "reply"
    #: Telegram's file_unique_id of the blocked file, if known (short-cuts re-downloads).
    file_unique_id: str | None = None
    #: The bank it goes to; None means the chat's own bank (made on first use).
    bank_id: int | None = None
    #: Where it came from beyond ``source``: an import file's name, a list item's label.
    origin: str = ""
    #: The self-submission case it belongs to.
    case_id: int | None = None
    #: Local features of a blocked photo (``hashdb.local.LocalFeatures.to_bytes``).
    features: bytes | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """A blocklist entry: one blocked item, grouping its fingerprints under one id."""

    id: int
    chat_id: int
    fingerprints: tuple[Fingerprint, ...]
    added_by: int | None
    added_at: float
    reason: str
    source: str
    removed_at: float | None = None
    removed_by: int | None = None
    bank_id: int = 0
    origin: str = ""
    case_id: int | None = None
    #: Uploads it matched (over every group using its bank) and when it last did.
    hits: int = 0
    last_hit_at: float | None = None

    @property
    def active(self) -> bool:
        return self.removed_at is None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audit record: who did what to which content in which chat.

    ``event`` names: "block", "unblock", "addhash", "match_deleted", "media_skipped",
    "rights_missing" (more are added by later features; keep names stable).
    """

    chat_id: int
    event: str
    actor_id: int | None = None
    actor_name: str = ""
    target_id: int | None = None
    target_name: str = ""
    message_id: int | None = None
    entry_id: int | None = None
    signal: str | None = None
    distance: int | None = None
    #: A short machine-made note (reason given by an admin, skip cause); never message text.
    detail: str = ""
    at: float = 0.0
    id: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ChatRecord:
    chat_id: int
    title: str
    added_at: float
    #: Whether the bot last saw itself with the rights it needs (delete messages, ban users).
    rights_ok: bool
    #: Set once the admins have been told about missing rights; cleared when rights return.
    rights_notice_sent: bool


@dataclass(frozen=True, slots=True)
class Report:
    """Members' report of one message: who reported it, and what the admins decided.

    One report per reported message; further members reporting it join its reporters.
    """

    id: int
    chat_id: int
    message_id: int
    sender_id: int | None
    sender_name: str
    #: Fingerprints of the reported media, computed when it was first reported (empty for a
    #: message without media): what Block adds to the blocklist.
    fingerprints: tuple[Fingerprint, ...]
    file_unique_id: str | None
    reporters: tuple[int, ...]
    reason: str
    at: float
    #: "open", "blocked" or "dismissed".
    status: str = "open"
    decided_by: int | None = None
    review_chat_id: int | None = None
    review_message_id: int | None = None
    #: The reported message was hidden (deleted) once enough members reported it.
    hidden: bool = False


@dataclass(frozen=True, slots=True)
class Job:
    """Telegram actions the bot decided on, kept until they are made (the outbox).

    ``steps`` run in order (each a small JSON object: which call, on what ids); ``done``
    counts the steps made so far and ``results`` holds what they returned that later steps
    need. A job that failed for a passing reason (flood control, a timeout) waits until
    ``next_at``; a worker holding it sets ``claimed_until`` so no other worker runs it.
    """

    id: int
    chat_id: int
    steps: tuple[dict[str, Any], ...]
    done: int
    results: dict[str, Any]
    created_at: float
    attempts: int
    next_at: float
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class JobStep:
    """An outbox job's step whose database work is written together with its progress
    (``Store.record_match``): the step is marked made in the same transaction.

    ``step`` is the step's index. The job's saved ``done`` must not be past it (else a run
    of the job made this step already, and nothing is written); it may lag behind, when
    saving an earlier step's progress failed. ``results`` gives the job's results
    to save from the strike count the transaction reached (None when no strike was added);
    it runs inside the transaction, so it must be pure computation, no I/O.
    """

    job_id: int
    step: int
    results: Callable[[int | None], dict[str, Any]]
    claim_until: float


@dataclass(frozen=True, slots=True)
class MatchRecord:
    """What recording one matched upload writes, all in one transaction: the audit row, a
    hit on the matched entry (``audit.entry_id``), a strike against ``audit.target_id`` and
    the job step's progress.

    The matched file is not remembered as the entry's (``remember_file``): its match held
    under one chat's threshold and banks only, and a known file short-cuts every chat's
    check; forwards of it are answered from the fingerprint cache, by each chat's rules."""

    audit: AuditEvent
    #: Add a strike (counting strikes at or after ``strikes_since``; ``reset_at`` as in
    #: ``Store.add_strike``).
    strike: bool = False
    strikes_since: float | None = None
    reset_at: int | None = None
    job: JobStep | None = None


@dataclass(frozen=True, slots=True)
class RecordedMatch:
    """What ``Store.record_match`` did."""

    #: False when the job's step had been made already: nothing was written.
    recorded: bool
    #: The sender's strike count after the strike (None when none was added).
    strikes: int | None = None
    #: The job's results as saved (its stored ones when nothing was written; None without
    #: a job, or when the job is gone).
    results: dict[str, Any] | None = None
    audit_id: int | None = None


#: Every table a store holds, parents before children: what ``hashguard copy-store`` moves,
#: in this order. Both backends use these table and column names.
TABLES = (
    "banks", "bank_editors", "subscriptions", "chats", "chat_settings", "cases",
    "self_submitters", "entries", "entry_signals", "entry_features", "known_files", "audit",
    "strikes", "reports", "report_reporters", "report_signals", "report_bans", "jobs",
    "first_posts",
    "exemptions", "notices",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Change:
    """What another process changed: entries added or removed (their ids), chats whose
    settings or subscribed banks changed, or everything (``resync``: reload it all)."""

    entries: tuple[int, ...] = ()
    chats: tuple[int, ...] = ()
    resync: bool = False


class Store(Protocol):
    """Async persistence for the moderation core."""

    #: Whether one bot process has the database to itself (SQLite), so claims left at
    #: start-up are a dead process's; a shared database (PostgreSQL) keeps them until they
    #: lapse, since their holder may be another worker still running.
    single_process: bool

    async def open(self) -> None:
        """Open the database and apply pending schema migrations."""

    async def close(self) -> None: ...

    # -- banks -------------------------------------------------------------------------
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

    # -- entries -----------------------------------------------------------------------
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

    # -- per-group exemptions ------------------------------------------------------------
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

    # -- self-submission cases -----------------------------------------------------------
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

    # -- audit -------------------------------------------------------------------------
    async def add_audit(self, event: AuditEvent) -> int: ...

    async def recent_audit(
        self, chat_id: int, limit: int, *, before_id: int | None = None
    ) -> list[AuditEvent]:
        """The chat's last ``limit`` audit events (older than ``before_id``), newest first."""

    async def audit_since(self, chat_id: int, since: float | None = None) -> list[AuditEvent]:
        """The chat's audit events at or after ``since`` (all if None), oldest first."""

    # -- strikes -----------------------------------------------------------------------
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

    # -- chats -------------------------------------------------------------------------
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

    # -- reports -------------------------------------------------------------------------
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

    async def watch(self, on_change: Callable[[Change], Awaitable[None]]) -> None:
        """Call ``on_change`` for every change other processes commit to what the index and
        the caches hold, until cancelled. PostgreSQL sends a ``Change(resync=True)`` first
        and after every reconnect (catch up from the database); SQLite polls its change
        table every second or so and passes on what was committed since ``open``."""
        ...

    async def schema_version(self) -> int:
        """How many schema migrations the open database has (all of them, once open)."""
        ...

    # -- moving a deployment (``hashguard copy-store``) --------------------------------
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

    def bank_lock(self, bank_id: int) -> AbstractAsyncContextManager[None]:
        """Held around "read the bank's hashes, add the new ones", so two processes
        importing one list at once do not both add it (a no-op for a single-process store)."""
        ...

    async def id_high_water(self) -> dict[str, int]:
        """Per table with an id counter, the highest id it ever issued (ids of purged rows
        included: admins and audit rows may still name them)."""
        ...

    async def after_load(self, high_water: Mapping[str, int]) -> None:
        """After a copy: new ids continue past the copied ones and past the source's
        ``id_high_water``, so no id is ever issued twice."""
        ...
