"""Configuration: a TOML file plus ``HASHGUARD_<SECTION>_<KEY>`` environment overrides.

Every key is declared once in ``_SCHEMA`` with its type, default and accepted range, so a
bad value stops start-up with a message naming the key, the value and what is accepted,
and ``config.example.toml`` can be checked against the schema by the tests.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hashdb.signals import PDQ, PHASH
from hashdb.urls import redact_url

ENV_PREFIX = "HASHGUARD_"
TELEGRAM_API_URL = "https://api.telegram.org/bot"
TELEGRAM_FILE_URL = "https://api.telegram.org/file/bot"
#: The Bot API refuses downloads over 20 MB unless a local Bot API server is used.
BOT_API_DOWNLOAD_CAP = 20 * 1024 * 1024


class ConfigError(ValueError):
    """The configuration is unusable; the message names the key and what is accepted."""


@dataclass(frozen=True, slots=True)
class _Key:
    kind: type
    default: Any
    check: Callable[[Any], str | None] | None = None


def _int_range(low: int, high: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if low <= value <= high:
            return None
        return f"an integer from {low} to {high}"

    return check


def _float_range(low: float, high: float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if low <= value <= high:
            return None
        return f"a number from {low:g} to {high:g}"

    return check


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else "one of: " + ", ".join(choices)

    return check


def _url(value: Any) -> str | None:
    if str(value).startswith(("http://", "https://")):
        return None
    return "a URL starting with http:// or https://"


#: URL schemes ``storage.url`` accepts.
STORAGE_SCHEMES = ("postgresql://", "postgres://", "sqlite:///")


def _storage_url(value: Any) -> str | None:
    if value == "" or str(value).startswith(STORAGE_SCHEMES):
        return None
    return (
        'empty (SQLite at storage.database), "postgresql://user:password@host:port/dbname" '
        'or "sqlite:///path/to/file.sqlite3"'
    )


#: A webhook's secret_token: the characters the Bot API accepts (it is sent back in a
#: header), and at least 16 of them: anyone who guesses it can post forged updates (an
#: admin's /unblock), and 16 such characters are about 95 bits.
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,256}")
#: The path the webhook server answers on: plain segments (PTB turns it into a pattern).
_URL_PATH = re.compile(r"/?[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*")


def _https_url(value: Any) -> str | None:
    if value == "" or str(value).startswith("https://"):
        return None
    return "empty or a URL starting with https:// (Telegram posts updates only over HTTPS)"


def _secret_token(value: Any) -> str | None:
    if value == "" or _SECRET_TOKEN.fullmatch(str(value)):
        return None
    return (
        "empty or 16 to 256 characters of A-Z, a-z, 0-9, _ and - (at least 16 so it cannot "
        "be guessed; the characters are what the Bot API accepts)"
    )


def _url_path(value: Any) -> str | None:
    if _URL_PATH.fullmatch(str(value)):
        return None
    return "a path of A-Z, a-z, 0-9, _ and - segments separated by /, e.g. telegram"


def _host(value: Any) -> str | None:
    return None if value else "an IP address or host name, e.g. 127.0.0.1 or 0.0.0.0"


_SCHEMA: dict[str, dict[str, _Key]] = {
    "telegram": {
        "token": _Key(str, ""),
        "api_url": _Key(str, TELEGRAM_API_URL, _url),
        "file_url": _Key(str, TELEGRAM_FILE_URL, _url),
        "local_mode": _Key(bool, False),
    },
    "storage": {
        "database": _Key(str, "hashguard.sqlite3"),
        "url": _Key(str, "", _storage_url),
    },
    "matching": {
        "pdq_max_distance": _Key(int, PDQ.default_max_distance, _int_range(0, 128)),
        "pdq_min_quality": _Key(int, 50, _int_range(0, 100)),
        "phash_max_distance": _Key(int, PHASH.default_max_distance, _int_range(0, 32)),
        "phash_auto_delete": _Key(bool, False),
        "local_match": _Key(str, "delete", _one_of("delete", "review", "off")),
        "local_min_points": _Key(int, 24, _int_range(8, 1000)),
        "region_probes": _Key(str, "always", _one_of("hash_only", "always", "off")),
    },
    "media": {
        "max_file_bytes": _Key(int, BOT_API_DOWNLOAD_CAP, _int_range(1, 2**40)),
        "max_image_pixels": _Key(int, 40_000_000, _int_range(1, 2**40)),
        "hash_timeout_seconds": _Key(int, 30, _int_range(1, 3600)),
        "workers": _Key(int, 0, _int_range(0, 256)),
        "album_action": _Key(str, "album", _one_of("album", "item")),
        "fingerprint_cache_size": _Key(int, 100_000, _int_range(0, 100_000_000)),
        "fingerprint_cache_mb": _Key(int, 256, _int_range(1, 1_000_000)),
        "queue_per_chat": _Key(int, 20, _int_range(1, 100_000)),
        "crop_queue_size": _Key(int, 200, _int_range(1, 1_000_000)),
    },
    "video": {
        "seconds_per_sample": _Key(float, 1.0, _float_range(0.1, 60.0)),
        "max_frames": _Key(int, 600, _int_range(1, 100_000)),
        "block_seconds_per_sample": _Key(float, 0.2, _float_range(0.01, 60.0)),
        "block_max_frames": _Key(int, 3000, _int_range(1, 100_000)),
        "block_budget_seconds": _Key(int, 120, _int_range(1, 3600)),
        "budget_seconds": _Key(int, 20, _int_range(1, 3600)),
        "query_match_pct": _Key(float, 50.0, _float_range(0.0, 100.0)),
        "compared_match_pct": _Key(float, 50.0, _float_range(0.0, 100.0)),
        "min_matched_frames": _Key(int, 2, _int_range(1, 1000)),
        "frames_as_images": _Key(bool, True),
    },
    "moderation": {
        "admin_cache_seconds": _Key(int, 120, _int_range(0, 86400)),
        "logs_in_group": _Key(bool, False),
        "warn_limit": _Key(int, 3, _int_range(0, 100)),
        "warn_action": _Key(str, "ban", _one_of("ban", "kick", "mute")),
        "mute_minutes": _Key(int, 1440, _int_range(1, 525_600)),
        "strike_expiry_days": _Key(int, 0, _int_range(0, 3650)),
        "report_autohide": _Key(int, 3, _int_range(0, 1000)),
        "report_rate_per_hour": _Key(int, 10, _int_range(0, 10_000)),
        "actions_per_minute": _Key(int, 20, _int_range(0, 10_000)),
        "dry_run": _Key(bool, False),
        "review_destination": _Key(str, "group", _one_of("group", "log_chat", "admins")),
        "log_chat": _Key(int, 0, _int_range(-(2**52), 0)),
    },
    "banks": {
        "files": _Key(list, ()),
        "reload_seconds": _Key(int, 60, _int_range(0, 86400)),
        "max_import_bytes": _Key(int, BOT_API_DOWNLOAD_CAP, _int_range(1, 2**40)),
        "max_bank_entries": _Key(int, 250_000, _int_range(0, 2**40)),
        "import_items_per_day": _Key(int, 50_000, _int_range(0, 2**40)),
    },
    "self_submission": {
        "enabled": _Key(bool, True),
        "per_day": _Key(int, 20, _int_range(0, 10_000)),
    },
    "logging": {
        "level": _Key(str, "INFO", _one_of("DEBUG", "INFO", "WARNING", "ERROR")),
    },
    "webhook": {
        "listen": _Key(str, "127.0.0.1", _host),
        "port": _Key(int, 8443, _int_range(1, 65535)),
        "url_path": _Key(str, "telegram", _url_path),
        "public_url": _Key(str, "", _https_url),
        "secret_token": _Key(str, "", _secret_token),
        "set_webhook": _Key(bool, True),
    },
}


@dataclass(frozen=True, slots=True)
class TelegramConfig:
    token: str
    api_url: str
    file_url: str
    local_mode: bool


@dataclass(frozen=True, slots=True)
class StorageConfig:
    #: The SQLite file, used when ``url`` is empty.
    database: str
    #: "postgresql://..." for PostgreSQL, "sqlite:///path" for SQLite; empty = ``database``.
    url: str = ""

    @property
    def location(self) -> str:
        """The store to open, as a URL (``sqlite:///...`` for the SQLite default)."""
        return self.url or f"sqlite:///{self.database}"


@dataclass(frozen=True, slots=True)
class MatchingConfig:
    pdq_max_distance: int
    pdq_min_quality: int
    phash_max_distance: int
    phash_auto_delete: bool
    #: What a local-feature match (a crop, tilt or screenshot of a blocked photo) does:
    #: "delete" like any match, "review" posts it for the admins, "off" ignores it.
    local_match: str
    #: Matched points, consistent with one similarity transform, that make a local match.
    local_min_points: int
    #: When a photo upload's own rectangles (border, interface, caption bar, grid cells
    #: trimmed) are hashed too: "hash_only" when a bank checked has entries without local
    #: features, "always", or "off".
    region_probes: str = "always"


@dataclass(frozen=True, slots=True)
class MediaConfig:
    max_file_bytes: int
    max_image_pixels: int
    hash_timeout_seconds: int
    #: Hashing processes; 0 means one per CPU core.
    workers: int
    #: "album": a match in an album removes the whole album; "item": just that item.
    album_action: str
    #: Files whose fingerprints are kept (by file_unique_id) so a forward is not fetched
    #: and hashed again; 0 keeps none.
    fingerprint_cache_size: int = 100_000
    #: The cache's memory budget; the least recently seen files go first when it is full.
    fingerprint_cache_mb: int = 256
    #: Uploads of one chat waiting for or in hashing at once; more are skipped (audited).
    queue_per_chat: int = 20
    #: Uploads waiting for the local-feature search (the second stage); past it the oldest
    #: is sent to review unchecked for crops (audited ``crop_check_skipped``).
    crop_queue_size: int = 200


@dataclass(frozen=True, slots=True)
class VideoConfig:
    seconds_per_sample: float
    max_frames: int
    #: Blocked videos are hashed denser than uploads are sampled, so an upload's samples
    #: (taken at whatever offset its trim or re-encode gives) meet a blocked frame close by.
    block_seconds_per_sample: float
    block_max_frames: int
    #: Decoding time for a video being blocked: an admin waits once for it, and dense
    #: sampling of a long 720p video takes minutes on one core.
    block_budget_seconds: int
    #: Wall-clock seconds of decoding per video; frames hashed by then are used.
    budget_seconds: int
    query_match_pct: float
    compared_match_pct: float
    min_matched_frames: int
    #: Blocked video frames also block matching photos, and video frames matching a
    #: blocked photo count as a match.
    frames_as_images: bool


@dataclass(frozen=True, slots=True)
class ModerationConfig:
    admin_cache_seconds: int
    #: /logs answers in the group instead of privately to the asking admin.
    logs_in_group: bool
    #: Strikes at which ``warn_action`` runs against the sender; 0 never escalates.
    warn_limit: int
    warn_action: str
    mute_minutes: int
    #: Strikes older than this stop counting; 0 keeps them forever.
    strike_expiry_days: int
    #: Distinct reporters at which reported content is hidden pending review; 0 = never.
    report_autohide: int
    #: Reports one member may file per hour in a chat; 0 = no limit.
    report_rate_per_hour: int
    #: Commands, button presses and private messages one person may send per minute; the
    #: rest are ignored. Media posted in groups is always checked. 0 = no limit.
    actions_per_minute: int
    #: Log matches without deleting, warning or escalating; groups can change it with /set.
    dry_run: bool
    review_destination: str
    log_chat: int


@dataclass(frozen=True, slots=True)
class BanksConfig:
    #: Operator hash list files (text or CSV), each loaded as a bank every group uses
    #: unless it opts out; reloaded when they change.
    files: tuple[str, ...]
    #: How often the files are checked for changes; 0 loads them at start only.
    reload_seconds: int
    #: Largest list file accepted by /import.
    max_import_bytes: int
    #: Active entries a bank may hold after an /import (0 = no limit). Lists the operator
    #: loads (``files``, ``hashguard import``) are not limited.
    max_bank_entries: int = 250_000
    #: Entries one person may import in chat per 24 hours, over all banks (0 = no limit).
    import_items_per_day: int = 50_000


@dataclass(frozen=True, slots=True)
class SelfSubmissionConfig:
    #: People may send the bot media of themselves, privately, to have it hashed.
    enabled: bool
    #: Items one person may submit per 24 hours; 0 = no limit.
    per_day: int


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """``hashguard run --webhook``: Telegram posts updates to ``public_url`` (a load balancer
    or reverse proxy that ends TLS), which forwards them to ``listen:port/url_path``."""

    listen: str
    port: int
    url_path: str
    public_url: str
    #: Telegram sends it in every post; posts without it are refused (403). Required.
    secret_token: str
    #: Call setWebhook at start. With several processes one is enough, or none when the
    #: operator sets the webhook once.
    set_webhook: bool


@dataclass(frozen=True, slots=True)
class Config:
    telegram: TelegramConfig
    storage: StorageConfig
    matching: MatchingConfig
    media: MediaConfig
    video: VideoConfig
    moderation: ModerationConfig
    banks: BanksConfig
    self_submission: SelfSubmissionConfig
    logging: LoggingConfig
    webhook: WebhookConfig


_SECTION_TYPES: dict[str, type] = {
    "telegram": TelegramConfig,
    "storage": StorageConfig,
    "matching": MatchingConfig,
    "media": MediaConfig,
    "video": VideoConfig,
    "moderation": ModerationConfig,
    "banks": BanksConfig,
    "self_submission": SelfSubmissionConfig,
    "logging": LoggingConfig,
    "webhook": WebhookConfig,
}


def load_config(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    require_token: bool = True,
) -> Config:
    """Read the TOML file (if any), apply environment overrides, validate everything."""
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path is not None:
        raw = _read_toml(Path(path))
    values: dict[str, dict[str, Any]] = {}
    for section, keys in raw.items():
        if section not in _SCHEMA:
            raise ConfigError(
                f"unknown config section [{section}]; expected one of: {', '.join(_SCHEMA)}"
            )
        if not isinstance(keys, dict):
            raise ConfigError(f"config entry {section!r} must be a [{section}] table")
        for key, value in keys.items():
            if key not in _SCHEMA[section]:
                raise ConfigError(
                    f"unknown config key {section}.{key}; expected one of: "
                    + ", ".join(f"{section}.{k}" for k in _SCHEMA[section])
                )
            values.setdefault(section, {})[key] = _coerce(section, key, value, from_env=False)

    for section, keys in _SCHEMA.items():
        for key in keys:
            env_name = f"{ENV_PREFIX}{section.upper()}_{key.upper()}"
            if env_name in env:
                values.setdefault(section, {})[key] = _coerce(
                    section, key, env[env_name], from_env=True, env_name=env_name
                )

    sections: dict[str, Any] = {}
    for section, keys in _SCHEMA.items():
        given = values.get(section, {})
        fields = {key: given.get(key, spec.default) for key, spec in keys.items()}
        sections[section] = _SECTION_TYPES[section](**fields)
    config = Config(**sections)
    if config.video.budget_seconds >= config.media.hash_timeout_seconds:
        raise ConfigError(
            f"video.budget_seconds = {config.video.budget_seconds} must be less than "
            f"media.hash_timeout_seconds = {config.media.hash_timeout_seconds}, so a long "
            "video stops with the frames hashed so far instead of timing out"
        )
    stems: dict[str, str] = {}
    for file in config.banks.files:
        stem = Path(file).stem.lower()
        if stem in stems:
            raise ConfigError(
                f"banks.files has {stems[stem]!r} and {file!r}, which would both be the bank "
                f"operator:{stem}; expected file names that differ before the extension"
            )
        stems[stem] = file
    if require_token and not config.telegram.token.strip():
        raise ConfigError(
            "telegram.token is missing; set it in the config file or in the "
            "HASHGUARD_TELEGRAM_TOKEN environment variable (BotFather gives it)"
        )
    return config


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {exc}") from None


def _coerce(section: str, key: str, value: Any, *, from_env: bool, env_name: str = "") -> Any:
    spec = _SCHEMA[section][key]
    where = f"{env_name} (for {section}.{key})" if from_env else f"{section}.{key}"
    # A database URL may carry a password, and secrets are secrets: never in an error.
    if key in ("token", "secret_token"):
        shown = "(hidden)"
    else:
        shown = repr(redact_url(value) if isinstance(value, str) and key == "url" else value)
    if spec.kind is bool:
        if isinstance(value, bool):
            result: Any = value
        elif from_env and str(value).strip().lower() in ("1", "true", "yes", "on"):
            result = True
        elif from_env and str(value).strip().lower() in ("0", "false", "no", "off"):
            result = False
        else:
            accepted = "true or false" + (" (or 1/0, yes/no, on/off)" if from_env else "")
            raise ConfigError(f"{where} = {shown} is not valid; expected {accepted}")
    elif spec.kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(f"{where} = {shown} is not valid; expected a number")
        if isinstance(value, str) and not from_env:
            raise ConfigError(f"{where} = {shown} is not valid; expected a number (without quotes)")
        try:
            result = float(value)
        except ValueError:
            raise ConfigError(f"{where} = {shown} is not valid; expected a number") from None
    elif spec.kind is int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ConfigError(f"{where} = {shown} is not valid; expected an integer")
        try:
            result = int(value.strip().replace("_", "")) if isinstance(value, str) else value
        except ValueError:
            raise ConfigError(f"{where} = {shown} is not valid; expected an integer") from None
        if isinstance(value, str) and not from_env:
            raise ConfigError(
                f"{where} = {shown} is not valid; expected an integer (without quotes)"
            )
    elif spec.kind is list:
        items = value.split(",") if from_env and isinstance(value, str) else value
        accepted = "a list of file paths" + (" separated by commas" if from_env else "")
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ConfigError(f"{where} = {shown} is not valid; expected {accepted}")
        result = tuple(i.strip() for i in items if i.strip())
    else:
        if not isinstance(value, str):
            raise ConfigError(f"{where} = {shown} is not valid; expected a string")
        result = value.strip()
        if key == "level":
            result = result.upper()
    if spec.check is not None:
        accepted_text = spec.check(result)
        if accepted_text is not None:
            raise ConfigError(f"{where} = {shown} is not valid; expected {accepted_text}")
    return result


def check_webhook_mode(webhook: WebhookConfig) -> None:
    """What ``hashguard run --webhook`` needs beyond what every mode accepts."""
    if not webhook.secret_token:
        raise ConfigError(
            "webhook.secret_token is missing; webhook mode needs it so that only Telegram can "
            "post updates: set 16 to 256 characters of A-Z, a-z, 0-9, _ and - in the config file "
            "or in HASHGUARD_WEBHOOK_SECRET_TOKEN"
        )
    if webhook.set_webhook and not webhook.public_url:
        raise ConfigError(
            "webhook.public_url is missing; expected the https:// URL Telegram posts updates "
            "to (e.g. https://bot.example.org/telegram), or webhook.set_webhook = false when "
            "the webhook is set by another process or by the operator"
        )


def schema_keys() -> dict[str, tuple[str, ...]]:
    """Every section and key the config accepts (used by tests and docs)."""
    return {section: tuple(keys) for section, keys in _SCHEMA.items()}
