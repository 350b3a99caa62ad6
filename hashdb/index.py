"""The in-memory near-match index: which blocked hashes lie within a distance of a probe.

The index is loaded from the store at start (``add_columns``, no Python object per hash)
and updated on every block and unblock, so a new entry is matchable at once. It answers
with distances, not just yes/no, so the audit trail can say how close a match was.

``BlocklistIndex`` keeps one ``hashdb.signal_index.SignalIndex`` per (bank, signal), which
does the searching; ``ColumnBuilder`` turns the store's rows into the columns it loads.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hashdb.fingerprint import Fingerprint
from hashdb.records import Entry
from hashdb.signal_index import MIH_MIN_ROWS, NO_GROUP, WORD_BITS, SignalIndex
from hashdb.signals import SIGNAL_TYPES, SignalType


@dataclass(frozen=True, slots=True)
class SignalColumns:
    """One signal's hashes of many entries as arrays: what start-up loads from the store."""

    entry_ids: npt.NDArray[np.int64]
    bank_ids: npt.NDArray[np.int64]
    #: ``(n, bits / 64)``, least significant word first.
    words: npt.NDArray[np.uint64]
    #: PDQ quality, 0 where none was recorded.
    qualities: npt.NDArray[np.int64]
    #: The video second a frame is from, or ``NO_GROUP``.
    groups: npt.NDArray[np.int64]

    def take(self, rows: npt.NDArray[Any]) -> SignalColumns:
        """These columns at ``rows`` (indexes or a boolean mask)."""
        return SignalColumns(*(getattr(self, field)[rows] for field in self.__slots__))

    @staticmethod
    def concat(parts: Sequence[SignalColumns]) -> SignalColumns:
        return SignalColumns(
            *(np.concatenate([getattr(p, field) for p in parts]) for field in parts[0].__slots__)
        )


class ColumnBuilder:
    """Collects the active entries' hashes into ``SignalColumns``, batch by batch, so
    millions of hashes never exist as Python ints.

    ``feed`` takes rows of ``(entry id, bank id, signal, hex hash, quality, seconds)``;
    ``feed_joined`` takes the same as columns with the hashes in one string, which a store
    can produce without a Python object per row (SQLite's ``group_concat``).
    """

    def __init__(self) -> None:
        self._parts: dict[str, list[SignalColumns]] = {}
        self._entries: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = []

    def feed(self, rows: Sequence[tuple[int, int, str, str, int | None, float | None]]) -> None:
        """Add rows; raises ``ValueError`` naming the entry of an unknown signal or a
        malformed hash."""
        if not rows:
            return
        entry_ids, bank_ids, signals, hexes, qualities, seconds = zip(*rows, strict=True)
        self._add(
            np.array(entry_ids, dtype=np.int64),
            np.array(bank_ids, dtype=np.int64),
            signals,
            list(hexes),
            # None becomes NaN in a float array: no Python loop per row.
            np.array(qualities, dtype=np.float64),
            np.array(seconds, dtype=np.float64),
        )

    def feed_joined(
        self,
        entry_ids: npt.NDArray[np.int64],
        bank_ids: npt.NDArray[np.int64],
        signals: Sequence[str],
        hex_text: str,
        qualities: npt.NDArray[np.float64],
        seconds: npt.NDArray[np.float64],
    ) -> bool:
        """Like ``feed``, the hashes concatenated in row order in ``hex_text`` and NaN for
        no quality or seconds. The caller vouches that each hash has its signal's hex
        length (SQLite checks it in the same query); only the total is checked here.
        Returns False, adding nothing, when an unknown signal comes or the text does not
        split into the signals' lengths: the store then feeds that batch as rows, which
        names the bad entry."""
        count = len(entry_ids)
        if not (len(bank_ids) == len(signals) == len(qualities) == len(seconds) == count):
            return False
        kinds = set(signals)
        if not kinds <= SIGNAL_TYPES.keys():
            return False
        if len(kinds) == 1:
            if len(hex_text) != count * SIGNAL_TYPES[signals[0]].hex_length:
                return False
            self._add(entry_ids, bank_ids, signals, hex_text, qualities, seconds)
            return True
        lengths = {name: SIGNAL_TYPES[name].hex_length for name in kinds}
        ends = np.cumsum([lengths[signal] for signal in signals]).tolist()
        if not ends or ends[-1] != len(hex_text):
            return False
        hexes = [hex_text[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]
        self._add(entry_ids, bank_ids, signals, hexes, qualities, seconds)
        return True

    def _add(
        self,
        ids: npt.NDArray[np.int64],
        banks: npt.NDArray[np.int64],
        signals: Sequence[str],
        hexes: list[str] | str,
        qualities: npt.NDArray[np.float64],
        seconds: npt.NDArray[np.float64],
    ) -> None:
        """``hexes``: one string per row, or (one signal only) all of them joined."""
        quality = np.nan_to_num(qualities, nan=0.0).astype(np.int64)
        group = np.where(np.isnan(seconds), NO_GROUP, np.nan_to_num(seconds).astype(np.int64))
        kinds = set(signals)
        for signal in kinds:
            pick: slice | npt.NDArray[np.intp] = slice(None)
            part_hexes = hexes
            if len(kinds) > 1:
                pick = np.flatnonzero(np.array(signals, dtype=object) == signal)
                part_hexes = [hexes[at] for at in pick.tolist()]
            signal_type = SIGNAL_TYPES.get(signal)
            if signal_type is None:
                raise ValueError(
                    f"entry {ids[pick][0]} has a fingerprint of unknown signal {signal!r}; "
                    f"this hashguard knows: {', '.join(SIGNAL_TYPES)}"
                )
            self._parts.setdefault(signal, []).append(
                SignalColumns(
                    ids[pick],
                    banks[pick],
                    _words_from_hex(signal_type, ids[pick], part_hexes),
                    quality[pick],
                    group[pick],
                )
            )
        # An entry's rows come together: one id per run here, the rest sorted out in finish.
        first = _run_starts(ids)
        self._entries.append((ids[first], banks[first]))

    def finish(
        self,
    ) -> tuple[dict[str, SignalColumns], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Per signal its columns, and every entry's id and bank (entries in id order)."""
        columns = {}
        for signal, parts in self._parts.items():
            column = SignalColumns.concat(parts)
            # Rows in entry order let the index find an entry's rows by binary search.
            if not np.all(column.entry_ids[1:] >= column.entry_ids[:-1]):
                column = column.take(np.argsort(column.entry_ids, kind="stable"))
            columns[signal] = column
        if not self._entries:
            empty = np.empty(0, dtype=np.int64)
            return columns, empty, empty
        ids = np.concatenate([ids for ids, _ in self._entries])
        banks = np.concatenate([banks for _, banks in self._entries])
        # Batches may come in any order, and an entry's rows may straddle two of them.
        order = np.argsort(ids, kind="stable")
        ids, banks = ids[order], banks[order]
        first = _run_starts(ids)
        return columns, ids[first], banks[first]


def _words_from_hex(
    signal: SignalType, entry_ids: npt.NDArray[np.int64], hexes: list[str] | str
) -> npt.NDArray[np.uint64]:
    """Rows of words from hex hashes, given one per entry or all joined in one string."""
    words, width = signal.bits // WORD_BITS, signal.hex_length
    count = len(entry_ids)
    text = hexes if isinstance(hexes, str) else "".join(hexes)
    # Widths item by item: two bad lengths that add up must not shift every later hash.
    widths_ok = isinstance(hexes, str) or all(len(one) == width for one in hexes)
    if widths_ok and len(text) == count * width:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
        # fromhex skips whitespace, which would also shift the hashes after it.
        if len(raw) == count * width // 2:
            # Hex is most significant first; rows keep their least significant word first.
            big_endian = np.frombuffer(raw, dtype=">u8").reshape(count, words)
            return big_endian[:, ::-1].astype(np.uint64)
    if isinstance(hexes, str):
        hexes = [hexes[at : at + width] for at in range(0, len(hexes), width)]
    # Some value is not the store's own fixed-width form: parse one by one, naming the bad.
    values = []
    for entry_id, one in zip(entry_ids.tolist(), hexes, strict=True):
        try:
            values.append(signal.parse(one))
        except ValueError as exc:
            raise ValueError(f"entry {entry_id} has a corrupt fingerprint: {exc}") from exc
    raw = b"".join(value.to_bytes(signal.bits // 8, "little") for value in values)
    return np.frombuffer(raw, dtype="<u8").astype(np.uint64).reshape(count, words)


@dataclass(frozen=True, slots=True)
class IndexHit:
    """One blocklist entry near a probe: its best distance for one signal."""

    entry_id: int
    signal: str
    distance: int
    #: The probe that came closest (the first given, on a tie).
    probe: Fingerprint


class BlocklistIndex:
    """Every bank's active entries, one ``SignalIndex`` per (bank, signal).

    A query names the banks it may see (a group's own bank and the banks it uses), so groups
    never see each other's entries.
    """

    def __init__(self) -> None:
        self._indexes: dict[tuple[int, str], SignalIndex] = {}
        #: entry id -> (bank id, the signals it has hashes in), to find it again on removal.
        #: entry id -> (bank id, bit mask of the signals it has hashes in).
        self._entries = _EntryTable()
        self._bank_sizes: dict[int, int] = {}

    @classmethod
    def build(cls, entries: Iterable[Entry]) -> BlocklistIndex:
        """An index of ``entries`` (typically ``Store.active_entries()``).

        As with ``add_entry``, an id given twice keeps its last entry.
        """
        index = cls()
        index.add_entries(entries)
        return index

    def add_entries(self, entries: Iterable[Entry]) -> None:
        """Add many entries at once (start-up, imports): one bulk insert per index."""
        latest = {entry.id: entry for entry in entries}
        pending: dict[
            tuple[int, str], tuple[list[tuple[int, int]], list[int | None], list[int | None]]
        ] = {}
        for entry in latest.values():
            self._register(entry)
            for fingerprint in entry.fingerprints:
                items, groups, qualities = pending.setdefault(
                    (entry.bank_id, fingerprint.signal), ([], [], [])
                )
                items.append((entry.id, fingerprint.value))
                groups.append(_group(fingerprint))
                qualities.append(fingerprint.quality)
        # One bulk insert per (bank, signal) instead of one per hash: startup with a large
        # blocklist is dominated by this.
        for key, (items, groups, qualities) in pending.items():
            self._index_for(key).add_many(items, groups, qualities)

    def add_columns(
        self,
        columns: Mapping[str, SignalColumns],
        entry_ids: npt.NDArray[np.int64],
        bank_ids: npt.NDArray[np.int64],
        min_quality: Mapping[str, int],
    ) -> None:
        """Bulk load (start-up): every entry in ``entry_ids`` (distinct, not yet indexed)
        with its bank, and their hashes by signal. A hash with a quality below its
        signal's ``min_quality`` is left out, as ``Matcher.indexable`` leaves it out; the
        others keep their quality for searches' ``min_quality``."""
        masks = np.zeros(len(entry_ids), dtype=np.int64)
        for signal, column in columns.items():
            if signal not in SIGNAL_TYPES:
                raise ValueError(
                    f"unknown signal {signal!r}; expected one of: {', '.join(SIGNAL_TYPES)}"
                )
            keep = column.qualities >= min_quality.get(signal, -1)
            if not keep.all():
                column = column.take(keep)
            # Entries are sorted, so each hash's entry is found by binary search (an entry
            # with several hashes is set several times, to the same value).
            masks[np.searchsorted(entry_ids, column.entry_ids)] |= _SIGNAL_BITS[signal]
            order = np.argsort(column.bank_ids, kind="stable")
            banks = column.bank_ids[order]
            for start, stop in _runs(banks):
                rows = order[start:stop]
                self._index_for((int(banks[start]), signal)).add_arrays(
                    column.entry_ids[rows],
                    column.words[rows],
                    column.groups[rows],
                    column.qualities[rows],
                )
        self._entries.put_many(entry_ids, bank_ids, masks)
        # Banks come in long runs of consecutive ids: count by run, not by entry.
        for start, stop in _runs(bank_ids):
            bank_id = int(bank_ids[start])
            self._bank_sizes[bank_id] = self._bank_sizes.get(bank_id, 0) + stop - start

    def prepare(self) -> None:
        """Sort every index's buckets now, so no upload waits for it."""
        for index in self._indexes.values():
            index.prepare()

    def add_entry(self, entry: Entry) -> None:
        """Make an active entry's fingerprints matchable; re-adding an id replaces it."""
        self._register(entry)
        for fingerprint in entry.fingerprints:
            self._index_for((entry.bank_id, fingerprint.signal)).add(
                entry.id, fingerprint.value, _group(fingerprint), fingerprint.quality
            )

    def remove_entry(self, entry_id: int) -> None:
        """Stop matching an entry; an id not in the index is ignored."""
        known = self._entries.pop(entry_id)
        if known is None:
            return
        bank_id, signal_mask = known
        for signal in _signals_of(signal_mask):
            key = (bank_id, signal)
            index = self._indexes[key]
            index.remove(entry_id)
            if not len(index):
                del self._indexes[key]
        self._bank_sizes[bank_id] -= 1
        if not self._bank_sizes[bank_id]:
            del self._bank_sizes[bank_id]

    def query(
        self,
        bank_ids: Iterable[int],
        fingerprint_probes: Sequence[Fingerprint],
        max_distance: Mapping[str, int],
        min_quality: Mapping[str, int] | None = None,
    ) -> list[IndexHit]:
        """The banks' entries near any probe: the best hit per (entry, signal).

        Only signals named in ``max_distance`` are searched, each within its own radius,
        and (signals named in ``min_quality``) only among hashes of at least that quality.
        Sorted by distance, then entry id, then signal.
        """
        floors = min_quality or {}
        by_signal: dict[str, list[Fingerprint]] = {}
        for probe in fingerprint_probes:
            if probe.signal in max_distance:
                by_signal.setdefault(probe.signal, []).append(probe)
        hits: list[IndexHit] = []
        for bank_id in set(bank_ids):
            for signal, probes in by_signal.items():
                index = self._indexes.get((bank_id, signal))
                if index is None:
                    continue
                found = index.search(
                    [p.value for p in probes], max_distance[signal], floors.get(signal, 0)
                )
                hits += (
                    IndexHit(entry_id, signal, distance, probes[at])
                    for entry_id, distance, at in found
                )
        hits.sort(key=lambda hit: (hit.distance, hit.entry_id, hit.signal))
        return hits

    def pairs(
        self,
        bank_ids: Iterable[int],
        signal: str,
        values: Sequence[int],
        max_distance: int,
        min_quality: int = 0,
    ) -> list[tuple[int, int, int, int]]:
        """``SignalIndex.pairs`` over the banks' indexes of ``signal``."""
        found: list[tuple[int, int, int, int]] = []
        for bank_id in sorted(set(bank_ids)):
            index = self._indexes.get((bank_id, signal))
            if index is not None:
                found += index.pairs(values, max_distance, min_quality)
        return found

    def count_below(self, bank_ids: Iterable[int], signal: str, quality: int) -> int:
        """How many of the banks' ``signal`` hashes have a quality under ``quality``."""
        return sum(
            index.count_below(quality)
            for bank_id in set(bank_ids)
            if (index := self._indexes.get((bank_id, signal))) is not None
        )

    def group_count(self, signal: str, entry_id: int, min_quality: int = 0) -> int:
        """Distinct groups (seconds of a video; else hashes) of an entry's ``signal`` hashes
        of at least ``min_quality``."""
        known = self._entries.get(entry_id)
        index = self._indexes.get((known[0], signal)) if known is not None else None
        return index.group_count(entry_id, min_quality) if index is not None else 0

    def groups(self, signal: str, entry_id: int, min_quality: int = 0) -> list[int]:
        """The distinct groups of an entry's ``signal`` hashes of at least ``min_quality``
        (see ``SignalIndex.groups``)."""
        known = self._entries.get(entry_id)
        index = self._indexes.get((known[0], signal)) if known is not None else None
        return index.groups(entry_id, min_quality) if index is not None else []

    def bank_of(self, entry_id: int) -> int | None:
        """The bank an indexed entry belongs to."""
        known = self._entries.get(entry_id)
        return known[0] if known is not None else None

    def size(self, bank_id: int | None = None) -> int:
        """The number of entries indexed, for one bank or for all."""
        if bank_id is None:
            return len(self._entries)
        return self._bank_sizes.get(bank_id, 0)

    def _register(self, entry: Entry) -> None:
        # Everything is checked before anything changes, so a bad entry leaves no trace.
        if not entry.active:
            raise ValueError(f"entry {entry.id} was removed; only active entries are indexed")
        for fingerprint in entry.fingerprints:
            limit = _VALUE_LIMITS.get(fingerprint.signal)
            if limit is None or not 0 <= fingerprint.value < limit:
                raise ValueError(_refusal(entry.id, fingerprint))
        if self._entries.get(entry.id) is not None:
            self.remove_entry(entry.id)
        signal_mask = 0
        for fingerprint in entry.fingerprints:
            signal_mask |= _SIGNAL_BITS[fingerprint.signal]
        self._entries.put(entry.id, entry.bank_id, signal_mask)
        self._bank_sizes[entry.bank_id] = self._bank_sizes.get(entry.bank_id, 0) + 1

    def _index_for(self, key: tuple[int, str]) -> SignalIndex:
        index = self._indexes.get(key)
        if index is None:
            index = self._indexes[key] = SignalIndex(SIGNAL_TYPES[key[1]])
        return index


def _run_starts(values: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """Where each run of equal values starts."""
    return np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]]))


def _runs(values: npt.NDArray[np.int64]) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of equal values."""
    if not len(values):
        return []
    return list(itertools.pairwise([*_run_starts(values).tolist(), len(values)]))


def _group(fingerprint: Fingerprint) -> int | None:
    """Video frames count by the whole second they are from; other hashes one by one."""
    return None if fingerprint.seconds is None else int(fingerprint.seconds)


#: Signal name -> its bit in an entry's signal mask.
_SIGNAL_BITS = {name: 1 << bit for bit, name in enumerate(SIGNAL_TYPES)}


def _signals_of(mask: int) -> list[str]:
    return [name for name, bit in _SIGNAL_BITS.items() if mask & bit]


class _EntryTable:
    """entry id -> (bank id, signal mask), without Python objects per entry.

    A dict of a million entries costs over 100 bytes each; here most entries sit in
    id-sorted numpy arrays (25 bytes each) found by binary search, and recent ones in a
    small dict that is merged into the arrays once it grows past 1/16 of them.
    """

    def __init__(self) -> None:
        self._ids = np.empty(0, dtype=np.int64)
        self._banks = np.empty(0, dtype=np.int64)
        self._masks = np.empty(0, dtype=np.int64)
        self._alive = np.empty(0, dtype=np.bool_)
        self._recent: dict[int, tuple[int, int]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def get(self, entry_id: int) -> tuple[int, int] | None:
        known = self._recent.get(entry_id)
        if known is not None:
            return known
        at = self._find(entry_id)
        return None if at is None else (int(self._banks[at]), int(self._masks[at]))

    def put(self, entry_id: int, bank_id: int, signal_mask: int) -> None:
        """Add an id that is not in the table."""
        self._recent[entry_id] = (bank_id, signal_mask)
        self._count += 1
        if len(self._recent) > max(MIH_MIN_ROWS, len(self._ids) // 16):
            self._merge()

    def put_many(
        self,
        ids: npt.NDArray[np.int64],
        banks: npt.NDArray[np.int64],
        masks: npt.NDArray[np.int64],
    ) -> None:
        """Add distinct ids that are not in the table."""
        self._count += len(ids)
        self._merge(ids, banks, masks)

    def pop(self, entry_id: int) -> tuple[int, int] | None:
        known = self._recent.pop(entry_id, None)
        if known is None:
            at = self._find(entry_id)
            if at is None:
                return None
            known = (int(self._banks[at]), int(self._masks[at]))
            self._alive[at] = False
        self._count -= 1
        return known

    def _find(self, entry_id: int) -> int | None:
        at = int(np.searchsorted(self._ids, entry_id))
        if at < len(self._ids) and self._ids[at] == entry_id and self._alive[at]:
            return at
        return None

    def _merge(
        self,
        ids: npt.NDArray[np.int64] | None = None,
        banks: npt.NDArray[np.int64] | None = None,
        masks: npt.NDArray[np.int64] | None = None,
    ) -> None:
        recent = self._recent
        keep = self._alive
        parts = [
            (self._ids[keep], self._banks[keep], self._masks[keep]),
            (
                np.fromiter(recent.keys(), dtype=np.int64, count=len(recent)),
                np.fromiter((v[0] for v in recent.values()), dtype=np.int64, count=len(recent)),
                np.fromiter((v[1] for v in recent.values()), dtype=np.int64, count=len(recent)),
            ),
        ]
        if ids is not None and banks is not None and masks is not None:
            parts.append((ids, banks, masks))
        columns = zip(*parts, strict=True)
        all_ids, all_banks, all_masks = (np.concatenate(column) for column in columns)
        if not np.all(all_ids[1:] > all_ids[:-1]):
            order = np.argsort(all_ids, kind="stable")
            all_ids, all_banks, all_masks = all_ids[order], all_banks[order], all_masks[order]
        self._ids, self._banks, self._masks = all_ids, all_banks, all_masks
        self._alive = np.ones(len(all_ids), dtype=np.bool_)
        self._recent = {}


#: Signal name -> the first value too large for its width.
_VALUE_LIMITS = {name: 1 << signal.bits for name, signal in SIGNAL_TYPES.items()}


def _refusal(entry_id: int, fingerprint: Fingerprint) -> str:
    signal = SIGNAL_TYPES.get(fingerprint.signal)
    if signal is None:
        return (
            f"entry {entry_id} has unknown signal {fingerprint.signal!r}; expected one of: "
            f"{', '.join(SIGNAL_TYPES)}"
        )
    return (
        f"entry {entry_id} has a {signal.name} hash value out of range; expected "
        f"0 <= value < 2**{signal.bits}"
    )
