"""Which banks a chat's uploads are checked against, and which entries it exempted.

Cached per chat; a generation counter keeps a set read while the banks changed from being
cached.
"""

from __future__ import annotations

import time

from bot.services.settings import SettingsService
from hashdb.store import Bank, BankStore, EntryStore, group_bank_name


class Scope:
    """The banks and exemptions each chat uses, read through the bank and entry stores."""

    def __init__(
        self, bank_store: BankStore, entry_store: EntryStore, settings: SettingsService
    ) -> None:
        self._bank_store = bank_store
        self._entry_store = entry_store
        self._settings = settings
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
        self.blocked_operator_banks: tuple[int, ...] = ()
        #: chat id -> its own bank's id, once looked up.
        self.own_banks: dict[int, int] = {}
        #: The self-submission bank's id, once it exists.
        self.self_bank: int | None = None

    async def bank_ids(self, chat_id: int) -> tuple[int, ...]:
        """The banks this chat's uploads are checked against."""
        cached = self._bank_sets.get(chat_id)
        if cached is not None:
            return cached
        # Cached only if nothing changed the chat's banks while they were being read.
        generation = self._bank_generation
        settings = await self._settings.get(chat_id)
        ids: list[int] = []
        own = await self._bank_store.bank_by_name(group_bank_name(chat_id))
        if own is not None:
            ids.append(own.id)
            self.own_banks[chat_id] = own.id
        ids += [b.id for b in await self._bank_store.subscriptions(chat_id)]
        if settings.use_operator_banks:
            ids += self._operator_banks + self.blocked_operator_banks
        if settings.use_self_submitted and self.self_bank is not None:
            ids.append(self.self_bank)
        result = tuple(dict.fromkeys(ids))
        if generation == self._bank_generation:
            self._bank_sets[chat_id] = result
        return result

    def banks_changed(self, chat_id: int | None = None) -> None:
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
        result = frozenset(await self._entry_store.exempted_entries(chat_id))
        if generation == self._bank_generation:
            self._exempt_sets[chat_id] = result
        return result

    async def own_bank(self, chat_id: int) -> Bank:
        """The group's own bank (what /block fills), made on first use."""
        bank = await self._bank_store.group_bank(chat_id, at=time.time())
        self.own_banks[chat_id] = bank.id
        if bank.id not in self._bank_sets.get(chat_id, (bank.id,)):
            self.banks_changed(chat_id)
        return bank

    def use_operator_banks(self, bank_ids: tuple[int, ...]) -> None:
        """The operator banks groups use: those of the files the config names now (a file
        dropped from the config stops matching, though its bank stays in the database)."""
        if bank_ids != self._operator_banks:
            self._operator_banks = bank_ids
            self.banks_changed()
