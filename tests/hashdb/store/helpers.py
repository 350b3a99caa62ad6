"""Values and small steps the store contract tests share: Telegram-like ids, fingerprints,
and entries, banks and reports as the bot makes them.
"""

from __future__ import annotations

from typing import Any

from hashdb.fingerprint import Fingerprint
from hashdb.signals import PDQ, PHASH
from hashdb.store import SELF_BANK, SELF_BANK_NAME, SHARED_BANK, Bank, NewEntry, Report, Store

# Telegram ids as they really come: supergroup ids below -10**12, user ids above 2**32.
CHAT = -1001234567890123


OTHER_CHAT = -1009876543210987


ADMIN = 7_000_000_001


USER = 2**33 + 5


T0 = 1_700_000_000.25


PDQ_A = Fingerprint(PDQ.name, int("f" * 8 + "0" * 48 + "1" * 8, 16), 87)


PDQ_B = Fingerprint(PDQ.name, 2**255 + 12345, 100)


PHASH_A = Fingerprint(PHASH.name, 0x8000_0000_0000_0001, None)


async def _bank(store: Store, chat_id: int) -> int:
    """The id of the chat's own bank (made on first use, as the bot does)."""
    return (await store.group_bank(chat_id, at=T0)).id


def _new(
    chat_id: int = CHAT,
    fingerprints: tuple[Fingerprint, ...] = (PDQ_A, PHASH_A),
    *,
    file_unique_id: str | None = None,
    reason: str = "reported by a member",
) -> NewEntry:
    return NewEntry(
        chat_id=chat_id,
        fingerprints=fingerprints,
        added_by=ADMIN,
        reason=reason,
        source="reply",
        file_unique_id=file_unique_id,
    )


#: The id a basic group gets when Telegram turns it into a supergroup.
SUPERGROUP = -1005555555555555


EDITOR = 7_000_000_002


STRANGER = 7_000_000_003


def _into(
    bank_id: int,
    fingerprints: tuple[Fingerprint, ...] = (PDQ_A,),
    *,
    chat_id: int = CHAT,
    file_unique_id: str | None = None,
    case_id: int | None = None,
) -> NewEntry:
    """An entry for a named bank (not the chat's own), as /bank add and imports make."""
    return NewEntry(
        chat_id=chat_id,
        fingerprints=fingerprints,
        added_by=ADMIN,
        source="import",
        file_unique_id=file_unique_id,
        bank_id=bank_id,
        origin="list.csv",
        case_id=case_id,
    )


def _numbered(n: int) -> tuple[Fingerprint, ...]:
    """Fingerprints unique to item ``n`` (a PDQ spreading into the high bits, and a pHash)."""
    return (Fingerprint(PDQ.name, (n * 0x9E3779B97F4A7C15) % 2**256, n % 101), _phash(n))


def _phash(n: int) -> Fingerprint:
    return Fingerprint(PHASH.name, (n * 0xD1B54A32D192ED03) % 2**64, None)


async def _shared(store: Store, name: str = "Revenge-Pics", owner: int = ADMIN) -> Bank:
    return await store.create_bank(name, SHARED_BANK, owner_id=owner, at=T0)


async def _self_bank(store: Store) -> Bank:
    return await store.create_bank(SELF_BANK_NAME, SELF_BANK, owner_id=None, at=T0)


def _values(words: Any) -> list[int]:
    return [sum(int(word) << (64 * at) for at, word in enumerate(row)) for row in words]


async def _report(
    store: Store, *, chat_id: int, message_id: int, **fields: Any
) -> tuple[Report, bool]:
    """A report of ``message_id`` with everything else defaulted (a member's plain report)."""
    values: dict[str, Any] = {
        "sender_id": USER,
        "sender_name": "M",
        "reporter_id": ADMIN,
        "reason": "",
        "fingerprints": (),
        "file_unique_id": None,
        "at": T0,
    }
    values.update(fields)
    return await store.add_report(chat_id=chat_id, message_id=message_id, **values)


def _submission(bank: Bank, fingerprints: tuple[Fingerprint, ...] = (PDQ_A,)) -> NewEntry:
    return NewEntry(
        chat_id=0, fingerprints=fingerprints, added_by=USER, source="self", bank_id=bank.id
    )
