"""Reading hash lists: text and CSV parsed line by line, tolerant of malformed lines (each
becomes a ``ListProblem``) unless ``strict``. ``hashdb.lists`` describes the formats.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gc
import itertools
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hashdb.fingerprint import Fingerprint
from hashdb.list_items import (
    CSV_COLUMNS,
    LIST_PDQ_QUALITY,
    ListFormatError,
    ListItem,
    ListProblem,
    ParsedList,
    _clip,
    _unsafe,
)
from hashdb.signals import (
    PDQ,
    PHASH,
    SIGNAL_TYPES,
    VPDQ,
    HashFormatError,
    SignalType,
    get_signal_type,
)

#: The accepted values of ``fmt``.
FORMATS = ("text", "csv")

#: ``progress`` is called after every this many lines: often enough for a progress bar,
#: rarely enough to cost nothing on a million-line import.
PROGRESS_EVERY = 50_000

#: A reason is a short note for moderators, not a document.
MAX_REASON_CHARS = 200

#: How many problems a strict-mode error spells out; the rest are counted.
SHOWN_PROBLEMS = 5

_REQUIRED_CSV_COLUMNS = ("signal_type", "hash")

#: The shape of one vPDQ frame in ThreatExchange's serialization, for error messages.
_TX_FRAME = '"<64 hex>,<quality 0-100>,<seconds>"'
_TX_FRAMES = f"a JSON list of frames [{_TX_FRAME}, ...]"
_TEXT_LINE = "'<signal_type> <hash> [item label]'"

#: A ``#`` at the start of the text or after whitespace starts a comment; one inside a
#: word (``photos/#1.jpg``) is part of the label.
_COMMENT = re.compile(r"(?:^|\s)#")
_JSON = json.JSONDecoder()


def parse_list(
    source: str | bytes | Iterable[str],
    *,
    fmt: str | None = None,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ParsedList:
    """Read a hash list from its text, its bytes (UTF-8, BOM allowed) or its lines.

    ``fmt`` is "text", "csv", or ``None`` to detect: CSV if the first line that is not
    blank or a comment has both a ``signal_type`` and a ``hash`` cell, text otherwise.

    Lines sharing a non-empty item label form one item; every other line (CSV row) is an
    item of its own. A line that repeats an earlier one adds nothing and is dropped and
    counted in ``duplicates``: an unlabelled line whose fingerprints equal an earlier
    unlabelled line's, or a labelled line whose fingerprints its item already has.

    Malformed lines are reported in ``problems`` while the rest loads; with ``strict``
    any problem raises ``ListFormatError`` instead and nothing is returned.
    ``progress(lines_read)`` is called every ``PROGRESS_EVERY`` lines and with the total
    at the end.

    Raises ``ListFormatError`` for bytes that are not UTF-8 (naming the byte offset), a
    CSV header without a required column, or (``strict``) any malformed line; and
    ``ValueError`` for an unknown ``fmt``. The cyclic garbage collector is paused while
    the lines are parsed (see ``_gc_paused``).
    """
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(
            f"unknown hash list format {fmt!r}; expected one of: {', '.join(FORMATS)} "
            "(or None to detect it)"
        )
    lines = _source_lines(source)
    if fmt is None:
        fmt, lines = _sniff(lines)
    with _gc_paused():
        parsed = _parse_csv(lines, progress) if fmt == "csv" else _parse_text(lines, progress)
    if strict and parsed.problems:
        raise ListFormatError(_describe_problems(parsed.problems), parsed.problems)
    return parsed


def read_list(
    path: str | Path,
    *,
    fmt: str | None = None,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ParsedList:
    """Read a hash list file; with ``fmt=None`` a ``.csv`` file is CSV, others are sniffed.

    The file is streamed, so a large list never sits in memory twice. ``OSError`` (missing
    or unreadable file) is left to the caller; otherwise as ``parse_list``.
    """
    path = Path(path)
    if fmt is None and path.suffix.lower() == ".csv":
        fmt = "csv"
    try:
        # newline=None: \r\n and \r line ends read as \n, as on every platform's editors.
        with path.open(encoding="utf-8-sig", newline=None) as lines:
            return parse_list(lines, fmt=fmt, strict=strict, progress=progress)
    except UnicodeDecodeError:
        # The streaming decoder only knows offsets within its chunk; decoding the whole
        # file once more finds the exact byte for the message.
        _decode(path.read_bytes())
        raise  # pragma: no cover - _decode raises for the same bytes


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a list is parsed.

    A list makes millions of small objects that are all kept, none in a cycle; the
    collector, triggered every few hundred allocations, would traverse them again and
    again for nothing, which more than doubles the time of a large import. Reference
    counting still frees everything as usual. (Mercurial's ``util.nogc`` does the same
    for its large loads.) A collector the caller already disabled stays disabled.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _source_lines(source: str | bytes | Iterable[str]) -> Iterator[str]:
    if isinstance(source, bytes | bytearray):
        source = _decode(bytes(source))
    if isinstance(source, str):
        return iter(_split_lines(source.removeprefix("\ufeff")))
    return _without_bom(iter(source))


def _decode(data: bytes) -> str:
    # The BOM is skipped by hand, not with "utf-8-sig", whose error offsets would then
    # count from after it.
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = skip + exc.start
        line = data.count(b"\n", 0, offset) + 1
        raise ListFormatError(
            f"hash list is not UTF-8 text: byte 0x{data[offset]:02x} at offset "
            f"{offset} (line {line}) cannot be decoded; expected a UTF-8 file"
        ) from None


def _split_lines(text: str) -> list[str]:
    """Lines as a text file reads them (\\n, \\r\\n and \\r end a line, nothing else)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the end of the last line, not an empty line after it
    return lines


def _without_bom(lines: Iterator[str]) -> Iterator[str]:
    first = next(lines, None)
    if first is None:
        return
    yield first.removeprefix("\ufeff")
    yield from lines


def _sniff(lines: Iterator[str]) -> tuple[str, Iterator[str]]:
    """Decide the format from the first meaningful line, giving back every line read."""
    seen: list[str] = []
    fmt = "text"
    for line in lines:
        seen.append(line)
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            cells = {_column_name(cell) for cell in stripped.split(",")}
            if set(_REQUIRED_CSV_COLUMNS) <= cells:
                fmt = "csv"
            break
    return fmt, itertools.chain(seen, lines)


def _column_name(cell: str) -> str:
    # Quotes are stripped too: the csv module leaves them on a quoted cell after a space
    # (`a, "hash"`), a header some tools write.
    return cell.strip().strip('"').strip().lower()


class _Collector:
    """Gathers parsed lines into items: groups labels, drops duplicates, keeps order."""

    def __init__(self) -> None:
        #: Items in order of first appearance; a labelled one is filled in at the end.
        self.slots: list[ListItem | _Group] = []
        self.groups: dict[str, _Group] = {}
        #: Values of the unlabelled one-fingerprint items kept so far, by signal: plain
        #: int sets, as they are checked for every line of a large list.
        self.seen_values: dict[str, set[int]] = {name: set() for name in SIGNAL_TYPES}
        #: The (signal, value) pairs of each unlabelled item of several fingerprints.
        self.seen_groups: set[frozenset[tuple[str, int]]] = set()
        self.problems: list[ListProblem] = []
        self.duplicates = 0

    def add(self, fingerprints: Sequence[Fingerprint], label: str, reason: str, line: int) -> None:
        if not label:
            if self._seen(fingerprints):
                self.duplicates += 1
            else:
                self.slots.append(ListItem(tuple(fingerprints), "", reason, line))
            return
        group = self.groups.get(label)
        if group is None:
            group = self.groups[label] = _Group(label, line)
            self.slots.append(group)
        if not group.add(fingerprints):
            self.duplicates += 1
        if not group.reason:
            group.reason = reason

    def _seen(self, fingerprints: Sequence[Fingerprint]) -> bool:
        """Whether an equal unlabelled item was kept already; remembers this one if not."""
        if len(fingerprints) == 1:
            values = self.seen_values.setdefault(fingerprints[0].signal, set())
            if fingerprints[0].value in values:
                return True
            values.add(fingerprints[0].value)
            return False
        key = frozenset((f.signal, f.value) for f in fingerprints)
        if key in self.seen_groups:
            return True
        self.seen_groups.add(key)
        return False

    def problem(self, line: int, message: str) -> None:
        self.problems.append(ListProblem(line, message))

    def result(self, lines: int, fmt: str) -> ParsedList:
        items = tuple(s if isinstance(s, ListItem) else s.item() for s in self.slots)
        return ParsedList(items, tuple(self.problems), lines, self.duplicates, fmt)


@dataclass(slots=True)
class _Group:
    """A labelled item being assembled from its lines."""

    label: str
    line: int
    reason: str = ""
    fingerprints: list[Fingerprint] = field(default_factory=list)
    keys: set[tuple[str, int, float | None]] = field(default_factory=set)

    def add(self, fingerprints: Iterable[Fingerprint]) -> bool:
        """Add the fingerprints the item lacks; False if it had them all."""
        added = False
        for fingerprint in fingerprints:
            key = (fingerprint.signal, fingerprint.value, fingerprint.seconds)
            if key not in self.keys:
                self.keys.add(key)
                self.fingerprints.append(fingerprint)
                added = True
        return added

    def item(self) -> ListItem:
        return ListItem(tuple(self.fingerprints), self.label, self.reason, self.line)


def _parse_text(lines: Iterable[str], progress: Callable[[int], None] | None) -> ParsedList:
    collector = _Collector()
    # The hot path, a bare "pdq <hex>" or "phash <hex>" line, is handled inline: a split,
    # a dict lookup and a strict hex decode, no regex and no function call per line.
    fast: dict[str, tuple[str, int, int | None, set[int]]] = {
        signal.name: (signal.name, signal.hex_length, quality, collector.seen_values[signal.name])
        for signal, quality in ((PDQ, LIST_PDQ_QUALITY), (PHASH, None))
    }
    append = collector.slots.append
    number = 0
    for number, raw in enumerate(lines, 1):
        if progress is not None and number % PROGRESS_EVERY == 0:
            progress(number)
        parts = raw.split(None, 2)
        if not parts or parts[0][0] == "#":
            continue
        if len(parts) == 2:
            known = fast.get(parts[0])
            if known is not None and len(parts[1]) == known[1]:
                try:
                    # bytes.fromhex accepts hex digits only, unlike int(x, 16), which
                    # also takes "0x", "_", signs and non-ASCII digits. The token holds no
                    # whitespace (it came from split), the one other thing fromhex skips.
                    value = int.from_bytes(bytes.fromhex(parts[1]))
                except ValueError:
                    pass  # the full parser below names what is wrong
                else:
                    seen = known[3]
                    if value in seen:
                        collector.duplicates += 1
                    else:
                        seen.add(value)
                        append(ListItem((Fingerprint(known[0], value, known[2]),), "", "", number))
                    continue
        try:
            fingerprints, label = _parse_text_line(raw.strip())
        except HashFormatError as exc:
            collector.problem(number, str(exc))
            continue
        collector.add(fingerprints, label, "", number)
    if progress is not None and (number == 0 or number % PROGRESS_EVERY != 0):
        progress(number)
    return collector.result(number, "text")


def _parse_text_line(line: str) -> tuple[list[Fingerprint], str]:
    """Parse one stripped, non-comment text line into its fingerprints and item label."""
    name, *rest = line.split(None, 1)
    signal = get_signal_type(name)
    tail = rest[0] if rest else ""
    if not tail or tail.startswith("#"):
        raise HashFormatError(f"{name!r} line has no hash; expected {_TEXT_LINE}")
    if signal is VPDQ:
        frames, end = _tx_frames(tail)
        return frames, _text_label(tail[end:])
    text, *after = tail.split(None, 1)
    value = signal.parse(text)
    quality = LIST_PDQ_QUALITY if signal is PDQ else None
    return [Fingerprint(signal.name, value, quality)], _text_label(after[0] if after else "")


def _text_label(text: str) -> str:
    comment = _COMMENT.search(text)
    return (text[: comment.start()] if comment else text).strip()


def _tx_frames(text: str) -> tuple[list[Fingerprint], int]:
    """Decode a ThreatExchange vPDQ frame list at the start of ``text``.

    Returns the frames and where the list ends: the JSON itself contains spaces (json.dumps
    writes ", "), so its end is found by decoding it, not by splitting the line.
    """
    if not text.startswith("["):
        raise HashFormatError(f"vpdq hash {_clip(text)!r} is not {_TX_FRAMES}")
    try:
        data, end = _JSON.raw_decode(text)
    except json.JSONDecodeError as exc:
        problem = f"{exc.msg} at character {exc.pos}"
    # Hostile input: an integer of thousands of digits, or thousands of nested brackets.
    except (ValueError, RecursionError) as exc:
        problem = str(exc) or type(exc).__name__
    else:
        if not data:
            raise HashFormatError(
                f"vpdq frame list {_clip(text[:end])!r} is empty; expected {_TX_FRAMES}"
            )
        problem = ""
    if problem:
        raise HashFormatError(
            f"vpdq frame list {_clip(text)!r} is not valid JSON ({_clip(problem)}); "
            f"expected {_TX_FRAMES}"
        )
    frames: list[Fingerprint] = []
    seen: set[tuple[int, float | None]] = set()
    for number, entry in enumerate(data, 1):
        frame = _tx_frame(entry, number)
        # A still scene repeats a hash at other times, which is kept; the very same
        # frame twice is not.
        if (frame.value, frame.seconds) not in seen:
            seen.add((frame.value, frame.seconds))
            frames.append(frame)
    return frames, end


def _tx_frame(entry: object, number: int) -> Fingerprint:
    where = f"vpdq frame {number}"
    if not isinstance(entry, str):
        raise HashFormatError(
            f"{where} is {_clip(json.dumps(entry))}, not a string; expected {_TX_FRAME}"
        )
    parts = entry.split(",")
    if len(parts) != 3:
        raise HashFormatError(
            f"{where} {_clip(entry)!r} has {len(parts)} comma-separated fields; "
            f"expected 3: {_TX_FRAME}"
        )
    try:
        value = VPDQ.parse(parts[0])
    except HashFormatError as exc:
        raise HashFormatError(f"{where}: {exc}") from None
    quality = _quality(parts[1], where)
    seconds = _seconds(parts[2], where)
    return Fingerprint(VPDQ.name, value, quality, seconds)


def _quality(text: str, where: str) -> int:
    text = text.strip()
    if len(text) <= 3 and text.isascii() and text.isdigit() and int(text) <= 100:
        return int(text)
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    # A whole float ("98.0") is accepted: spreadsheet and pandas exports write ints so.
    if not number.is_integer() or not 0 <= number <= 100:
        raise HashFormatError(
            f"{where}: quality {_clip(text)!r} is not a whole number from 0 to 100"
        )
    return int(number)


def _seconds(text: str, where: str) -> float:
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise HashFormatError(
            f"{where}: time {_clip(text)!r} is not a number of seconds; "
            "expected a number >= 0 such as 1.5"
        )
    return seconds


def _parse_csv(lines: Iterator[str], progress: Callable[[int], None] | None) -> ParsedList:
    collector = _Collector()
    # Comment and blank lines before the header are skipped here, before the csv module
    # sees them, so a quote in a comment cannot open a field that swallows the header.
    skipped = 0
    header_line = None
    for line in lines:
        if line.strip() and not line.lstrip().startswith("#"):
            header_line = line
            break
        skipped += 1
    if header_line is None:
        return collector.result(skipped, "csv")
    reader = csv.reader(_with_line_ends(itertools.chain([header_line], lines)))
    header = [_column_name(cell) for cell in next(reader)]
    read = skipped + reader.line_num
    columns = {name: header.index(name) for name in CSV_COLUMNS if name in header}
    missing = [name for name in _REQUIRED_CSV_COLUMNS if name not in columns]
    if missing:
        raise ListFormatError(
            f"CSV header on line {skipped + 1} has no {' or '.join(missing)} column; found "
            f"columns: {', '.join(repr(h) for h in header)}; expected at least "
            f"{', '.join(_REQUIRED_CSV_COLUMNS)} (optional: "
            f"{', '.join(c for c in CSV_COLUMNS if c not in _REQUIRED_CSV_COLUMNS)})"
        )

    width = len(header)
    # Where each of CSV_COLUMNS is in a fitted row; an absent one reads the empty cell
    # ``_fit_row`` appends at index ``width``.
    at = [columns.get(name, width) for name in CSV_COLUMNS]
    next_progress = PROGRESS_EVERY
    for row in reader:
        number = read + 1  # a row starts on the line after the previous row ended
        read = skipped + reader.line_num
        if progress is not None and read >= next_progress:
            progress(read)
            next_progress = (read // PROGRESS_EVERY + 1) * PROGRESS_EVERY
        row = _fit_row(row, width)
        name, text, label, reason, quality, seconds = [_unsafe(row[i].strip()) for i in at]
        if _is_skipped_row(name, row):
            continue
        try:
            fingerprints = _csv_fingerprints(name, text, quality, seconds)
        except HashFormatError as exc:
            collector.problem(number, str(exc))
            continue
        collector.add(fingerprints, label, reason[:MAX_REASON_CHARS], number)
    if progress is not None and (read == 0 or read % PROGRESS_EVERY != 0):
        progress(read)
    return collector.result(read, "csv")


def _is_skipped_row(signal_type: str, row: list[str]) -> bool:
    """Blank rows and comments. A row starting with "#" is a comment unless it has a
    signal type of its own: an item label "#1" in a first column does not hide a real row."""
    if signal_type:
        return signal_type[0] == "#"
    return row[0].lstrip().startswith("#") or not any(cell.strip() for cell in row)


def _fit_row(row: list[str], width: int) -> list[str]:
    """The row cut or padded to the header's width, plus one empty cell at the end."""
    if len(row) == width:
        row.append("")
        return row
    return [*row[:width], *[""] * (width - min(len(row), width)), ""]


def _csv_fingerprints(name: str, text: str, quality: str, seconds: str) -> list[Fingerprint]:
    if not name:
        raise HashFormatError(f"signal_type is empty; expected one of: {', '.join(SIGNAL_TYPES)}")
    signal = SIGNAL_TYPES.get(name) or get_signal_type(name)
    if not text:
        raise HashFormatError(f"{signal.name} row has an empty hash column; expected a hash")
    if signal is VPDQ and text.startswith("["):
        frames, end = _tx_frames(text)
        if text[end:].strip():
            raise HashFormatError(
                f"vpdq hash has {_clip(text[end:].strip())!r} after its frame list; "
                f"expected only {_TX_FRAMES}"
            )
        return frames
    value = _parse_hash(signal, text)
    if signal is PHASH:
        return [Fingerprint(signal.name, value)]  # pHash has no quality score to keep
    where = f"{signal.name} row"
    score = _quality(quality, where) if quality else LIST_PDQ_QUALITY
    if signal is PDQ:
        return [Fingerprint(signal.name, value, score)]
    if not seconds:
        raise HashFormatError(
            f"vpdq frame row has no time; expected its seconds in the 'seconds' column "
            f"or the whole video's frames in 'hash' as {_TX_FRAMES}"
        )
    return [Fingerprint(signal.name, value, score, _seconds(seconds, where))]


def _parse_hash(signal: SignalType, text: str) -> int:
    """``signal.parse`` with a fast path for the plain lowercase-or-uppercase hex of most
    lists (bytes.fromhex takes hex digits only; the length check catches the whitespace
    it would skip)."""
    if len(text) == signal.hex_length:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            pass
        else:
            if len(raw) * 2 == len(text):
                return int.from_bytes(raw)
    return signal.parse(text)  # names what is wrong


def _with_line_ends(lines: Iterable[str]) -> Iterator[str]:
    """Lines ending in a newline, which the csv module needs to rejoin a quoted field
    that spans lines (lines split from a string have lost theirs)."""
    for line in lines:
        yield line if line.endswith("\n") else line + "\n"


def _describe_problems(problems: Sequence[ListProblem]) -> str:
    count = len(problems)
    shown = "\n".join(f"  {problem}" for problem in problems[:SHOWN_PROBLEMS])
    more = f"\n  ... and {count - SHOWN_PROBLEMS} more" if count > SHOWN_PROBLEMS else ""
    noun = "line" if count == 1 else "lines"
    return f"hash list has {count} malformed {noun}; nothing was loaded:\n{shown}{more}"
