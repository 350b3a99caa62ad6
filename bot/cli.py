"""The ``hashguard`` command: ``run`` the bot, ``hash`` files.

Exit codes: 0 success, 1 a runtime failure (database, a file that could not be hashed),
2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from bot.config import ConfigError, load_config
from hashdb.fingerprint import MediaDecodeError
from hashdb.store import StoreError

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
            record.msg = message.replace(self._token, "<token>")
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if self._token in text:
                record.exc_text = text.replace(self._token, "<token>")
                record.exc_info = None
        return True


def setup_logging(level: str, token: str = "") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactToken(token))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL, and Bot API URLs carry the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hashguard",
        description="Keep intimate images shared without consent out of Telegram groups.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run the bot with long polling")
    run.add_argument(
        "--config",
        metavar="FILE",
        help="TOML config file (see config.example.toml); HASHGUARD_<SECTION>_<KEY> "
        "environment variables override it",
    )
    hash_cmd = commands.add_parser(
        "hash", help="print the fingerprints of image files: <algorithm> <hash> <path>"
    )
    hash_cmd.add_argument("paths", nargs="+", metavar="PATH")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "hash":
        return hash_files(args.paths)
    return run(args.config)


def run(config_path: str | None) -> int:
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"hashguard: config error: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.logging.level, config.telegram.token)
    # Imported here so `hashguard hash` does not pay for the Telegram stack.
    from telegram.error import InvalidToken

    from bot.app import run_polling

    try:
        run_polling(config)
    except StoreError as exc:
        print(f"hashguard: database error: {exc}", file=sys.stderr)
        return 1
    except InvalidToken:
        print(
            "hashguard: Telegram rejected the bot token (telegram.token); check it with BotFather",
            file=sys.stderr,
        )
        return 2
    return 0


def hash_files(paths: Iterable[str]) -> int:
    """Print each file's fingerprints; undecodable files are reported, the rest still run."""
    from hashdb.photo import hash_photo

    failures = 0
    for path in paths:
        try:
            data = Path(path).read_bytes()
            fingerprints = hash_photo(data)
        except (OSError, MediaDecodeError) as exc:
            print(f"hashguard: cannot hash {path}: {exc}", file=sys.stderr)
            failures += 1
            continue
        for fingerprint in fingerprints.stored:
            print(f"{fingerprint.signal} {fingerprint.hex} {path}")
    sys.stdout.flush()
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
