"""Per-group settings: a group's admins can change some defaults of the TOML config for
their group with /set. Values are validated here and stored as text in the database.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.config import MatchingConfig, ModerationConfig


@dataclass(frozen=True, slots=True)
class GroupSettings:
    #: PDQ distance (of 256 bits) within which an upload matches a blocked hash.
    match_threshold: int
    warn_limit: int
    warn_action: str
    mute_minutes: int
    report_autohide: int
    #: Log matches without deleting, warning or escalating (for trying the bot out).
    dry_run: bool
    #: Where report review messages go: "group", "log_chat" or "admins" (privately).
    review_destination: str = "group"
    #: A chat (group or channel id) where every action is posted as it happens; 0 = none.
    log_chat: int = 0
    #: Match the operator's banks (files named in the config's ``[banks]``).
    use_operator_banks: bool = True
    #: Match fingerprints people submitted of themselves (off unless a group opts in).
    use_self_submitted: bool = False
    #: A crop, tilt or screenshot of a blocked photo: "delete", "review" or "off".
    local_match: str = "delete"


@dataclass(frozen=True, slots=True)
class _Spec:
    parse: Callable[[str], Any]
    accepted: str
    help: str


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.isascii() or not text.lstrip("-").isdecimal():
            raise ValueError
        value = int(text)
        if not low <= value <= high:
            raise ValueError
        return value

    return parse


def _choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.lower() not in options:
            raise ValueError
        return text.lower()

    return parse


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("on", "true", "yes", "1"):
        return True
    if lowered in ("off", "false", "no", "0"):
        return False
    raise ValueError


SETTINGS: dict[str, _Spec] = {
    # Capped well below the ~128 bits between unrelated photos: a group admin's typo must
    # not make the bot delete ordinary photos (operators can go further in the config).
    "match_threshold": _Spec(
        _int_in(0, 48), "a whole number from 0 to 48", "PDQ match distance (default 31)"
    ),
    "warn_limit": _Spec(
        _int_in(0, 100), "a whole number from 0 to 100 (0 = warn only)", "strikes before action"
    ),
    "warn_action": _Spec(_choice("ban", "kick", "mute"), "ban, kick or mute", "action at limit"),
    "mute_minutes": _Spec(
        _int_in(1, 525_600), "a whole number of minutes from 1 to 525600", "length of a mute"
    ),
    "report_autohide": _Spec(
        _int_in(0, 1000),
        "a whole number from 0 to 1000 (0 = never)",
        "reporters after which reported content is hidden",
    ),
    "dry_run": _Spec(_bool, "on or off", "log matches without deleting anything"),
    "review_destination": _Spec(
        _choice("group", "log_chat", "admins"),
        "group, log_chat or admins",
        "where report reviews go",
    ),
    "log_chat": _Spec(
        _int_in(-(2**52), 0),
        "a group or channel id such as -1001234567890 (0 = none)",
        "chat where every action is posted",
    ),
    "use_operator_banks": _Spec(
        _bool, "on or off", "match the hash lists the bot's operator loads (default on)"
    ),
    "use_self_submitted": _Spec(
        _bool, "on or off", "match what people submitted of themselves (default off)"
    ),
    "local_match": _Spec(
        _choice("delete", "review", "off"),
        "delete, review or off",
        "crops, tilts and screenshots of blocked photos: delete, or post for review",
    ),
}


def defaults(matching: MatchingConfig, moderation: ModerationConfig) -> GroupSettings:
    """The settings every group starts with: the TOML config's values."""
    return GroupSettings(
        match_threshold=matching.pdq_max_distance,
        warn_limit=moderation.warn_limit,
        warn_action=moderation.warn_action,
        mute_minutes=moderation.mute_minutes,
        report_autohide=moderation.report_autohide,
        dry_run=moderation.dry_run,
        review_destination=moderation.review_destination,
        log_chat=moderation.log_chat,
        local_match=matching.local_match,
    )


def check_name(name: str) -> str:
    """The setting's canonical name; ``ValueError`` lists the settings there are."""
    key = name.lower()
    if key not in SETTINGS:
        raise ValueError(f"unknown setting {name!r}; expected one of: {', '.join(SETTINGS)}")
    return key


def parse_setting(name: str, text: str) -> Any:
    """A setting's value from text; ``ValueError`` names the key and what is accepted."""
    spec = SETTINGS[check_name(name)]
    try:
        return spec.parse(text.strip())
    except ValueError:
        raise ValueError(
            f"{name.lower()} = {text!r} is not valid; expected {spec.accepted}"
        ) from None


def apply(base: GroupSettings, overrides: Mapping[str, str]) -> GroupSettings:
    """``base`` with a group's stored overrides; unknown or stale values are ignored."""
    changes: dict[str, Any] = {}
    for name, text in overrides.items():
        try:
            changes[name] = parse_setting(name, text)
        except ValueError:
            continue
    return dataclasses.replace(base, **changes)


def describe(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)
