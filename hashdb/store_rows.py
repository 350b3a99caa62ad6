"""What the SQL stores share: checks on what is about to be written, and turning rows read
back into values.

Both ``hashdb.sqlite`` and ``hashdb.postgres`` keep the same tables and select
the same columns in the same order, so a row of either (a ``sqlite3.Row``, an
``asyncpg.Record``, a tuple) becomes an ``Entry``, ``Job``, ``AuditEvent`` or ``ChatRecord``
here. Hashes are stored as fixed-width lowercase hex, and parsed back strictly: a damaged
value is reported naming its entry rather than loaded as something else. Both write down
what a write changed for other processes' ``watch`` the same way (``change_payload``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Collection, Iterable
from contextlib import suppress
from typing import Any, Protocol

from hashdb.fingerprint import Fingerprint
from hashdb.records import (
    BANK_KINDS,
    OPERATOR_BANK,
    SELF_BANK,
    TABLES,
    AuditEvent,
    Change,
    ChatRecord,
    Entry,
    Job,
    MatchRecord,
    NewEntry,
    StoreError,
)
from hashdb.signals import SIGNAL_TYPES, HashFormatError


class Row(Protocol):
    """A database row: its columns by position."""

    def __getitem__(self, index: int, /) -> Any: ...


class EntryAssembler:
    """Groups joined (entry, fingerprint) rows, ordered by entry id, into ``Entry`` values.

    Rows have the columns: id, chat_id, added_by, added_at, reason, source, removed_at,
    removed_by, signal, hash, quality, seconds, bank_id, origin, case_id, hits, last_hit_at
    (the fingerprint columns NULL for an entry without fingerprints).
    """

    def __init__(self) -> None:
        self._entries: list[Entry] = []
        self._head: Row | None = None
        self._fingerprints: list[Fingerprint] = []

    def feed(self, rows: Iterable[Row]) -> None:
        for row in rows:
            if self._head is None or row[0] != self._head[0]:
                self._flush()
                self._head = row
            if row[8] is not None:  # NULL when an entry has no fingerprints (LEFT JOIN)
                self._fingerprints.append(
                    stored_fingerprint(row[0], row[8], row[9], row[10], row[11])
                )

    def finish(self) -> list[Entry]:
        self._flush()
        return self._entries

    def _flush(self) -> None:
        head = self._head
        if head is None:
            return
        self._entries.append(
            Entry(
                id=head[0],
                chat_id=head[1],
                fingerprints=tuple(self._fingerprints),
                added_by=head[2],
                added_at=head[3],
                reason=head[4],
                source=head[5],
                removed_at=head[6],
                removed_by=head[7],
                bank_id=head[12],
                origin=head[13],
                case_id=head[14],
                hits=head[15],
                last_hit_at=head[16],
            )
        )
        self._head = None
        self._fingerprints = []


def stored_fingerprint(
    entry_id: int, signal: str, text: str, quality: int | None, seconds: float | None
) -> Fingerprint:
    """A fingerprint as read back from the database; ``StoreError`` names the entry of an
    unknown signal or a damaged hash."""
    signal_type = SIGNAL_TYPES.get(signal)
    if signal_type is None:
        raise StoreError(
            f"entry {entry_id} has a fingerprint of unknown signal {signal!r}; this hashguard "
            f"knows: {', '.join(SIGNAL_TYPES)}"
        )
    # Fast path for what the store itself wrote (fixed-width hex): loading a large blocklist
    # parses millions of hashes. isalnum() shuts out the '_', sign and space int() allows.
    if len(text) == signal_type.hex_length and text.isascii() and text.isalnum():
        with suppress(ValueError):
            return Fingerprint(signal, int(text, 16), quality, seconds)
    try:
        value = signal_type.parse(text)
    except HashFormatError as exc:
        raise StoreError(f"entry {entry_id} has a corrupt fingerprint: {exc}") from exc
    return Fingerprint(signal, value, quality, seconds)


def check_new_entry(entry: NewEntry) -> None:
    """Refuse (``ValueError``) an entry that could not be stored and read back."""
    if not entry.fingerprints:
        raise ValueError(f"an entry for chat {entry.chat_id} needs at least one fingerprint")
    for fingerprint in entry.fingerprints:
        check_storable(fingerprint)


def check_storable(fingerprint: Fingerprint) -> None:
    """Refuse (``ValueError``) a fingerprint of an unknown signal or out of its range."""
    # Checked before writing: a value that does not round-trip through its hex form would
    # make the entry unreadable at the next start.
    signal_type = SIGNAL_TYPES.get(fingerprint.signal)
    if signal_type is None:
        raise ValueError(
            f"unknown signal {fingerprint.signal!r}; expected one of: {', '.join(SIGNAL_TYPES)}"
        )
    if not 0 <= fingerprint.value < 1 << signal_type.bits:
        raise ValueError(
            f"{signal_type.name} hash value {fingerprint.value} is out of range; expected "
            f"0 <= value < 2**{signal_type.bits}"
        )


def check_bank_kind(kind: str) -> None:
    """Refuse (``ValueError``) a bank kind this hashguard does not know."""
    if kind not in BANK_KINDS:
        raise ValueError(f"unknown bank kind {kind!r}; expected one of: {', '.join(BANK_KINDS)}")


def check_table(table: str) -> None:
    """Refuse (``ValueError``) a table that is not one of the store's."""
    # Table names go into SQL text: only the known ones.
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; expected one of: {', '.join(TABLES)}")


def job_from_row(row: Row) -> Job:
    """A job from (id, chat_id, steps, done, results, created_at, attempts, next_at,
    last_error), steps and results as JSON text."""
    steps = json.loads(row[2])
    return Job(
        id=row[0],
        chat_id=row[1],
        steps=tuple(steps),
        done=row[3],
        results=json.loads(row[4]),
        created_at=row[5],
        attempts=row[6],
        next_at=row[7],
        last_error=row[8],
    )


def audit_values(event: AuditEvent) -> tuple[Any, ...]:
    """An audit event's values for an INSERT of the ``audit`` columns after ``id``, in
    table order (``at`` 0.0 means now)."""
    return (
        event.chat_id,
        event.at or time.time(),
        event.event,
        event.actor_id,
        event.actor_name,
        event.target_id,
        event.target_name,
        event.message_id,
        event.entry_id,
        event.signal,
        event.distance,
        event.detail,
    )


def checked_match_record(record: MatchRecord) -> MatchRecord:
    """``record`` with its time set (0.0 means now), or ``ValueError`` when a strike has
    nobody to count against; checked before any write."""
    if record.strike and record.audit.target_id is None:
        raise ValueError(
            f"a strike needs the sender: audit event {record.audit.event!r} has no target_id"
        )
    if record.audit.at:
        return record
    return dataclasses.replace(record, audit=dataclasses.replace(record.audit, at=time.time()))


def audit_event_from_row(row: Row) -> AuditEvent:
    """An audit event from the ``audit`` table's columns, in table order."""
    return AuditEvent(
        id=row[0],
        chat_id=row[1],
        at=row[2],
        event=row[3],
        actor_id=row[4],
        actor_name=row[5],
        target_id=row[6],
        target_name=row[7],
        message_id=row[8],
        entry_id=row[9],
        signal=row[10],
        distance=row[11],
        detail=row[12],
    )


def chat_record_from_row(row: Row) -> ChatRecord:
    """A chat from (chat_id, title, added_at, rights_ok, rights_notice_sent)."""
    return ChatRecord(
        chat_id=row[0],
        title=row[1],
        added_at=row[2],
        rights_ok=bool(row[3]),
        rights_notice_sent=bool(row[4]),
    )


#: Ids one change names at most: a PostgreSQL NOTIFY payload stops at 8000 bytes, and taking
#: in more entries one by one is slower than reloading everything (a resync).
MAX_CHANGE_IDS = 200


def change_payload(
    entries: Collection[int] = (), chats: Collection[int] = (), *, resync: bool = False
) -> str | None:
    """How a store writes down a change for other processes' ``watch`` (a NOTIFY payload
    on PostgreSQL, a row of the ``changes`` table on SQLite); None when nothing changed."""
    if not (entries or chats or resync):
        return None
    # Counted before anything is sorted: a million-entry import is one resync.
    if resync or len(entries) + len(chats) > MAX_CHANGE_IDS:
        return '{"r":1}'
    return json.dumps({"e": sorted(set(entries)), "c": sorted(set(chats))}, separators=(",", ":"))


def parse_change(payload: str) -> Change:
    """The change ``change_payload`` wrote; raises ``ValueError`` for anything else (the
    caller then reloads everything rather than miss a change)."""
    try:
        data = json.loads(payload)
        if data.get("r"):
            return Change(resync=True)
        return Change(
            entries=tuple(int(n) for n in data.get("e", ())),
            chats=tuple(int(n) for n in data.get("c", ())),
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"change payload {payload[:80]!r} is not what a store writes") from exc


def merge_changes(changes: Iterable[Change]) -> Change | None:
    """Several changes as one (a resync if any is one, or if together they name too many
    ids to take in one by one); None when there are none."""
    entries: set[int] = set()
    chats: set[int] = set()
    seen = False
    for change in changes:
        seen = True
        if change.resync:
            return Change(resync=True)
        entries.update(change.entries)
        chats.update(change.chats)
    if not seen:
        return None
    if len(entries) + len(chats) > MAX_CHANGE_IDS:
        return Change(resync=True)
    return Change(entries=tuple(sorted(entries)), chats=tuple(sorted(chats)))


def gains_every_group(kind: str, source: str) -> bool:
    """Whether a new bank is at once among the banks of every group using its kind: the
    self-submission bank, and an operator bank made without a list file (by ``hashguard
    block``). A running bot then reloads what each group uses (a resync)."""
    return kind == SELF_BANK or (kind == OPERATOR_BANK and not source)
