"""The hash list commands of ``hashguard``: ``import``, ``export``, ``match`` and ``case``.

They work on the configured database, with or without the bot running. A running bot takes
in entries imported here through the store's change feed (``Store.watch``), without a
restart.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bot.config import Config, ConfigError, load_config
from bot.core import Core
from bot.exports import write_bank
from bot.matcher import Matcher
from bot.scan import ListIndex, best_match, hash_files, media_files
from bot.services.banks import check_bank_name
from bot.services.blocklist import EXEMPTION_FLAG_GROUPS
from bot.storage import open_config_store
from bot.values import BankError
from hashdb.lists import (
    ListFormatError,
    ParsedList,
    read_list,
)
from hashdb.store import (
    GROUP_BANK,
    OPERATOR_BANK,
    SHARED_BANK,
    Bank,
    Store,
    StoreError,
)
from hashdb.urls import redact_url


def _config(path: str | None) -> Config:
    return load_config(path, require_token=False)


def _service(store: Store, config: Config) -> Core:
    return Core.build(store, config.matching, config.video, config.moderation)


def _read(path: str, fmt: str | None, strict: bool) -> ParsedList:
    with tqdm(unit=" lines", unit_scale=True, desc="reading", leave=False, disable=None) as bar:

        def progress(done: int) -> None:
            bar.update(done - bar.n)

        return read_list(path, fmt=fmt, strict=strict, progress=progress)


async def _bank_for_import(store: Store, name: str, owner: int | None) -> Bank:
    if name.lower().startswith("group:"):
        chat = name.split(":", 1)[1]
        if not chat.lstrip("-").isdecimal():
            raise BankError(f"bank {name!r} is not valid; a group's bank is group:<chat id>")
        return await store.group_bank(int(chat), at=dt.datetime.now(dt.UTC).timestamp())
    bank = await store.bank_by_name(name)
    if bank is not None:
        if owner is not None and bank.owner_id != owner:
            raise BankError(
                f"bank {bank.name!r} exists and is owned by {bank.owner_id}, not {owner}; "
                "leave out --owner to import into it"
            )
        # The operator's own banks (made by hashguard block) take lists too; a file's bank
        # would drop what is not in its file at the next read.
        if bank.kind not in (SHARED_BANK, GROUP_BANK) and not (
            bank.kind == OPERATOR_BANK and not bank.follows_file
        ):
            raise BankError(
                f"bank {bank.name!r} is a {bank.kind} bank; operator banks of list files follow "
                "their files and self-submissions come from the people themselves"
            )
        return bank
    checked = check_bank_name(name)
    if owner is None:
        raise BankError(
            f"there is no bank named {checked!r}; add --owner USER_ID to create it (the "
            "owner manages it in chat with /bank)"
        )
    return await store.create_bank(
        checked, SHARED_BANK, owner_id=owner, at=dt.datetime.now(dt.UTC).timestamp()
    )


async def import_list(store: Store, args: argparse.Namespace) -> int:
    config = _config(args.config)
    try:
        bank = await _bank_for_import(store, args.bank, args.owner)
        parsed = await asyncio.to_thread(_read, args.file, args.format, args.strict)
    except (BankError, ListFormatError) as exc:
        print(f"hashguard: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"hashguard: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    for problem in parsed.problems[:20]:
        print(f"{args.file}:{problem.line}: {problem.message}", file=sys.stderr)
    if len(parsed.problems) > 20:
        print(f"... and {len(parsed.problems) - 20} more bad lines", file=sys.stderr)
    service = _service(store, config)
    result = await service.lists.import_items(
        bank, list(parsed.items), actor=None, chat_id=0, origin=Path(args.file).name
    )
    print(
        f"imported {result.added} entries into bank {bank.name} ({result.already} already "
        f"there; {parsed.lines} lines, {len(parsed.problems)} bad)"
    )
    return 0


async def export_bank(store: Store, args: argparse.Namespace) -> int:
    bank = await store.bank_by_name(args.bank)
    if bank is None:
        names = ", ".join(b.name for b in await store.list_banks()) or "none yet"
        print(f"hashguard: there is no bank named {args.bank!r}; banks: {names}", file=sys.stderr)
        return 2
    entries = await store.bank_entries(bank.id)
    min_quality = _config(args.config).matching.pdq_min_quality
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as out:
            dropped = write_bank(bank, entries, args.format, out, min_quality=min_quality)
    else:
        dropped = write_bank(bank, entries, args.format, sys.stdout, min_quality=min_quality)
        sys.stdout.flush()
    if dropped:
        print(f"hashguard: {dropped} low-detail PDQ hash(es) left out", file=sys.stderr)
    print(f"exported {len(entries)} entries of bank {bank.name}", file=sys.stderr)
    return 0


async def review_case(store: Store, args: argparse.Namespace) -> int:
    service = _service(store, _config(args.config))
    try:
        if args.suspend or args.resume:
            case = await service.selfsubmit.set_case_status(
                args.code, "suspended" if args.suspend else "active", actor_id=None
            )
        else:
            found = await service.selfsubmit.case(args.code)
            if found is None:
                raise BankError(f"there is no case {args.code.strip()!r}")
            case = found
    except BankError as exc:
        print(f"hashguard: {exc}", file=sys.stderr)
        return 2
    created = dt.datetime.fromtimestamp(case.created_at, dt.UTC).isoformat(timespec="seconds")
    print(
        f"case {case.code}: {case.kind}, submitted {created} by user {case.user_id}, "
        f"status {case.status}, {case.hits} hit(s), exempted by {case.exemptions} group(s)"
    )
    if case.exemptions >= EXEMPTION_FLAG_GROUPS:
        print(
            f"flagged: {case.exemptions} groups exempted this case's entry as wrongly matching "
            f"(threshold {EXEMPTION_FLAG_GROUPS}); review it, and suspend it with "
            f"hashguard case {case.code} --suspend if it is not what it claims to be"
        )
    return 0


def match_files(args: argparse.Namespace) -> int:
    """``hashguard match``: 0 if any file matched, 1 if none did, 2 on errors."""
    try:
        config = _config(args.config)
    except ConfigError as exc:
        print(f"hashguard: config error: {exc}", file=sys.stderr)
        return 2
    matcher = Matcher(config.matching, config.video)
    try:
        if args.list:
            parsed = _read(args.list, None, False)
            for problem in parsed.problems[:20]:
                print(f"{args.list}:{problem.line}: {problem.message}", file=sys.stderr)
            lists = ListIndex.of_items(parsed.items, matcher)
        else:
            lists = asyncio.run(_bank_index(config, args.bank, matcher))
    except (OSError, ListFormatError, BankError, StoreError) as exc:
        print(f"hashguard: {exc}", file=sys.stderr)
        return 2
    paths = list(media_files(args.paths))
    matched = errors = 0
    with tqdm(total=len(paths), unit=" files", leave=False, disable=None) as bar:
        regions = lists.needs_regions(config.matching)
        for hashed in hash_files(paths, config, jobs=args.jobs, regions=regions):
            bar.update(1)
            record: dict[str, Any] = {"path": str(hashed.path)}
            if hashed.fingerprints is None:
                errors += 1
                record.update(
                    match=False, distance=None, algorithm=None, entry=None, error=hashed.error
                )
            else:
                found = best_match(lists, matcher, hashed.fingerprints, config)
                record.update(
                    match=found is not None,
                    distance=found.distance if found else None,
                    algorithm=found.signal if found else None,
                    entry=lists.names.get(found.entry_id) if found else None,
                )
                if found is not None and found.region is not None:
                    # A hash of a rectangle found inside the file (its border, a screenshot's
                    # interface, a grid's other cells trimmed) matched.
                    record.update(region=found.region)
                if found is not None and found.query_pct is not None:
                    record.update(
                        query_pct=round(found.query_pct, 1),
                        compared_pct=round(found.compared_pct or 0.0, 1),
                    )
                matched += found is not None
            bar.clear()
            _print_match(record, args.format)
    print(f"{len(paths)} file(s): {matched} matched, {errors} could not be read", file=sys.stderr)
    if matched:
        return 0
    return 2 if errors else 1


def _print_match(record: dict[str, Any], fmt: str) -> None:
    if fmt == "jsonl":
        print(json.dumps(record, ensure_ascii=False), flush=True)
    elif record.get("error"):
        print(f"error\t{record['path']}\t{record['error']}", flush=True)
    elif record["match"]:
        print(
            f"match\t{record['path']}\t{record['entry']}\t{record['algorithm']}"
            f"\tdistance {record['distance']}"
            + (f"\tregion {record['region']}" if record.get("region") else ""),
            flush=True,
        )
    else:
        print(f"no match\t{record['path']}", flush=True)


async def _bank_index(config: Config, name: str, matcher: Matcher) -> ListIndex:
    store = open_config_store(config.storage)
    await store.open()
    try:
        bank = await store.bank_by_name(name)
        if bank is None:
            where = redact_url(config.storage.location)
            raise BankError(f"there is no bank named {name!r} in {where}")
        entries = await store.bank_entries(bank.id)
        features = await store.entry_features([e.id for e in entries])
        return ListIndex.of_entries(entries, matcher, features)
    finally:
        await store.close()
