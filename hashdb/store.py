"""The storage protocol: blocklist entries, audit events, strikes and known chats.

Everything the bot persists goes through ``Store``. SQLite (``hashdb.sqlite_store``) is the
default implementation; another backend implements the same protocol and passes the same
shared test suite (``tests/hashdb/test_store_contract.py``). Only fingerprints, Telegram ids,
short names and audit records are stored: never media bytes, never message text.

Times are Unix timestamps (float seconds, UTC). Chat and user ids are 64-bit signed ints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from hashdb.fingerprint import Fingerprint


class StoreError(Exception):
    """The database cannot be used (locked, read-only, full, newer schema...)."""


@dataclass(frozen=True, slots=True)
class NewEntry:
    """A blocklist entry about to be added: one blocked item and its fingerprints."""

    chat_id: int
    fingerprints: tuple[Fingerprint, ...]
    added_by: int | None
    reason: str = ""
    #: How the entry was made: "reply" (/block), "addhash", later "import"...
    source: str = "reply"
    #: Telegram's file_unique_id of the blocked file, if known (short-cuts re-downloads).
    file_unique_id: str | None = None


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


class Store(Protocol):
    """Async persistence for the moderation core."""

    async def open(self) -> None:
        """Open the database and apply pending schema migrations."""

    async def close(self) -> None: ...

    # -- blocklist ---------------------------------------------------------------------
    async def add_entry(self, entry: NewEntry, *, at: float) -> Entry: ...

    async def get_entry(self, entry_id: int) -> Entry | None: ...

    async def remove_entries(
        self, chat_id: int, entry_ids: Sequence[int], *, removed_by: int | None, at: float
    ) -> list[Entry]:
        """Deactivate the chat's active entries among ``entry_ids``; return those removed."""

    async def active_entries(self) -> list[Entry]:
        """Every active entry of every chat (used to build the in-memory index)."""

    async def count_active_entries(self, chat_id: int) -> int: ...

    async def remember_file(self, file_unique_id: str, entry_id: int) -> None:
        """Record that a Telegram file is known to match ``entry_id``."""

    async def entry_for_file(self, chat_id: int, file_unique_id: str) -> Entry | None:
        """The chat's active entry this file is known to match, if any."""

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
    ) -> int:
        """Add one strike; return the user's strike count in the chat after it (counting
        strikes at or after ``since`` only, when given: older ones have expired)."""

    async def strike_count(
        self, chat_id: int, user_id: int, *, since: float | None = None
    ) -> int: ...

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
        """A group became a supergroup with a new id: move its entries, audit and strikes.

        Returns the number of entries moved.
        """

    async def forget_chat(self, chat_id: int) -> None:
        """The bot left the chat: stop tracking it (its blocklist and audit stay)."""

    async def chat_settings(self, chat_id: int) -> dict[str, str]:
        """The group's own setting values (as text), by key."""

    async def set_chat_setting(self, chat_id: int, key: str, value: str | None) -> None:
        """Store a group's value for a setting; None goes back to the default."""

    async def purge_chat(self, chat_id: int) -> dict[str, int]:
        """Delete everything kept about a chat; returns the rows removed per kind."""

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

    async def set_report_ban(
        self, chat_id: int, user_id: int, *, banned: bool, by: int | None, at: float
    ) -> bool:
        """Bar (or re-admit) a member from reporting in a chat; True if that changed."""

    async def is_report_banned(self, chat_id: int, user_id: int) -> bool: ...
