"""The in-memory near-match index: which blocked hashes lie within a distance of a probe.

The index is rebuilt from the store at start (``BlocklistIndex.build``) and updated on every
block and unblock, so a new entry is matchable at once. It answers with distances, not just
yes/no, so the audit trail can say how close a match was.

This version is an exact linear scan: hashes sit in a numpy ``uint64`` array, one row per
hash and one column per 64-bit word, and a query XORs the probe against every row and
counts bits with ``np.bitwise_count``. A sublinear index (multi-index hashing) can replace
``SignalIndex`` later behind the same API.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hashdb.fingerprint import Fingerprint
from hashdb.signals import SIGNAL_TYPES, SignalType
from hashdb.store import Entry

_WORD_BITS = 64
_MIN_CAPACITY = 16

#: Rows compared per numpy step: the XOR/popcount temporaries of one block stay in cache
#: and memory use stays flat however large the index grows.
_SCAN_BLOCK = 1 << 16

#: The group of a hash added without one: it then counts on its own.
_NO_GROUP = np.iinfo(np.int64).min

#: Larger than any distance, for "no probe compared yet".
_NO_DISTANCE = np.iinfo(np.uint16).max


class SignalIndex:
    """The hashes of one signal type, each tagged with the id of the entry it belongs to.

    An entry may hold several hashes of the signal; queries report each entry once, with
    its best distance.
    """

    def __init__(self, signal: SignalType) -> None:
        if signal.bits % _WORD_BITS:
            raise ValueError(f"{signal.name} has {signal.bits} bits; expected a multiple of 64")
        self.signal = signal
        self._words = signal.bits // _WORD_BITS
        self._hashes: npt.NDArray[np.uint64] = np.zeros(
            (_MIN_CAPACITY, self._words), dtype=np.uint64
        )
        self._ids: npt.NDArray[np.int64] = np.zeros(_MIN_CAPACITY, dtype=np.int64)
        #: Per hash, the group it counts in for ``pairs`` (a video frame's second);
        #: ``_NO_GROUP`` makes each hash its own group.
        self._groups: npt.NDArray[np.int64] = np.full(_MIN_CAPACITY, _NO_GROUP, dtype=np.int64)
        self._alive: npt.NDArray[np.bool_] = np.zeros(_MIN_CAPACITY, dtype=np.bool_)
        #: Rows in use (live or dead); rows past it are free capacity.
        self._used = 0
        self._live = 0
        self._rows: dict[int, list[int]] = {}

    def __len__(self) -> int:
        """The number of live hashes."""
        return self._live

    def add(self, entry_id: int, value: int, group: int | None = None) -> None:
        """Index one hash of ``entry_id``; it is matchable as soon as this returns.

        ``group`` (e.g. the second of a video a frame is from) is what ``pairs`` and
        ``group_count`` count in; by default each hash is its own group.
        """
        self.add_many([(entry_id, value)], None if group is None else [group])

    def add_many(
        self, items: Iterable[tuple[int, int]], groups: Sequence[int | None] | None = None
    ) -> None:
        """Index several ``(entry_id, value)`` hashes at once (much faster than one by one)."""
        pairs = list(items)
        if not pairs:
            return
        if groups is not None and len(groups) != len(pairs):
            raise ValueError(f"{len(groups)} groups given for {len(pairs)} hashes")
        packed = self._pack([value for _, value in pairs])
        start, stop = self._used, self._used + len(pairs)
        self._reserve(stop)
        self._hashes[start:stop] = packed
        self._ids[start:stop] = [entry_id for entry_id, _ in pairs]
        self._groups[start:stop] = (
            _NO_GROUP if groups is None else [_NO_GROUP if g is None else g for g in groups]
        )
        self._alive[start:stop] = True
        for row, (entry_id, _) in enumerate(pairs, start):
            self._rows.setdefault(entry_id, []).append(row)
        self._used = stop
        self._live += len(pairs)

    def remove(self, entry_id: int) -> None:
        """Drop every hash of ``entry_id``; an id not in the index is ignored."""
        rows = self._rows.pop(entry_id, None)
        if not rows:
            return
        self._alive[rows] = False
        self._live -= len(rows)
        # Dead rows still cost scan time; reclaiming them once they are the majority keeps
        # scans at most twice the live size while compaction stays amortised O(1) per row.
        if (self._used - self._live) * 2 > self._used:
            self._compact()

    def query(self, value: int, max_distance: int) -> list[tuple[int, int]]:
        """``(entry_id, distance)`` of every entry within ``max_distance`` of ``value``.

        Sorted by distance, then entry id.
        """
        return self.query_many([value], max_distance)

    def query_many(self, values: Sequence[int], max_distance: int) -> list[tuple[int, int]]:
        """Like ``query`` for several probes (e.g. the 8 orientations of a photo's PDQ).

        Each entry is reported once, with its smallest distance to any probe.
        """
        return [(entry_id, distance) for entry_id, distance, _ in self.search(values, max_distance)]

    def search(self, values: Sequence[int], max_distance: int) -> list[tuple[int, int, int]]:
        """``(entry_id, distance, probe_index)`` per entry within ``max_distance``.

        ``probe_index`` is the position in ``values`` of the probe that came closest (the
        first one on a tie). Sorted by distance, then entry id.
        """
        if max_distance < 0:
            raise ValueError(f"max_distance {max_distance} is negative; expected 0 or more")
        if not values or not self._live:
            return []
        probes = self._pack(values)
        used = self._used
        best = np.full(used, _NO_DISTANCE, dtype=np.uint16)
        closest = np.zeros(used, dtype=np.intp)
        for start in range(0, used, _SCAN_BLOCK):
            stop = min(start + _SCAN_BLOCK, used)
            block = self._hashes[start:stop]
            block_best = best[start:stop]
            block_closest = closest[start:stop]
            for index, probe in enumerate(probes):
                distance = np.bitwise_count(block ^ probe).sum(axis=1, dtype=np.uint16)
                # Strictly less: on a tie the earlier probe is kept, so results are stable.
                better = distance < block_best
                block_best[better] = distance[better]
                block_closest[better] = index
        rows = np.flatnonzero(self._alive[:used] & (best <= max_distance))
        if not rows.size:
            return []
        ids, distances, probe_indexes = self._ids[rows], best[rows], closest[rows]
        order = np.lexsort((probe_indexes, ids, distances))
        ids, distances, probe_indexes = ids[order], distances[order], probe_indexes[order]
        # After the sort an entry's first row is its best; np.unique reports first
        # occurrences, and sorting those positions restores the (distance, id) order.
        _, first = np.unique(ids, return_index=True)
        first.sort()
        return list(
            zip(
                ids[first].tolist(),
                distances[first].tolist(),
                probe_indexes[first].tolist(),
                strict=True,
            )
        )

    def pairs(self, values: Sequence[int], max_distance: int) -> list[tuple[int, int, int, int]]:
        """Every (probe, hash) pair within ``max_distance``: ``(probe_index, entry_id, group,
        distance)``. Video matching counts the distinct groups (seconds) of an entry that
        were hit; a hash added without a group is a group of its own. Sorted by probe index,
        then position in the index.
        """
        if max_distance < 0:
            raise ValueError(f"max_distance {max_distance} is negative; expected 0 or more")
        if not values or not self._live:
            return []
        probes = self._pack(values)
        used = self._used
        alive = self._alive[:used]
        found: list[tuple[int, int, int, int]] = []
        for index, probe in enumerate(probes):
            for start in range(0, used, _SCAN_BLOCK):
                stop = min(start + _SCAN_BLOCK, used)
                distance = np.bitwise_count(self._hashes[start:stop] ^ probe).sum(
                    axis=1, dtype=np.uint16
                )
                rows = np.flatnonzero((distance <= max_distance) & alive[start:stop])
                found += (
                    (
                        index,
                        int(self._ids[start + row]),
                        self._group_key(start + row),
                        int(distance[row]),
                    )
                    for row in rows.tolist()
                )
        return found

    def hash_count(self, entry_id: int) -> int:
        """How many hashes of this signal ``entry_id`` has (e.g. the frames of a video)."""
        return len(self._rows.get(entry_id, ()))

    def group_count(self, entry_id: int) -> int:
        """How many distinct groups ``entry_id``'s hashes fall in (e.g. seconds of a video)."""
        return len({self._group_key(row) for row in self._rows.get(entry_id, ())})

    def _group_key(self, row: int) -> int:
        group = int(self._groups[row])
        # Hashes without a group count one by one; their keys stay clear of real groups.
        return group if group != _NO_GROUP else -1 - row

    def _pack(self, values: Sequence[int]) -> npt.NDArray[np.uint64]:
        """Hash ints as a ``(len(values), words)`` array, least significant word first."""
        limit = 1 << self.signal.bits
        width = self.signal.bits // 8
        for value in values:
            if not 0 <= value < limit:
                raise ValueError(
                    f"{self.signal.name} hash value {value} is out of range; expected "
                    f"0 <= value < 2**{self.signal.bits}"
                )
        raw = b"".join(value.to_bytes(width, "little") for value in values)
        words = np.frombuffer(raw, dtype="<u8").astype(np.uint64)
        return words.reshape(len(values), self._words)

    def _reserve(self, rows: int) -> None:
        capacity = len(self._ids)
        if rows <= capacity:
            return
        while capacity < rows:
            capacity *= 2
        hashes = np.zeros((capacity, self._words), dtype=np.uint64)
        ids = np.zeros(capacity, dtype=np.int64)
        groups = np.full(capacity, _NO_GROUP, dtype=np.int64)
        alive = np.zeros(capacity, dtype=np.bool_)
        hashes[: self._used] = self._hashes[: self._used]
        ids[: self._used] = self._ids[: self._used]
        groups[: self._used] = self._groups[: self._used]
        alive[: self._used] = self._alive[: self._used]
        self._hashes, self._ids, self._groups, self._alive = hashes, ids, groups, alive

    def _compact(self) -> None:
        keep = np.flatnonzero(self._alive[: self._used])
        count = len(keep)
        self._hashes[:count] = self._hashes[keep]
        self._ids[:count] = self._ids[keep]
        self._groups[:count] = self._groups[keep]
        self._alive[:count] = True
        self._alive[count : self._used] = False
        self._used = count
        self._rows = {}
        for row, entry_id in enumerate(self._ids[:count].tolist()):
            self._rows.setdefault(entry_id, []).append(row)


@dataclass(frozen=True, slots=True)
class IndexHit:
    """One blocklist entry near a probe: its best distance for one signal."""

    entry_id: int
    signal: str
    distance: int
    #: The probe that came closest (the first given, on a tie).
    probe: Fingerprint


class BlocklistIndex:
    """Every chat's active entries, one ``SignalIndex`` per (chat, signal).

    Chats never see each other's entries: a query only scans the asking chat's indexes.
    """

    def __init__(self) -> None:
        self._indexes: dict[tuple[int, str], SignalIndex] = {}
        #: entry id -> (chat id, the signals it has hashes in), to find it again on removal.
        self._entries: dict[int, tuple[int, frozenset[str]]] = {}
        self._chat_sizes: dict[int, int] = {}
        self._signal_sets: dict[frozenset[str], frozenset[str]] = {}

    @classmethod
    def build(cls, entries: Iterable[Entry]) -> BlocklistIndex:
        """An index of ``entries`` (typically ``Store.active_entries()``).

        As with ``add_entry``, an id given twice keeps its last entry.
        """
        index = cls()
        latest = {entry.id: entry for entry in entries}
        pending: dict[tuple[int, str], tuple[list[tuple[int, int]], list[int | None]]] = {}
        for entry in latest.values():
            index._register(entry)
            for fingerprint in entry.fingerprints:
                items, groups = pending.setdefault((entry.chat_id, fingerprint.signal), ([], []))
                items.append((entry.id, fingerprint.value))
                groups.append(_group(fingerprint))
        # One bulk insert per (chat, signal) instead of one per hash: startup with a large
        # blocklist is dominated by this.
        for key, (items, groups) in pending.items():
            index._index_for(key).add_many(items, groups)
        return index

    def add_entry(self, entry: Entry) -> None:
        """Make an active entry's fingerprints matchable; re-adding an id replaces it."""
        self._register(entry)
        for fingerprint in entry.fingerprints:
            self._index_for((entry.chat_id, fingerprint.signal)).add(
                entry.id, fingerprint.value, _group(fingerprint)
            )

    def remove_entry(self, entry_id: int) -> None:
        """Stop matching an entry; an id not in the index is ignored."""
        known = self._entries.pop(entry_id, None)
        if known is None:
            return
        chat_id, signals = known
        for signal in signals:
            key = (chat_id, signal)
            index = self._indexes[key]
            index.remove(entry_id)
            if not len(index):
                del self._indexes[key]
        self._chat_sizes[chat_id] -= 1
        if not self._chat_sizes[chat_id]:
            del self._chat_sizes[chat_id]

    def query(
        self,
        chat_id: int,
        fingerprint_probes: Sequence[Fingerprint],
        max_distance: Mapping[str, int],
    ) -> list[IndexHit]:
        """The chat's entries near any probe: the best hit per (entry, signal).

        Only signals named in ``max_distance`` are searched, each within its own radius.
        Sorted by distance, then entry id, then signal.
        """
        by_signal: dict[str, list[Fingerprint]] = {}
        for probe in fingerprint_probes:
            if probe.signal in max_distance:
                by_signal.setdefault(probe.signal, []).append(probe)
        hits: list[IndexHit] = []
        for signal, probes in by_signal.items():
            index = self._indexes.get((chat_id, signal))
            if index is None:
                continue
            found = index.search([p.value for p in probes], max_distance[signal])
            hits += (
                IndexHit(entry_id, signal, distance, probes[at]) for entry_id, distance, at in found
            )
        hits.sort(key=lambda hit: (hit.distance, hit.entry_id, hit.signal))
        return hits

    def pairs(
        self, chat_id: int, signal: str, values: Sequence[int], max_distance: int
    ) -> list[tuple[int, int, int, int]]:
        """``SignalIndex.pairs`` on the chat's index of ``signal`` (empty if it has none)."""
        index = self._indexes.get((chat_id, signal))
        return index.pairs(values, max_distance) if index is not None else []

    def group_count(self, chat_id: int, signal: str, entry_id: int) -> int:
        """Distinct groups (seconds of a video; else hashes) of an entry's ``signal`` hashes."""
        index = self._indexes.get((chat_id, signal))
        return index.group_count(entry_id) if index is not None else 0

    def size(self, chat_id: int | None = None) -> int:
        """The number of entries indexed, for one chat or for all."""
        if chat_id is None:
            return len(self._entries)
        return self._chat_sizes.get(chat_id, 0)

    def _register(self, entry: Entry) -> None:
        # Everything is checked before anything changes, so a bad entry leaves no trace.
        if not entry.active:
            raise ValueError(f"entry {entry.id} was removed; only active entries are indexed")
        for fingerprint in entry.fingerprints:
            limit = _VALUE_LIMITS.get(fingerprint.signal)
            if limit is None or not 0 <= fingerprint.value < limit:
                raise ValueError(_refusal(entry.id, fingerprint))
        if entry.id in self._entries:
            self.remove_entry(entry.id)
        signals = frozenset(f.signal for f in entry.fingerprints)
        # Nearly all entries share one or two signal sets; sharing the frozensets saves
        # a few hundred bytes per entry on a million-entry blocklist.
        signals = self._signal_sets.setdefault(signals, signals)
        self._entries[entry.id] = (entry.chat_id, signals)
        self._chat_sizes[entry.chat_id] = self._chat_sizes.get(entry.chat_id, 0) + 1

    def _index_for(self, key: tuple[int, str]) -> SignalIndex:
        index = self._indexes.get(key)
        if index is None:
            index = self._indexes[key] = SignalIndex(SIGNAL_TYPES[key[1]])
        return index


def _group(fingerprint: Fingerprint) -> int | None:
    """Video frames count by the whole second they are from; other hashes one by one."""
    return None if fingerprint.seconds is None else int(fingerprint.seconds)


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
