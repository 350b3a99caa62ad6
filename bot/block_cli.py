"""``hashguard block``: block image and video files into a bank from the command line.

Each file is hashed as the bot hashes media an admin blocks (every fingerprint: exact
pixels, the mirror's hash, local features and the mirror's, a video's densely sampled
frames and its moments' features) and goes through ``BlocklistService.block``, the call
``/block`` and ``/bank add`` make, so what is already in the bank is found the same way and
each new entry gets the same audit row (chat 0, no actor: the operator).

A running bot takes the new entries in without a restart through the store's change feed
(``Store.watch``). A bank name that does not exist yet becomes an operator bank without a
list file (``bot.operator_banks``), which every group using the operator's banks applies.

Exit status: 0 every file blocked or already there, 1 a file could not be read (the rest are
still blocked) or the database failed, 2 a usage error (the config, the bank).

``hashguard unblock --bank NAME ID...`` takes entries out of such a bank again.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from bot.config import Config, ConfigError, load_config
from bot.core import Core
from bot.operator_banks import bank_to_block_into
from bot.scan import Hashed, hash_files, media_files
from bot.services.blocklist import BlockResult
from bot.storage import open_config_store
from bot.values import BankError
from hashdb.store import GROUP_BANK, Bank, Store, StoreError

#: What the audit's ``source`` of an entry blocked here says.
SOURCE = "cli"


def block_files(args: argparse.Namespace) -> int:
    """``hashguard block``: see the module docstring for what it prints and returns."""
    try:
        config = load_config(args.config, require_token=False)
    except ConfigError as exc:
        print(f"hashguard: config error: {exc}", file=sys.stderr)
        return 2
    paths = list(media_files(args.paths))
    try:
        return asyncio.run(_block_all(config, args.bank, args.reason[:200], paths, args.jobs))
    except StoreError as exc:
        print(f"hashguard: database error: {exc}", file=sys.stderr)
        return 1


async def _block_all(config: Config, name: str, reason: str, paths: list[Path], jobs: int) -> int:
    store = open_config_store(config.storage)
    await store.open()
    service = Core.build(store, config.matching, config.video, config.moderation)
    try:
        try:
            bank, created = await bank_to_block_into(store, name, at=time.time())
        except BankError as exc:
            print(f"hashguard: {exc}", file=sys.stderr)
            return 2
        if created:
            print(
                f"hashguard: made the operator bank {bank.name}; it applies in every group "
                "that uses the operator's banks (the setting use_operator_banks, on by default)",
                file=sys.stderr,
            )
        # What the bank holds already, so a file blocked twice is found as /block finds it.
        await service.blocklist.load_bank(bank)
        files = hash_files(paths, config, jobs=jobs, purpose="block")
        try:
            counts = await _block_each(service, bank, reason, files, len(paths))
        finally:
            # Stops the hashing pool now, also when blocking failed halfway.
            files.close()
    finally:
        await service.close()
        await store.close()
    print(
        f"{len(paths)} file(s) into bank {bank.name}: {counts['blocked']} blocked, "
        f"{counts['already blocked']} already blocked, {counts['skipped']} skipped",
        file=sys.stderr,
    )
    return 1 if counts["skipped"] else 0


async def _block_each(
    service: Core, bank: Bank, reason: str, hashed: Iterator[Hashed], total: int
) -> collections.Counter[str]:
    """Block each hashed file in turn, printing one line per file; counts the outcomes."""
    # A group's own bank keeps the group's audit trail; other banks are the operator's (0).
    chat_id = (bank.owner_id or 0) if bank.kind == GROUP_BANK else 0
    counts: collections.Counter[str] = collections.Counter()
    # On stderr, and only on a terminal (disable=None).
    with tqdm(total=total, unit=" files", leave=False, disable=None) as bar:
        # Hashing runs in the pool; waiting for the next file happens off the loop.
        while (one := await asyncio.to_thread(next, hashed, None)) is not None:
            bar.update(1)
            if one.fingerprints is None:
                outcome, line = "skipped", f"skipped\t{one.path}\t{one.error}"
            else:
                result = await service.blocklist.block(
                    chat_id,
                    one.fingerprints,
                    actor=None,
                    reason=reason,
                    message_id=None,
                    sender=None,
                    file_unique_id=None,
                    bank=bank,
                    source=SOURCE,
                )
                outcome = "blocked" if result.created else "already blocked"
                line = f"{outcome}\t{one.path}\tentry {result.entry.id}{_notes(result, one)}"
            counts[outcome] += 1
            bar.clear()
            print(line, flush=True)
    return counts


async def unblock_entries(store: Store, args: argparse.Namespace) -> int:
    """``hashguard unblock``: remove entries from a bank ``block`` can add to (audited, and
    taken in by a running bot as blocks are); 0 if all were removed, 1 if some were not
    active entries of the bank, 2 for a bank that cannot be used."""
    config = load_config(args.config, require_token=False)
    try:
        bank, _ = await bank_to_block_into(store, args.bank, at=time.time(), create=False)
    except BankError as exc:
        print(f"hashguard: {exc}", file=sys.stderr)
        return 2
    service = Core.build(store, config.matching, config.video, config.moderation)
    try:
        chat_id = (bank.owner_id or 0) if bank.kind == GROUP_BANK else 0
        removed = await service.banks.remove_from_bank(bank, args.ids, actor=None, chat_id=chat_id)
    finally:
        await service.close()
    gone = {e.id for e in removed}
    for entry_id in args.ids:
        state = "removed" if entry_id in gone else "not an active entry of the bank"
        print(f"{state}\tentry {entry_id}")
    return 0 if gone == set(args.ids) else 1


def _notes(result: BlockResult, hashed: Hashed) -> str:
    """What the admin is told after /block, as one line's tail."""
    notes: list[str] = []
    if result.low_quality:
        notes.append("too little detail for near matching: copies may not be found")
    elif result.low_detail:
        notes.append(
            "little detail: re-encoded and resized copies are found, edited ones may not be"
        )
    fingerprints = hashed.fingerprints
    if fingerprints is not None and fingerprints.truncated:
        last = max((f.seconds or 0.0 for f in fingerprints.stored), default=0.0)
        notes.append(f"only the first {last:.0f} s hashed (video.block_budget_seconds)")
    return "".join(f" ({note})" for note in notes)
