"""Shared banks: creating, finding, subscribing to and curating them."""

from __future__ import annotations

import re
import time

from bot.services.audit import AuditLog
from bot.services.blocklist import BlocklistService
from bot.services.scope import Scope
from bot.values import BankError, Person
from hashdb.store import (
    OPERATOR_BANK,
    SELF_BANK_NAME,
    SHARED_BANK,
    AuditEvent,
    Bank,
    BankExistsError,
    BankStore,
    Entry,
    EntryStore,
)


class BankService:
    """Banks through a ``BankStore``; removals from one go through the blocklist."""

    def __init__(
        self,
        bank_store: BankStore,
        entry_store: EntryStore,
        audit: AuditLog,
        scope: Scope,
        blocklist: BlocklistService,
    ) -> None:
        self._bank_store = bank_store
        self._entry_store = entry_store
        self._audit = audit
        self._scope = scope
        self._blocklist = blocklist

    async def create_bank(self, name: str, *, owner: Person, chat_id: int) -> Bank:
        """A new shared bank owned by ``owner``; ``BankError`` names what is wrong."""
        checked = check_bank_name(name)
        try:
            bank = await self._bank_store.create_bank(
                checked, SHARED_BANK, owner_id=owner.id, at=time.time()
            )
        except BankExistsError:
            raise BankError(f"a bank named {checked!r} already exists; pick another name") from None
        await self._audit_bank(chat_id, "bank_create", owner, bank)
        return bank

    async def _audit_bank(
        self, chat_id: int, event: str, actor: Person, bank: Bank, *, target: Person | None = None
    ) -> None:
        await self._audit.add(
            AuditEvent(
                chat_id=chat_id,
                event=event,
                actor_id=actor.id,
                actor_name=actor.name,
                target_id=target.id if target else None,
                target_name=target.name if target else "",
                detail=f"bank {bank.name}",
                at=time.time(),
            )
        )

    async def find_bank(self, name: str) -> Bank:
        """A bank groups can subscribe to, by name; ``BankError`` if there is none."""
        bank = await self._bank_store.bank_by_name(name.strip())
        if bank is None or bank.kind != SHARED_BANK:
            raise BankError(
                f"there is no shared bank named {name.strip()[:40]!r}; ask its owner for the "
                "exact name (they see it with /bank list in a private chat with me)"
            )
        return bank

    async def editable_bank(self, name: str, user_id: int) -> Bank:
        """A shared bank this user curates; ``BankError`` otherwise."""
        bank = await self.find_bank(name)
        if not bank.can_edit(user_id):
            raise BankError(
                f"only the owner of bank {bank.name!r} and the editors they add can change it"
            )
        return bank

    async def banks_of_user(self, user_id: int) -> list[Bank]:
        """Shared banks the user owns or edits."""
        return [b for b in await self._bank_store.list_banks(SHARED_BANK) if b.can_edit(user_id)]

    async def subscriptions(self, chat_id: int) -> list[Bank]:
        """The shared banks a group subscribed to."""
        return await self._bank_store.subscriptions(chat_id)

    async def operator_banks(self) -> list[Bank]:
        """Every operator bank (of list files, and those ``hashguard block`` fills)."""
        return await self._bank_store.list_banks(OPERATOR_BANK)

    async def bank_size(self, bank_id: int) -> int:
        """Active entries in a bank."""
        return await self._entry_store.count_active_entries(bank_id)

    async def subscribe(self, chat_id: int, bank: Bank, *, actor: Person, on: bool) -> bool:
        """Make the group use (or stop using) a shared bank; True if that changed."""
        if on:
            changed = await self._bank_store.subscribe(
                chat_id, bank.id, by=actor.id, at=time.time()
            )
        else:
            changed = await self._bank_store.unsubscribe(chat_id, bank.id)
        self._scope.banks_changed(chat_id)
        if changed:
            event = "bank_subscribe" if on else "bank_unsubscribe"
            await self._audit_bank(chat_id, event, actor, bank)
        return changed

    async def set_bank_editor(
        self, bank: Bank, target: Person, *, actor: Person, editor: bool, chat_id: int
    ) -> bool:
        """The owner adds or removes an editor; ``BankError`` for anyone else."""
        if actor.id != bank.owner_id:
            raise BankError(f"only the owner of bank {bank.name!r} can change its editors")
        changed = await self._bank_store.set_bank_editor(
            bank.id, target.id, editor=editor, by=actor.id, at=time.time()
        )
        if changed:
            event = "bank_editor_add" if editor else "bank_editor_remove"
            await self._audit_bank(chat_id, event, actor, bank, target=target)
        return changed

    async def remove_from_bank(
        self, bank: Bank, entry_ids: list[int], *, actor: Person | None, chat_id: int
    ) -> list[Entry]:
        """A curator's removal of entries from a bank (``/bank remove``), audited in ``chat_id``."""
        return await self._blocklist.remove(chat_id, bank, entry_ids, actor)

    async def entry(self, entry_id: int) -> Entry | None:
        """An entry by id, active or not (``/bank entry``)."""
        return await self._entry_store.get_entry(entry_id)

    async def bank(self, bank_id: int) -> Bank | None:
        """A bank by id."""
        return await self._bank_store.get_bank(bank_id)


_BANK_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{2,31}")


def check_bank_name(name: str) -> str:
    """A shared bank's name, lowercased; ``BankError`` says what names are accepted."""
    checked = name.strip().lower()
    if not _BANK_NAME.fullmatch(checked) or checked == SELF_BANK_NAME:
        raise BankError(
            f"bank name {name.strip()[:40]!r} is not accepted; use 3 to 32 characters: "
            f"a-z, 0-9, '-' and '_', starting with a letter or digit"
            + (f" ({SELF_BANK_NAME!r} is reserved)" if checked == SELF_BANK_NAME else "")
        )
    return checked
