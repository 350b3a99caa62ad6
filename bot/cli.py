"""The ``hashguard`` command: ``run`` the bot, ``hash``, ``match`` and ``block`` files,
``import`` and ``export`` banks, export a group's ``audit`` log, ``purge`` a group's data,
review a self-submission ``case``.

Exit codes: 0 success, 1 a runtime failure (database, a file that could not be hashed),
2 a usage or configuration error. ``match`` answers like grep: 0 something matched,
1 nothing matched, 2 an error (and nothing matched).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import errno
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from bot.config import ConfigError, check_webhook_mode, load_config
from bot.redact import redact
from bot.storage import open_config_store, store_for_url
from hashdb.lists import spreadsheet_safe
from hashdb.store import TABLES, AuditEvent, Store, StoreError
from hashdb.urls import redact_url, url_passwords

if TYPE_CHECKING:
    from bot.scan import Hashed

log = logging.getLogger(__name__)


class RedactToken(logging.Filter):
    """Removes the bot token from every log record: the Bot API puts it in URLs."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._token:
            return True
        message = record.getMessage()
        if self._token in message:
            record.msg = redact(message, self._token)
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if self._token in text:
                record.exc_text = redact(text, self._token)
                record.exc_info = None
        return True


def setup_logging(level: str, token: str = "", *secrets: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # The webhook's secret_token is as good as the token for forging updates.
    for secret in (token, *secrets):
        handler.addFilter(RedactToken(secret))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL, and Bot API URLs carry the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # numba's debug log is its compiler's internals: tens of thousands of lines while the
    # index's loops compile, which at DEBUG would drown the bot's own records.
    logging.getLogger("numba").setLevel(logging.WARNING)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hashguard",
        description="Keep intimate images shared without consent out of Telegram groups.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run", help="run the bot with long polling, or as a webhook server (--webhook)"
    )
    run.add_argument(
        "--config",
        metavar="FILE",
        help="TOML config file (see config.example.toml); HASHGUARD_<SECTION>_<KEY> "
        "environment variables override it",
    )
    run.add_argument(
        "--webhook",
        action="store_true",
        help="take updates as posts from Telegram to a web server ([webhook] in the config), "
        "so several processes behind a load balancer can serve one bot",
    )
    hash_cmd = commands.add_parser(
        "hash",
        help="print the fingerprints of image and video files: <algorithm> <hash> <path> "
        "(a hash list that hashguard import reads as is)",
    )
    hash_cmd.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    hash_cmd.add_argument("--config", metavar="FILE", help="TOML config file (video sampling)")
    hash_cmd.add_argument(
        "--format",
        choices=("text", "jsonl"),
        default="text",
        help="text: <algorithm> <hash> <path> lines (what hashguard import reads); jsonl: one "
        "object per file with path and hashes (algorithm, hash, quality), or error",
    )
    hash_cmd.add_argument(
        "--jobs", type=_jobs, default=0, metavar="N", help="hashing processes (0: one per core)"
    )
    match = commands.add_parser(
        "match", help="check image and video files against a hash list file or a bank"
    )
    match.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (recursive)")
    source = match.add_mutually_exclusive_group(required=True)
    source.add_argument("--list", metavar="FILE", help="hash list file (text or CSV)")
    source.add_argument("--bank", metavar="NAME", help="a bank in the configured database")
    match.add_argument("--config", metavar="FILE", help="TOML config file (rules, database)")
    match.add_argument("--format", choices=("text", "jsonl"), default="text")
    match.add_argument(
        "--jobs", type=_jobs, default=0, metavar="N", help="hashing processes (0: one per core)"
    )
    block = commands.add_parser(
        "block",
        help="block image and video files into a bank as /block does (a new name is made an "
        "operator bank, which every group using the operator's banks applies)",
    )
    block.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (recursive)")
    block.add_argument(
        "--bank",
        required=True,
        metavar="NAME",
        help="an operator bank made by hashguard block (made now if there is no bank of that "
        "name), a shared bank, or group:<chat id> for a group's own bank",
    )
    block.add_argument("--reason", default="", metavar="TEXT", help="kept in the audit log")
    block.add_argument("--config", metavar="FILE", help="TOML config file (database, hashing)")
    block.add_argument(
        "--jobs", type=_jobs, default=0, metavar="N", help="hashing processes (0: one per core)"
    )
    unblock = commands.add_parser(
        "unblock", help="remove entries from a bank hashguard block fills (by entry id)"
    )
    unblock.add_argument("ids", nargs="+", type=_entry_id, metavar="ID", help="entry ids")
    unblock.add_argument("--bank", required=True, metavar="NAME", help="as for hashguard block")
    unblock.add_argument("--config", metavar="FILE", help="TOML config file (for the database)")
    imp = commands.add_parser("import", help="add a hash list file to a bank")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument(
        "--bank",
        required=True,
        metavar="NAME",
        help="a shared bank's name, or group:<chat id> for a group's own bank",
    )
    imp.add_argument(
        "--owner", type=int, metavar="USER_ID", help="create the shared bank with this owner"
    )
    imp.add_argument("--format", choices=("text", "csv"), help="default: from the file")
    imp.add_argument("--strict", action="store_true", help="load nothing if any line is bad")
    imp.add_argument("--config", metavar="FILE", help="TOML config file (for the database)")
    exp = commands.add_parser("export", help="write a bank's hashes (text or CSV)")
    exp.add_argument("--bank", required=True, metavar="NAME")
    exp.add_argument("--format", choices=("text", "csv"), default="text")
    exp.add_argument("--output", "-o", metavar="FILE", help="default: standard output")
    exp.add_argument("--config", metavar="FILE", help="TOML config file (for the database)")
    case = commands.add_parser(
        "case", help="show a self-submission case (hits), or suspend or resume it"
    )
    case.add_argument("code", metavar="CODE")
    action = case.add_mutually_exclusive_group()
    action.add_argument("--suspend", action="store_true", help="stop its hashes matching")
    action.add_argument("--resume", action="store_true", help="let a suspended case match")
    case.add_argument("--config", metavar="FILE", help="TOML config file (for the database)")
    audit = commands.add_parser("audit", help="export a group's audit log (CSV or JSON lines)")
    audit.add_argument("--config", metavar="FILE", help="TOML config file (for the database)")
    audit.add_argument("--chat", type=int, required=True, metavar="ID", help="the group's chat id")
    audit.add_argument(
        "--since",
        metavar="DATE",
        help="only events at or after this UTC date or time, e.g. 2026-11-01 or 2026-11-01T08:30",
    )
    audit.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    purge = commands.add_parser(
        "purge", help="delete everything kept about a group (blocklist, audit, strikes, reports)"
    )
    purge.add_argument("--config", metavar="FILE", help="TOML config file (for the database)")
    purge.add_argument("--chat", type=int, required=True, metavar="ID", help="the group's chat id")
    purge.add_argument("--yes", action="store_true", help="really delete (required)")
    migrate = commands.add_parser(
        "migrate", help="apply the database schema's pending migrations, then exit"
    )
    migrate.add_argument("--config", metavar="FILE", help="TOML config file (for the database)")
    copy = commands.add_parser(
        "copy-store",
        help="copy everything from one store to another, empty one (e.g. SQLite to PostgreSQL)",
    )
    copy.add_argument(
        "--from", dest="source", required=True, metavar="URL",
        help="sqlite:///path/to/file.sqlite3 or postgresql://user:password@host/dbname",
    )  # fmt: skip
    copy.add_argument("--to", dest="target", required=True, metavar="URL", help="same forms")
    return parser


def _jobs(text: str) -> int:
    """``--jobs``: a process count, 0 for one per core."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 1024:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of processes; expected 0 (one per core) to 1024"
        )
    return value


def _entry_id(text: str) -> int:
    """An entry id as admins see it (``12`` or ``#12``)."""
    digits = text.lstrip("#")
    if not (digits.isascii() and digits.isdecimal() and 0 < len(digits) <= 19):
        raise argparse.ArgumentTypeError(f"{text!r} is not an entry id; expected a number like 12")
    return int(digits)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "hash":
        return hash_files(args.paths, args.config, jobs=args.jobs, fmt=args.format)
    if args.command == "match":
        from bot.lists_cli import match_files

        return match_files(args)
    if args.command == "block":
        from bot.block_cli import block_files

        return block_files(args)
    if args.command == "unblock":
        from bot.block_cli import unblock_entries

        return _offline(args.config, lambda store: unblock_entries(store, args))
    if args.command in ("import", "export", "case"):
        from bot import lists_cli

        job = {
            "import": lists_cli.import_list,
            "export": lists_cli.export_bank,
            "case": lists_cli.review_case,
        }[args.command]
        return _offline(args.config, lambda store: job(store, args))
    if args.command == "audit":
        return _offline(args.config, lambda store: export_audit(store, args))
    if args.command == "purge":
        if not args.yes:
            print(
                f"hashguard: purge deletes every blocklist entry, audit event, strike and "
                f"report of chat {args.chat}; add --yes to do it",
                file=sys.stderr,
            )
            return 2
        return _offline(args.config, lambda store: purge_chat(store, args.chat))
    if args.command == "migrate":
        return _offline(args.config, migrated)
    if args.command == "copy-store":
        return copy_store(args.source, args.target)
    return run(args.config, webhook=args.webhook)


AUDIT_FIELDS = (
    "id", "at", "chat_id", "event", "actor_id", "actor_name", "target_id", "target_name",
    "message_id", "entry_id", "signal", "distance", "detail",
)  # fmt: skip


def _offline(config_path: str | None, job: Callable[[Store], Awaitable[int]]) -> int:
    """Run a maintenance job against the configured database (no bot token needed)."""
    try:
        config = load_config(config_path, require_token=False)
    except ConfigError as exc:
        print(f"hashguard: config error: {exc}", file=sys.stderr)
        return 2

    async def main() -> int:
        store = open_config_store(config.storage)
        await store.open()
        try:
            return await job(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except StoreError as exc:
        print(f"hashguard: database error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"hashguard: {exc}", file=sys.stderr)
        return 2


async def export_audit(store: Store, args: argparse.Namespace) -> int:
    since = _parse_since(args.since) if args.since else None
    events = await store.audit_since(args.chat, since)
    out = sys.stdout
    if args.format == "csv":
        writer = csv.DictWriter(out, fieldnames=AUDIT_FIELDS, lineterminator="\n")
        writer.writeheader()
        for event in events:
            # Names and details are attacker-controlled (a display name "=HYPERLINK(...)"
            # runs when an admin opens the file): cells are made inert as bank exports are.
            row = _audit_row(event)
            writer.writerow({name: spreadsheet_safe(value) for name, value in row.items()})
    else:
        for event in events:
            out.write(json.dumps(_audit_row(event), ensure_ascii=False) + "\n")
    out.flush()
    return 0


def _audit_row(event: AuditEvent) -> dict[str, object]:
    row = {name: getattr(event, name) for name in AUDIT_FIELDS if name != "at"}
    row["at"] = dt.datetime.fromtimestamp(event.at, dt.UTC).isoformat(timespec="seconds")
    return row


def _parse_since(text: str) -> float:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--since {text!r} is not a date; expected YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


async def purge_chat(store: Store, chat_id: int) -> int:
    removed = await store.purge_chat(chat_id)
    summary = ", ".join(f"{count} {name}" for name, count in removed.items() if count)
    print(f"purged chat {chat_id}: {summary or 'nothing was stored'}")
    return 0


async def migrated(store: Store) -> int:
    """Opening a store applies its pending migrations; say where it stands now."""
    print(f"the database schema is up to date (version {await store.schema_version()})")
    return 0


#: Rows per batch when copying a store.
COPY_BATCH = 5_000


def copy_store(source_url: str, target_url: str) -> int:
    """Copy every table of one store into another, empty one, ids included."""
    try:
        source, target = store_for_url(source_url), store_for_url(target_url)
    except ConfigError as exc:
        print(f"hashguard: {exc}", file=sys.stderr)
        return 2

    async def main() -> int:
        await source.open()
        try:
            await target.open()
            try:
                if not await target.is_empty():
                    print(
                        f"hashguard: {redact_url(target_url)} already holds data; copy-store "
                        "only fills an empty store (a new database)",
                        file=sys.stderr,
                    )
                    return 2
                for table in TABLES:
                    copied = 0
                    async for columns, rows in source.dump_table(table, COPY_BATCH):
                        await target.load_table(table, columns, rows)
                        copied += len(rows)
                    print(f"{table}: {copied} rows")
                await target.after_load(await source.id_high_water())
            finally:
                await target.close()
        finally:
            await source.close()
        print(f"copied {redact_url(source_url)} to {redact_url(target_url)}")
        return 0

    try:
        return asyncio.run(main())
    except StoreError as exc:
        print(f"hashguard: database error: {exc}", file=sys.stderr)
        return 1


def run(config_path: str | None, *, webhook: bool = False) -> int:
    try:
        config = load_config(config_path)
        if webhook:
            check_webhook_mode(config.webhook)
    except ConfigError as exc:
        print(f"hashguard: config error: {exc}", file=sys.stderr)
        return 2
    secrets = [config.webhook.secret_token] if webhook else []
    # The database password (as written and decoded), should a driver ever log it.
    secrets += url_passwords(config.storage.url)
    setup_logging(config.logging.level, config.telegram.token, *secrets)
    # Imported here so `hashguard hash` does not pay for the Telegram stack.
    from telegram.error import InvalidToken

    from bot.app import run_polling, run_webhook

    try:
        (run_webhook if webhook else run_polling)(config)
    except StoreError as exc:
        print(f"hashguard: database error: {exc}", file=sys.stderr)
        return 1
    except InvalidToken:
        print(
            "hashguard: Telegram rejected the bot token (telegram.token); check it with BotFather",
            file=sys.stderr,
        )
        return 2
    except OSError as exc:
        if not webhook or exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise
        where = f"{config.webhook.listen}:{config.webhook.port}"
        print(
            f"hashguard: cannot listen on {where} (webhook.listen, webhook.port): "
            f"{exc.strerror}; choose a free port or an address of this host",
            file=sys.stderr,
        )
        return 1
    return 0


def hash_files(
    paths: Iterable[str], config_path: str | None = None, *, jobs: int = 0, fmt: str = "text"
) -> int:
    """Print each file's fingerprints as a hash list (``text``, what ``hashguard import``
    reads) or one JSON object per file (``jsonl``); undecodable files are reported (on
    stderr in text) and the rest still run."""
    from tqdm import tqdm

    from bot.scan import hash_files as hash_many
    from bot.scan import media_files
    from hashdb.lists import ListItem, for_text_export, text_lines

    try:
        config = load_config(config_path, require_token=False)
    except ConfigError as exc:
        print(f"hashguard: config error: {exc}", file=sys.stderr)
        return 2
    files = list(media_files(paths))
    failures = left_out = 0
    # On stderr, and only on a terminal (disable=None): the output stays a clean list.
    with tqdm(total=len(files), unit=" files", leave=False, disable=None) as bar:
        for hashed in hash_many(files, config, jobs=jobs, purpose="list"):
            bar.update(1)
            bar.clear()
            failures += hashed.fingerprints is None
            if fmt == "jsonl":
                print(json.dumps(_hash_record(hashed), ensure_ascii=False), flush=True)
            elif hashed.fingerprints is None:
                print(f"hashguard: cannot hash {hashed.path}: {hashed.error}", file=sys.stderr)
            else:
                item = ListItem(hashed.fingerprints.stored, label=str(hashed.path))
                # A text line carries no quality and is read back as fully trusted, so a
                # low-detail PDQ hash would match at the normal radius: left out, as
                # ``hashguard export`` leaves it out (jsonl keeps it with its quality).
                kept, dropped = for_text_export([item], config.matching.pdq_min_quality)
                left_out += dropped
                for line in text_lines(kept):
                    print(line)
    sys.stdout.flush()
    if left_out:
        print(
            f"hashguard: {left_out} PDQ hash(es) of quality under "
            f"{config.matching.pdq_min_quality} (matching.pdq_min_quality) left out: a text "
            "line would be read back as full quality; --format jsonl keeps them with theirs",
            file=sys.stderr,
        )
    return 1 if failures else 0


def _hash_record(hashed: Hashed) -> dict[str, object]:
    """``hashguard hash --format jsonl``'s object for one file."""
    if hashed.fingerprints is None:
        return {"path": str(hashed.path), "error": hashed.error}
    hashes: list[dict[str, object]] = []
    for fingerprint in hashed.fingerprints.stored:
        one: dict[str, object] = {
            "algorithm": fingerprint.signal,
            "hash": fingerprint.hex,
            "quality": fingerprint.quality,
        }
        if fingerprint.seconds is not None:
            one["seconds"] = fingerprint.seconds
        hashes.append(one)
    return {"path": str(hashed.path), "kind": hashed.fingerprints.kind, "hashes": hashes}


if __name__ == "__main__":
    raise SystemExit(main())
