"""Hash lists: importing them into a bank, exporting a bank, operator bank files."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import BanksConfig
from bot.services.audit import AuditLog
from bot.services.blocklist import BlocklistService
from bot.services.locks import KeyedLocks
from bot.services.matching import MatchingService
from bot.values import BankError, Person
from hashdb.fingerprint import Fingerprint
from hashdb.store import (
    GROUP_BANK,
    OPERATOR_BANK,
    AuditEvent,
    Bank,
    BankExistsError,
    BankStore,
    Entry,
    EntryStore,
)

if TYPE_CHECKING:
    from hashdb.lists import ListItem

log = logging.getLogger(__name__)


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


class ListService:
    """Whole lists into and out of banks, through the entry and bank stores."""

    def __init__(
        self,
        entry_store: EntryStore,
        bank_store: BankStore,
        audit: AuditLog,
        matching: MatchingService,
        blocklist: BlocklistService,
        locks: KeyedLocks,
        config: BanksConfig | None = None,
    ) -> None:
        self._entry_store = entry_store
        self._bank_store = bank_store
        self._audit = audit
        self._matching = matching
        self._blocklist = blocklist
        self._locks = locks
        #: Import quotas; None (offline tools) imports without them.
        self._config = config

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
            self._locks.lock("import-person", 0, actor.id) if actor else contextlib.nullcontext()
        )
        async with (
            person,
            self._locks.lock("import", 0, bank.id),
            self._bank_store.bank_lock(bank.id),
        ):
            ids = await self._import(bank, items, actor, chat_id, origin, source)
        await self._audit.add(
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
        ids = await self._entry_store.add_list(
            bank.id, fresh, chat_id=chat_id, added_by=added_by, source=source, at=now
        )
        if ids and self._matching.loaded:
            entries = functools.partial(
                _list_entries, ids, fresh, bank.id, chat_id, added_by, source, now
            )
            await self._matching.on_index(
                lambda: self._matching.index.add_entries(
                    self._matching.matcher.indexable(e) for e in entries()
                )
            )
        return ids

    async def _check_import_quota(
        self, bank: Bank, held: int, adding: int, actor: Person, now: float
    ) -> None:
        """Refuse, before anything is stored, an import by a person past the bank's size
        limit or the person's daily import limit; the operator's own loads have none."""
        if self._config is None:
            return
        cap = self._config.max_bank_entries
        if cap and held + adding > cap:
            log.info(
                "import_refused bank=%d actor=%d limit=bank adding=%d", bank.id, actor.id, adding
            )
            raise BankError(
                f"nothing was imported: {adding} new entries would bring "
                f"{_bank_label(bank)} to {held + adding}, over its limit of {cap} "
                "(banks.max_bank_entries)"
            )
        per_day = self._config.import_items_per_day
        if per_day:
            done = await self._entry_store.count_imported_since(actor.id, now - 86400)
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
        return await asyncio.to_thread(_keys_by_entry, await self._entry_store.bank_hashes(bank_id))

    async def export_entries(self, bank: Bank) -> list[Entry]:
        """A bank's active entries, for ``/bank export`` and ``hashguard export``."""
        return await self._entry_store.bank_entries(bank.id)

    async def operator_bank(self, name: str, path: str) -> Bank:
        """The operator bank of a list file, made on first use."""
        bank = await self._bank_store.bank_by_name(name)
        if bank is None:
            with contextlib.suppress(BankExistsError):
                await self._bank_store.create_bank(
                    name, OPERATOR_BANK, owner_id=None, at=time.time(), source=path
                )
            bank = await self._bank_store.bank_by_name(name)
            assert bank is not None
        if bank.kind != OPERATOR_BANK:
            raise BankError(f"bank name {name!r} is taken by a {bank.kind} bank")
        return bank

    async def sync_operator_bank(
        self, bank: Bank, path: str, items: list[ListItem], *, removals: bool = True
    ) -> SyncResult:
        """Make an operator bank hold the items of its file: new ones are added and, with
        ``removals``, entries no longer in the file are removed."""
        removed: list[Entry] = []
        if removals:
            existing = await self._bank_keys(bank.id)
            stale = await asyncio.to_thread(_stale_entries, existing, items)
            removed = await self._blocklist.remove(0, bank, stale, None)
        result = await self.import_items(
            bank, items, actor=None, chat_id=0, origin=Path(path).name, source="file"
        )
        return SyncResult(bank=bank, added=result.added, removed=len(removed))


def _bank_label(bank: Bank) -> str:
    return "this group's bank" if bank.kind == GROUP_BANK else f"bank {bank.name!r}"


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
