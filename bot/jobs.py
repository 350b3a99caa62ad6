"""The outbox's jobs as typed values: each step of a job is a frozen dataclass, and only the
store boundary sees the JSON dicts they are kept as.

A step's ``to_dict`` writes, and ``from_dict`` reads, exactly the dict the store has always
held (``{"do": "delete", "messages": [...], "batch": ...}`` and so on): jobs a previous
version persisted still run after an upgrade. A feature adds a kind of step by decorating
its class with ``step_kind``; a kind nobody registered is read as ``UnknownStep``, which the
runner refuses ("refused: unknown step ...").

What a job's steps decided for the steps after them (the ``record`` step's strike count and
escalation) sits in the job's results under ``restrict_with`` and ``warn_with``;
``Restrict.resolved`` and ``Warn.resolved`` read it back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from bot.matcher import Match
from bot.moderation import Person


class Step:
    """One action of a job. Subclasses are frozen dataclasses registered by ``step_kind``."""

    #: The step's name in the store (``"do"``) and its result's key in the job's results.
    kind: ClassVar[str]

    @property
    def do(self) -> str:
        """The name the store and the job's results know this step by."""
        return self.kind

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        raise NotImplementedError


#: Step classes by kind: what ``step_from_dict`` can read.
STEP_KINDS: dict[str, type[Step]] = {}

S = TypeVar("S", bound=type[Step])


def step_kind(cls: S) -> S:
    """Register a step class under its ``kind``, so jobs holding it can be read back."""
    known = STEP_KINDS.get(cls.kind)
    if known is not None and known is not cls:
        raise ValueError(
            f"step kind {cls.kind!r} is registered twice ({known.__name__}, {cls.__name__}); "
            "each kind names one step class"
        )
    STEP_KINDS[cls.kind] = cls
    return cls


def step_from_dict(data: Mapping[str, Any]) -> Step:
    """The typed step a stored dict holds; an unregistered kind gives ``UnknownStep``."""
    step_class = STEP_KINDS.get(str(data.get("do")))
    if step_class is None:
        return UnknownStep(str(data.get("do")), dict(data))
    return step_class.from_dict(data)


@dataclass(frozen=True, slots=True)
class UnknownStep(Step):
    """A step of a kind this version does not know (written by a newer one, or damaged):
    kept as it was read, and refused when its turn comes."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)

    kind: ClassVar[str] = "unknown"

    @property
    def do(self) -> str:
        return self.name

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UnknownStep:
        return cls(str(data.get("do")), dict(data))


@step_kind
@dataclass(frozen=True, slots=True)
class DeleteMessages(Step):
    """Delete messages: one at a time with deleteMessage, or (``batch``) with
    deleteMessages, which skips messages already gone."""

    messages: tuple[int, ...]
    batch: bool = False
    #: The job's ``record`` step audits this deletion (a matched upload), so a retry of it
    #: is not audited again on its own.
    audited_by_record: bool = False

    kind: ClassVar[str] = "delete"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "do": self.kind,
            "messages": list(self.messages),
            "batch": self.batch,
        }
        if self.audited_by_record:
            data["audited_by_record"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeleteMessages:
        return cls(
            tuple(int(i) for i in data["messages"]),
            batch=bool(data.get("batch")),
            audited_by_record=bool(data.get("audited_by_record")),
        )


@step_kind
@dataclass(frozen=True, slots=True)
class RecordMatch(Step):
    """Audit a matched upload once its deletion is made or refused, add the strike and
    decide what follows it (``bot.enforcement``)."""

    match: Match
    sender: Person
    message_id: int
    notes: tuple[str, ...] = ()
    strike: bool = True

    kind: ClassVar[str] = "record"

    def to_dict(self) -> dict[str, Any]:
        return {
            "do": self.kind,
            "match": dataclasses.asdict(self.match),
            "user": self.sender.id,
            "name": self.sender.name,
            "message_id": self.message_id,
            "notes": list(self.notes),
            "strike": self.strike,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordMatch:
        return cls(
            Match(**data["match"]),
            Person(int(data["user"]), str(data["name"])),
            int(data["message_id"]),
            tuple(str(note) for note in data["notes"]),
            bool(data["strike"]),
        )


@step_kind
@dataclass(frozen=True, slots=True)
class Restrict(Step):
    """Ban, kick or mute ``target`` (a channel posting in the group can only be banned).

    In a matched upload's job the action is not known when the job is made: ``action`` is
    None and ``minutes`` unset until the ``record`` step decides (``resolved``)."""

    target: Person
    action: str | None
    #: When a mute ends (a Unix time), for a mute.
    until: float | None = None
    minutes: int | None = None

    kind: ClassVar[str] = "restrict"

    def to_dict(self) -> dict[str, Any]:
        if self.minutes is None:
            return {
                "do": self.kind,
                "user": self.target.id,
                "name": self.target.name,
                "action": self.action,
            }
        return {
            "do": self.kind,
            "action": self.action,
            "user": self.target.id,
            "name": self.target.name,
            "until": self.until,
            "minutes": self.minutes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Restrict:
        until, minutes = data.get("until"), data.get("minutes")
        return cls(
            Person(int(data["user"]), str(data["name"])),
            data.get("action"),
            float(until) if until is not None else None,
            int(minutes) if minutes is not None else None,
        )

    def resolved(self, results: Mapping[str, Any]) -> Restrict:
        """This step with what the job's ``record`` step decided for it, if anything."""
        decided = results.get("restrict_with")
        if not decided:
            return self
        until = decided.get("until", self.until)
        return dataclasses.replace(
            self,
            action=decided["action"],
            minutes=int(decided["minutes"]),
            until=float(until) if until is not None else None,
        )


@step_kind
@dataclass(frozen=True, slots=True)
class Warn(Step):
    """The warning in the group; it says so when the restriction before it was made.

    In a matched upload's job ``strikes`` is None until the ``record`` step decides
    (``resolved``); ``entry`` is the matched entry, remembered with the warning so an admin
    replying /unblock to it reaches the entry without the group learning anything."""

    target: Person
    strikes: int | None
    limit: int | None = None
    escalation: str | None = None
    entry: int | None = None

    kind: ClassVar[str] = "warn"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "do": self.kind,
            "user": self.target.id,
            "name": self.target.name,
            "strikes": self.strikes,
        }
        if self.limit is not None:
            data["limit"] = self.limit
            data["escalation"] = self.escalation
        if self.entry is not None:
            data["entry"] = self.entry
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Warn:
        strikes, limit, entry = data.get("strikes"), data.get("limit"), data.get("entry")
        return cls(
            Person(int(data["user"]), str(data["name"])),
            int(strikes) if strikes is not None else None,
            int(limit) if limit is not None else None,
            data.get("escalation"),
            int(entry) if entry is not None else None,
        )

    def resolved(self, results: Mapping[str, Any]) -> Warn:
        """This step with what the job's ``record`` step decided for it, if anything."""
        decided = results.get("warn_with")
        if not decided:
            return self
        strikes, limit = decided.get("strikes"), decided.get("limit")
        return dataclasses.replace(
            self,
            strikes=int(strikes) if strikes is not None else None,
            limit=int(limit) if limit is not None else None,
            escalation=decided.get("escalation"),
        )


@step_kind
@dataclass(frozen=True, slots=True)
class Review(Step):
    """Post (or update) the review message of a report where the group wants it."""

    report: int
    #: A link to the reported message, if it has one.
    link: str | None = None

    kind: ClassVar[str] = "review"

    def to_dict(self) -> dict[str, Any]:
        return {"do": self.kind, "report": self.report, "link": self.link}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Review:
        link = data.get("link")
        return cls(int(data["report"]), str(link) if link is not None else None)


@dataclass(frozen=True, slots=True)
class Passing(Exception):
    """A failure worth retrying later; ``after`` is the platform's retry_after, if it gave
    one."""

    error: str
    after: float | None = None


@dataclass(frozen=True, slots=True)
class JobOutcome:
    #: Each step's result by its kind: "ok", "refused: ..." or (not yet made) absent.
    results: dict[str, Any]
    #: Steps are left for a later attempt (why, if so).
    pending: str | None = None


def match_steps(
    message_ids: list[int],
    *,
    batch: bool,
    match: Match,
    sender: Person,
    message_id: int,
    notes: list[str],
    strike: bool,
) -> list[Step]:
    """The job of a matched upload: delete it, audit the match (and add the strike), then
    restrict and warn the sender as the strike count calls for. Each step waits for the one
    before it, so the warning never comes before the deletion it announces."""
    delete = DeleteMessages(tuple(message_ids), batch=batch, audited_by_record=True)
    record = RecordMatch(match, sender, message_id, tuple(notes), strike)
    # Filled in by the record step: whether, and how, the sender is restricted and warned.
    restrict = Restrict(sender, None)
    # The entry is not in the warning's text: the store remembers it, so an admin replying
    # /unblock to the warning reaches the entry without the group learning anything.
    warn = Warn(sender, None, entry=match.entry_id)
    return [delete, record, restrict, warn]
