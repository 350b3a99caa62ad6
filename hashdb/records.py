"""What the store holds and returns: banks, entries, cases, audit events, chats, reports,
outbox jobs and matches, as frozen values; and the errors a store raises.

Times are Unix timestamps (float seconds, UTC). Chat and user ids are 64-bit signed ints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hashdb.fingerprint import Fingerprint


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
