"""Hash lists: the files that carry fingerprints into and out of the blocklist.

Two formats are read and written:

* **text**, python-threatexchange's local file exchange format: one
  ``<signal_type> <hash>`` per line, ``#`` comments and blank lines ignored. An optional
  *item label* may follow the hash (the rest of the line, so a file path with spaces
  fits; ``hashguard hash`` prints ``<signal> <hex> <path>``): lines sharing a label are
  one item, such as a photo's PDQ and pHash. A ``vpdq`` hash is ThreatExchange's frame
  list, a JSON array of ``"<64 hex>,<quality>,<seconds>"`` strings, and one such line is
  one video.
* **CSV** with a header row naming ``signal_type`` and ``hash`` and optionally ``item``,
  ``reason``, ``quality`` and ``seconds``; other columns are ignored, so other tools'
  exports load as they are. A vPDQ video is either a whole frame list in ``hash`` or one
  frame per row grouped by ``item``.

Reading is tolerant line by line: a malformed line becomes a ``ListProblem`` that names
the line, the bad value and what is accepted, and the rest still loads (``strict=True``
loads nothing instead). This module only translates; it touches neither Telegram nor the
database, so the caller decides what the items become (blocklist entries, a bank).

This module is the hash-list API that callers import: writing lives here, reading in
``hashdb.list_reading`` and the values both share in ``hashdb.list_items``.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TextIO

from hashdb.fingerprint import Fingerprint
from hashdb.list_items import (
    CSV_COLUMNS,
    LIST_PDQ_QUALITY,
    ListFormatError,
    ListItem,
    ListProblem,
    ParsedList,
    spreadsheet_safe,
)
from hashdb.list_reading import (
    FORMATS,
    MAX_REASON_CHARS,
    PROGRESS_EVERY,
    SHOWN_PROBLEMS,
    parse_list,
    read_list,
)
from hashdb.signals import PDQ, SIGNAL_TYPES, VPDQ, SignalType

__all__ = [
    "CSV_COLUMNS",
    "FORMATS",
    "LIST_PDQ_QUALITY",
    "MAX_REASON_CHARS",
    "PROGRESS_EVERY",
    "SHOWN_PROBLEMS",
    "ListFormatError",
    "ListItem",
    "ListProblem",
    "ParsedList",
    "fingerprint_set",
    "for_text_export",
    "parse_list",
    "read_list",
    "spreadsheet_safe",
    "text_lines",
    "write_csv",
    "write_text",
]


#: A ``#`` after whitespace starts a comment in a label; one inside a word
#: (``photos/#1.jpg``) is part of it.
_LABEL_COMMENT = re.compile(r"(?:^|\s+)#")
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")


# --- writing ---------------------------------------------------------------------------


def text_lines(items: Iterable[ListItem]) -> Iterator[str]:
    """The items in text format, one line per PDQ or pHash hash and one per video.

    An item of more than one line carries its label (or ``item-<position>`` if it has
    none) so the grouping survives a re-import; a single-line item carries its label only
    if it has one. Labels are made safe for one line: line breaks become spaces and a
    ``#`` that would start a comment gets a ``_`` before it. Lines have no newline.
    """
    for position, item in enumerate(items, 1):
        hashes = _item_hashes(item)
        label = _one_line_label(item.label)
        if not label and len(hashes) > 1:
            label = f"item-{position}"
        suffix = f" {label}" if label else ""
        for line in hashes:
            yield line + suffix


def _item_hashes(item: ListItem) -> list[str]:
    """``<signal> <hash>`` per fingerprint, all vPDQ frames together on one line (at the
    place of the first), as ThreatExchange writes a video."""
    lines: list[str] = []
    frames: list[str] = []
    frames_at = -1
    for fingerprint in item.fingerprints:
        signal = _signal_of(fingerprint)
        if signal is VPDQ:
            if frames_at < 0:
                frames_at = len(lines)
                lines.append("")
            frames.append(_tx_frame_text(fingerprint))
        else:
            lines.append(f"{signal.name} {signal.format(fingerprint.value)}")
    if frames_at >= 0:
        lines[frames_at] = f"{VPDQ.name} {json.dumps(frames)}"
    return lines


def _tx_frame_text(frame: Fingerprint) -> str:
    quality = LIST_PDQ_QUALITY if frame.quality is None else frame.quality
    # Millisecond precision, as ThreatExchange rounds its timestamps.
    return f"{VPDQ.format(frame.value)},{quality},{frame.seconds or 0.0:.3f}"


def _one_line_label(label: str) -> str:
    label = _LINE_BREAKS.sub(" ", label).strip()
    return _LABEL_COMMENT.sub("_#", label)


def _signal_of(fingerprint: Fingerprint) -> SignalType:
    signal = SIGNAL_TYPES.get(fingerprint.signal)
    if signal is None:
        raise ValueError(
            f"cannot write a fingerprint of unknown signal {fingerprint.signal!r}; "
            f"expected one of: {', '.join(SIGNAL_TYPES)}"
        )
    return signal


def write_text(items: Iterable[ListItem], out: TextIO, *, header: str = "") -> int:
    """Write the items in text format, after ``header`` as ``#`` comment lines.

    Returns the number of lines written, header included.
    """
    written = 0
    for line in header.splitlines() if header else ():
        out.write(f"# {line}\n" if line.strip() else "#\n")
        written += 1
    for line in text_lines(items):
        out.write(line + "\n")
        written += 1
    return written


def write_csv(
    items: Iterable[ListItem],
    out: TextIO,
    *,
    extra: Callable[[ListItem], dict[str, object]] | None = None,
    extra_fields: Sequence[str] = (),
) -> int:
    """Write the items as CSV: a header, then one row per fingerprint.

    Columns are ``CSV_COLUMNS`` and then ``extra_fields``, filled per item from
    ``extra(item)`` (``None`` is an empty cell). vPDQ frames are one row each with their
    quality and seconds. An item of more than one row has its label in ``item`` (or
    ``item-<position>`` if it has none) so the grouping survives a re-import.
    Returns the number of rows written, the header not counted.
    """
    clash = [name for name in extra_fields if name in CSV_COLUMNS]
    if clash:
        raise ValueError(
            f"extra field {clash[0]!r} is a built-in column; expected names other than "
            f"{', '.join(CSV_COLUMNS)}"
        )
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *extra_fields])
    written = 0
    for position, item in enumerate(items, 1):
        label = item.label or (f"item-{position}" if len(item.fingerprints) > 1 else "")
        values = _extra_cells(item, extra, extra_fields)
        for fingerprint in item.fingerprints:
            signal = _signal_of(fingerprint)
            quality: object = fingerprint.quality
            seconds = ""
            if signal is VPDQ:
                quality = LIST_PDQ_QUALITY if quality is None else quality
                seconds = f"{fingerprint.seconds or 0.0:.3f}"
            elif not signal.has_quality:
                quality = None
            cells = [
                signal.name,
                signal.format(fingerprint.value),
                _safe(label),
                _safe(item.reason),
            ]
            writer.writerow(
                [*cells, "" if quality is None else quality, seconds, *map(_safe, values)]
            )
            written += 1
    return written


_safe = spreadsheet_safe


def _extra_cells(
    item: ListItem,
    extra: Callable[[ListItem], dict[str, object]] | None,
    extra_fields: Sequence[str],
) -> list[object]:
    if extra is None:
        return [""] * len(extra_fields)
    values = extra(item)
    unknown = [name for name in values if name not in extra_fields]
    if unknown:
        raise ValueError(
            f"extra() returned field {unknown[0]!r}, which is not in extra_fields; "
            f"expected one of: {', '.join(extra_fields) or '(none declared)'}"
        )
    return ["" if values.get(name) is None else values[name] for name in extra_fields]


def for_text_export(items: Iterable[ListItem], min_quality: int) -> tuple[list[ListItem], int]:
    """The items as the text format can carry them, and how many PDQ hashes were left out.

    A ``pdq`` line has no quality, and is read back as fully trusted. A PDQ hash below
    ``min_quality`` (a flat, dark or tiny image, which the bot matches only exactly or by
    the low-detail rule's tighter test) would come back as one that deletes near matches
    at the normal radius, so it is left out; the CSV format keeps it.
    vPDQ frames carry their quality in the line and are kept.
    """
    kept: list[ListItem] = []
    dropped = 0
    for item in items:
        fingerprints = tuple(
            f
            for f in item.fingerprints
            if f.signal != PDQ.name or f.quality is None or f.quality >= min_quality
        )
        dropped += len(item.fingerprints) - len(fingerprints)
        if fingerprints:
            kept.append(
                item
                if len(fingerprints) == len(item.fingerprints)
                else ListItem(fingerprints, item.label, item.reason, item.line)
            )
    return kept, dropped


def fingerprint_set(items: Iterable[ListItem]) -> set[tuple[str, int]]:
    """Every (signal, value) pair the items hold, for comparing lists."""
    return {(f.signal, f.value) for item in items for f in item.fingerprints}
