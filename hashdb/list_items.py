"""What a hash list holds (``ListItem``), what reading it reports (``ListProblem``,
``ParsedList``, ``ListFormatError``), and the conventions that reading and writing lists
share: the CSV columns, the quality of a listed PDQ hash, and how a CSV cell is made inert
for spreadsheets and read back. ``hashdb.lists`` is the API for all of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hashdb.fingerprint import Fingerprint

#: PDQ quality given to a hash from a list that carries none. A curated list is trusted
#: as it stands; a lower guess would let the quality filter silently drop its hashes.
LIST_PDQ_QUALITY = 100

CSV_COLUMNS = ("signal_type", "hash", "item", "reason", "quality", "seconds")


@dataclass(frozen=True, slots=True)
class ListItem:
    """One listed piece of media: all the fingerprints of one photo or one video."""

    fingerprints: tuple[Fingerprint, ...]
    #: The item label from the file ("" if none): lines sharing it form this item.
    label: str = ""
    reason: str = ""
    #: The first line (1-based) the item came from; 0 for items not read from a file.
    line: int = 0


@dataclass(frozen=True, slots=True)
class ListProblem:
    """A line that could not be read; ``message`` names the bad value and what is accepted."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class ParsedList:
    """What a hash list held: its items and the lines that could not be read."""

    items: tuple[ListItem, ...]
    problems: tuple[ListProblem, ...]
    #: Lines read, blank and comment lines included.
    lines: int
    #: Lines dropped because they repeated an earlier line (see ``parse_list``).
    duplicates: int = 0
    #: The format the list was read as: "text" or "csv".
    fmt: str = "text"


class ListFormatError(ValueError):
    """A hash list cannot be loaded at all: it is not UTF-8, a CSV header lacks a required
    column, or ``strict`` parsing met malformed lines (``problems`` holds all of them)."""

    def __init__(self, message: str, problems: Sequence[ListProblem] = ()) -> None:
        super().__init__(message)
        self.problems: tuple[ListProblem, ...] = tuple(problems)


#: What a spreadsheet takes for the start of a formula: cells starting so get a "'" first.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A text cell made inert for spreadsheets: labels and reasons come from other people's
    lists, and ``=HYPERLINK(...)`` in a cell runs when an admin opens the export. A cell
    that already starts with "'" gets one more, so reading it back cannot mistake the
    original "'" for the one added here. Every CSV the bot writes goes through this."""
    if isinstance(value, str) and value.startswith((*_FORMULA_STARTS, "'")):
        return "'" + value
    return value


def _unsafe(text: str) -> str:
    """The inverse of ``_safe`` when reading a cell back."""
    if text.startswith("'") and text[1:].startswith((*_FORMULA_STARTS, "'")):
        return text[1:]
    return text


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
