"""Operator banks: hash list files named in the config, kept in step with the files; and
the banks the operator blocks media into from the command line (``hashguard block``).

Each file in ``[banks] files`` becomes the bank ``operator:<file stem>``. It is loaded at
start (before the bot takes updates, so the lists are in force from the first message)
and re-read whenever its size or modification time changes.

``hashguard block --bank NAME`` makes NAME an operator bank without a file when there is no
bank of that name. It applies where the files' banks do (every group that has
``use_operator_banks`` on, the default), whether or not the config names any file, and
only ``hashguard block`` and ``hashguard import`` add to it.

A list must never shrink by accident: a file that disappears or cannot be read leaves its
bank as it was, and a file with malformed lines (half written, or an error page saved in
its place) only adds its good lines; entries are removed only when a clean file no longer
has them. Write a new version beside the old one and rename it into place.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from bot.core import Core
from bot.services.banks import check_bank_name
from bot.services.lists import SyncResult
from bot.values import BankError
from hashdb.lists import ListFormatError, read_list
from hashdb.store import (
    GROUP_BANK,
    OPERATOR_BANK,
    SHARED_BANK,
    Bank,
    BankExistsError,
    Store,
    group_bank_name,
)

#: The bank kinds ``hashguard block`` adds to: its own operator banks, shared banks (as
#: their curators' ``/bank add`` does) and a group's own bank (as ``/block`` there does).
BLOCKABLE_KINDS = (OPERATOR_BANK, SHARED_BANK, GROUP_BANK)

log = logging.getLogger(__name__)


def bank_name(path: str | Path) -> str:
    return f"operator:{Path(path).stem.lower()}"


@dataclass(frozen=True, slots=True)
class _Seen:
    size: int
    mtime_ns: int


class OperatorBanks:
    """Loads and reloads the operator's list files into their banks."""

    def __init__(self, core: Core, files: tuple[str, ...]) -> None:
        self._core = core
        self._files = files
        self._seen: dict[str, _Seen] = {}
        self._banks: dict[str, Bank] = {}

    async def sync(self) -> list[SyncResult]:
        """Reload every file that changed since the last call (all of them the first time)."""
        if not self._banks:
            # Each configured file's bank, made now even if the file cannot be read yet, so
            # its entries from earlier runs keep matching; banks of files no longer in the
            # config stop matching.
            for path in self._files:
                self._banks[path] = await self._core.lists.operator_bank(bank_name(path), path)
            self._core.scope.use_operator_banks(tuple(b.id for b in self._banks.values()))
        results: list[SyncResult] = []
        for path in self._files:
            result = await self._sync_one(path)
            if result is not None:
                results.append(result)
        return results

    async def _sync_one(self, path: str) -> SyncResult | None:
        try:
            stat = Path(path).stat()
        except OSError as exc:
            log.error("operator_list_unreadable path=%s error=%s", path, exc)
            return None
        seen = _Seen(stat.st_size, stat.st_mtime_ns)
        if self._seen.get(path) == seen:
            return None
        try:
            parsed = await asyncio.to_thread(read_list, path)
        except (OSError, ListFormatError) as exc:
            log.error("operator_list_unreadable path=%s error=%s", path, exc)
            return None
        for problem in parsed.problems[:5]:
            log.warning(
                "operator_list_line path=%s line=%d %s", path, problem.line, problem.message
            )
        if parsed.problems:
            log.warning(
                "operator_list_not_clean path=%s bad_lines=%d: new lines are added, nothing "
                "is removed until a clean file is read",
                path,
                len(parsed.problems),
            )
        result = await self._core.lists.sync_operator_bank(
            self._banks[path], str(path), list(parsed.items), removals=not parsed.problems
        )
        self._seen[path] = seen
        log.info(
            "operator_list_loaded bank=%s items=%d added=%d removed=%d bad_lines=%d",
            result.bank.name,
            len(parsed.items),
            result.added,
            result.removed,
            len(parsed.problems),
        )
        return result

    async def watch(self, interval: float) -> None:
        """Check the files every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sync()
            except Exception:
                # A failed reload must not end the watching: the next change is retried.
                log.exception("operator_list_reload_failed")


async def bank_to_block_into(
    store: Store, name: str, *, at: float, create: bool = True
) -> tuple[Bank, bool]:
    """The bank ``hashguard block --bank NAME`` adds to (and ``unblock`` removes from), made
    as an operator bank without a file when there is none of that name and ``create``; and
    whether it was made now. ``BankError`` says why a name or a bank cannot be used, and
    what can."""
    text = name.strip()
    if text.lower().startswith("group:"):
        chat = text.split(":", 1)[1]
        if re.fullmatch(r"-?[0-9]{1,19}", chat) is None:
            raise BankError(f"bank {text[:40]!r} is not valid; a group's bank is group:<chat id>")
        if create:
            return await store.group_bank(int(chat), at=at), False
        own = await store.bank_by_name(group_bank_name(int(chat)))
        if own is None:
            raise BankError(f"group {chat} has no bank (nothing was ever blocked there)")
        return own, False
    bank = await store.bank_by_name(text)
    if bank is None:
        if text.lower().startswith("operator:"):
            raise BankError(
                f"there is no bank {text[:40]!r}; operator:<name> banks are made from the list "
                "files in [banks] files. Name a new bank without the prefix (3 to 32 "
                "characters: a-z, 0-9, '-' and '_') and it is made as an operator bank"
            )
        checked = check_bank_name(text)
        if not create:
            raise BankError(f"there is no bank named {checked!r}")
        try:
            return await store.create_bank(checked, OPERATOR_BANK, owner_id=None, at=at), True
        except BankExistsError:  # made by another process just now
            bank = await store.bank_by_name(checked)
            assert bank is not None
    if bank.follows_file:
        raise BankError(
            f"bank {bank.name!r} follows its list file {bank.source}: what is not in the file "
            "is removed when it is next read. Add the fingerprints to the file instead "
            "(hashguard hash PATH >> FILE), or block into another bank"
        )
    if bank.kind not in BLOCKABLE_KINDS:
        raise BankError(
            f"bank {bank.name!r} is a {bank.kind} bank, which only the people it protects "
            f"add to; hashguard block adds to banks of kind: {', '.join(BLOCKABLE_KINDS)}"
        )
    return bank, False
