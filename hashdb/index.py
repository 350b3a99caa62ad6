"""The in-memory near-match index: which blocked hashes lie within a distance of a probe.

The index is rebuilt from the store at start (``BlocklistIndex.build``) and updated on every
block and unblock, so a new entry is matchable at once. It answers with distances, not just
yes/no, so the audit trail can say how close a match was.

Hashes sit in a numpy ``uint64`` array, one row per hash and one column per 64-bit word;
a distance is the XOR of two rows with its bits counted by ``np.bitwise_count``. Small
indexes, 64-bit signals and wide radii are answered by an exact linear scan. Large 256-bit
indexes (PDQ, vPDQ) use multi-index hashing (Norouzi et al., "Fast Search in Hamming Space
with Multi-Index Hashing", CVPR 2012): the 256 bits are split into 16 chunks of 16 bits,
and by pigeonhole a hash within distance ``d`` of a probe agrees with it within
``d // 16`` bits on at least one chunk. Looking up the probe's chunk values and their
near neighbours in per-chunk buckets therefore yields every possible match; each candidate
is then verified with the exact distance, so results are identical to the linear scan.
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

#: Multi-index hashing splits a hash into chunks of this many bits (256-bit hashes only).
_CHUNK_BITS = 16
_CHUNK_VALUES = 1 << _CHUNK_BITS
_MIH_BITS = 256
_CHUNKS = _MIH_BITS // _CHUNK_BITS

#: Below this many live hashes a linear scan is as fast as the index and needs no upkeep.
_MIH_MIN_ROWS = 4096

#: Per chunk radius -> the XOR masks reaching every chunk value within it. Radius 2 already
#: means 137 lookups per chunk and ~16x the candidates of radius 1; beyond it (a search
#: radius of 48 or more) the linear scan wins, so the index stops there.
_FLIP_MASKS: tuple[npt.NDArray[np.uint16], ...] = tuple(
    np.flatnonzero(np.bitwise_count(np.arange(_CHUNK_VALUES, dtype=np.uint16)) <= radius).astype(
        np.uint16
    )
    for radius in range(3)
)

#: Hashes added since the buckets were last built are scanned linearly; the buckets are
#: rebuilt (O(n)) once that tail exceeds this many rows or 1/16 of the indexed rows, so
#: adding stays amortised O(1) and tail scans stay well under a millisecond.
_MAX_TAIL = 1 << 16


class SignalIndex:
    """The hashes of one signal type, each tagged with the id of the entry it belongs to.

    An entry may hold several hashes of the signal; queries report each entry once, with
    its best distance.
    """

    def __init__(self, signal: SignalType, *, min_index_rows: int = _MIH_MIN_ROWS) -> None:
        """``min_index_rows``: live hashes from which multi-index hashing is used rather
        than a linear scan (for 256-bit signals); tests lower it to exercise the index on
        small data. Results do not depend on it, only speed does.
        """
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
        self._min_index_rows = min_index_rows
        #: Multi-index buckets over rows ``[0, _indexed)``: chunk ``c``'s live rows sorted by
        #: chunk value, the chunks laid end to end; ``_bucket_starts[c, v]`` is where the
        #: rows of chunk ``c`` with value ``v`` start in ``_bucket_rows`` (and
        #: ``[c, v + 1]`` where they end). ``None`` until first needed and after compaction.
        self._bucket_rows: npt.NDArray[np.uint32] | None = None
        #: uint32 (4 MB per index): one is kept per chat and signal past ``min_index_rows``.
        self._bucket_starts: npt.NDArray[np.uint32] | None = None
        self._indexed = 0

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
        candidates = self._candidates(probes, max_distance)
        if candidates is None:
            rows, best, closest = self._scan_all(probes, max_distance)
        else:
            rows, best, closest = self._scan_candidates(probes, max_distance, candidates)
        if not rows.size:
            return []
        ids, distances, probe_indexes = self._ids[rows], best, closest
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
        candidates = self._candidates(probes, max_distance)
        used = self._used
        alive = self._alive[:used]
        found: list[tuple[int, int, int, int]] = []
        for index, probe in enumerate(probes):
            if candidates is None:
                hits: list[tuple[int, int]] = []
                for start in range(0, used, _SCAN_BLOCK):
                    stop = min(start + _SCAN_BLOCK, used)
                    distance = _distances(self._hashes[start:stop], probe)
                    rows = np.flatnonzero((distance <= max_distance) & alive[start:stop])
                    hits += zip((rows + start).tolist(), distance[rows].tolist(), strict=True)
            else:
                rows = candidates[index]
                distance = _distances(np.take(self._hashes, rows, axis=0), probe)
                near = distance <= max_distance
                # Candidates repeat (once per chunk that matched); np.unique drops the
                # repeats and restores index order.
                rows, first = np.unique(rows[near], return_index=True)
                live = alive[rows]
                hits = list(
                    zip(rows[live].tolist(), distance[near][first][live].tolist(), strict=True)
                )
            found += (
                (index, int(self._ids[row]), self._group_key(row), distance)
                for row, distance in hits
            )
        return found

    def hash_count(self, entry_id: int) -> int:
        """How many hashes of this signal ``entry_id`` has (e.g. the frames of a video)."""
        return len(self._rows.get(entry_id, ()))

    def group_count(self, entry_id: int) -> int:
        """How many distinct groups ``entry_id``'s hashes fall in (e.g. seconds of a video)."""
        return len({self._group_key(row) for row in self._rows.get(entry_id, ())})

    def _scan_all(
        self, probes: npt.NDArray[np.uint64], max_distance: int
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.uint16], npt.NDArray[np.intp]]:
        """Linear scan: the live rows within ``max_distance`` of some probe, in index order,
        with their best distance and the (first) probe reaching it."""
        used = self._used
        best = np.full(used, _NO_DISTANCE, dtype=np.uint16)
        closest = np.zeros(used, dtype=np.intp)
        for start in range(0, used, _SCAN_BLOCK):
            stop = min(start + _SCAN_BLOCK, used)
            _best_of(self._hashes[start:stop], probes, best[start:stop], closest[start:stop])
        rows = np.flatnonzero(self._alive[:used] & (best <= max_distance))
        return rows, best[rows], closest[rows]

    def _scan_candidates(
        self,
        probes: npt.NDArray[np.uint64],
        max_distance: int,
        candidates: list[npt.NDArray[np.intp]],
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.uint16], npt.NDArray[np.intp]]:
        """Like ``_scan_all`` over each probe's candidates, but a row may come several
        times (from several chunks or probes), and in no particular order.

        Comparing a probe only with its own candidates is exact: a row left out is
        farther than ``max_distance`` from that probe, so it cannot be its best.
        """
        rows, best, closest = [], [], []
        for index, (probe, candidate_rows) in enumerate(zip(probes, candidates, strict=True)):
            # np.take gathers rows about 3x faster than fancy indexing.
            distance = _distances(np.take(self._hashes, candidate_rows, axis=0), probe)
            near = distance <= max_distance
            near_rows = candidate_rows[near]
            live = self._alive[near_rows]
            rows.append(near_rows[live])
            best.append(distance[near][live])
            closest.append(np.full(len(rows[-1]), index, dtype=np.intp))
        return np.concatenate(rows), np.concatenate(best), np.concatenate(closest)

    def _candidates(
        self, probes: npt.NDArray[np.uint64], max_distance: int
    ) -> list[npt.NDArray[np.intp]] | None:
        """Per probe, rows (possibly repeated, possibly dead) that include every row within
        ``max_distance`` of it, or ``None`` when a linear scan is the better way."""
        chunk_radius = max_distance // _CHUNK_BITS
        if (
            self.signal.bits != _MIH_BITS
            or chunk_radius >= len(_FLIP_MASKS)
            or self._live < max(self._min_index_rows, 1)
        ):
            return None
        tail_limit = max(self._min_index_rows, min(self._indexed // 16, _MAX_TAIL))
        if self._bucket_rows is None or self._used - self._indexed > tail_limit:
            self._build_buckets()
        bucket_rows, bucket_starts = self._bucket_rows, self._bucket_starts
        assert bucket_rows is not None and bucket_starts is not None
        # (probe, chunk, neighbour) -> a chunk value within chunk_radius of the probe's.
        values = probes.view(np.uint16)[:, :, None] ^ _FLIP_MASKS[chunk_radius]
        chunk = np.arange(_CHUNKS)[None, :, None]
        starts = bucket_starts[chunk, values].ravel().astype(np.int64)
        lengths = bucket_starts[chunk, values.astype(np.intp) + 1].ravel().astype(np.int64) - starts
        per_probe = lengths.reshape(len(probes), -1).sum(axis=1)
        total = int(per_probe.sum())
        tail = self._used - self._indexed
        # Gathering a candidate costs a few times scanning a row: with too many candidates
        # (huge clusters of near-identical hashes) the plain scan is faster.
        if total + tail * len(probes) > self._used // 4 and self._used >= _MIH_MIN_ROWS:
            return None
        # Concatenate the buckets' row ranges without a Python loop: position i of the
        # output reads bucket_rows[start of its range + offset within it].
        ends = np.cumsum(lengths)
        positions = np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - lengths), lengths)
        rows: npt.NDArray[np.intp] = np.take(bucket_rows, positions).astype(np.intp)
        split = np.split(rows, np.cumsum(per_probe)[:-1])
        if not tail:
            return split
        tail_rows = np.arange(self._indexed, self._used, dtype=np.intp)
        return [np.concatenate([part, tail_rows]) for part in split]

    def _build_buckets(self) -> None:
        """Sort the live rows into per-chunk buckets; rows added later form the tail."""
        used = self._used
        live = np.flatnonzero(self._alive[:used]).astype(np.uint32)
        count = len(live)
        chunks = self._hashes[:used].view(np.uint16)
        bucket_rows = np.empty(_CHUNKS * count, dtype=np.uint32)
        bucket_starts = np.empty((_CHUNKS, _CHUNK_VALUES + 1), dtype=np.uint32)
        for chunk in range(_CHUNKS):
            column = chunks[:, chunk] if count == used else chunks[live, chunk]
            # A stable sort of uint16 keys is a radix sort in numpy: O(n).
            order = np.argsort(column, kind="stable")
            bucket_rows[chunk * count : (chunk + 1) * count] = live[order]
            bucket_starts[chunk, 0] = chunk * count
            bucket_starts[chunk, 1:] = (
                np.cumsum(np.bincount(column, minlength=_CHUNK_VALUES)) + chunk * count
            )
        self._bucket_rows, self._bucket_starts = bucket_rows, bucket_starts
        self._indexed = used

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
        # Doubling keeps one-by-one adds amortised O(1); a bulk load gets its size plus 1/8
        # for later adds, which at 10M hashes saves a third of the arrays' memory over
        # rounding up to 2**24 rows.
        capacity = max(capacity * 2, rows + rows // 8)
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
        # Row numbers changed: the buckets are rebuilt when next needed.
        self._bucket_rows = self._bucket_starts = None
        self._indexed = 0
        self._rows = {}
        for row, entry_id in enumerate(self._ids[:count].tolist()):
            self._rows.setdefault(entry_id, []).append(row)


def _distances(
    hashes: npt.NDArray[np.uint64], probe: npt.NDArray[np.uint64]
) -> npt.NDArray[np.uint16]:
    """The Hamming distance of each row of ``hashes`` to ``probe``."""
    bits = np.bitwise_count(hashes ^ probe)
    # Adding the columns is twice as fast as .sum(axis=1) over rows this short.
    distances: npt.NDArray[np.uint16] = bits[:, 0].astype(np.uint16)
    for word in range(1, bits.shape[1]):
        distances += bits[:, word]
    return distances


def _best_of(
    hashes: npt.NDArray[np.uint64],
    probes: npt.NDArray[np.uint64],
    best: npt.NDArray[np.uint16],
    closest: npt.NDArray[np.intp],
) -> None:
    """Lower ``best`` (per row of ``hashes``) to its distance to the closest probe, and
    set ``closest`` to that probe's index."""
    for index, probe in enumerate(probes):
        distance = _distances(hashes, probe)
        # Strictly less: on a tie the earlier probe is kept, so results are stable.
        better = distance < best
        best[better] = distance[better]
        closest[better] = index


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
        self._entries: dict[int, tuple[int, frozenset[str]]] = {}
        self._bank_sizes: dict[int, int] = {}
        self._signal_sets: dict[frozenset[str], frozenset[str]] = {}

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
        pending: dict[tuple[int, str], tuple[list[tuple[int, int]], list[int | None]]] = {}
        for entry in latest.values():
            self._register(entry)
            for fingerprint in entry.fingerprints:
                items, groups = pending.setdefault((entry.bank_id, fingerprint.signal), ([], []))
                items.append((entry.id, fingerprint.value))
                groups.append(_group(fingerprint))
        # One bulk insert per (bank, signal) instead of one per hash: startup with a large
        # blocklist is dominated by this.
        for key, (items, groups) in pending.items():
            self._index_for(key).add_many(items, groups)

    def add_entry(self, entry: Entry) -> None:
        """Make an active entry's fingerprints matchable; re-adding an id replaces it."""
        self._register(entry)
        for fingerprint in entry.fingerprints:
            self._index_for((entry.bank_id, fingerprint.signal)).add(
                entry.id, fingerprint.value, _group(fingerprint)
            )

    def remove_entry(self, entry_id: int) -> None:
        """Stop matching an entry; an id not in the index is ignored."""
        known = self._entries.pop(entry_id, None)
        if known is None:
            return
        bank_id, signals = known
        for signal in signals:
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
    ) -> list[IndexHit]:
        """The banks' entries near any probe: the best hit per (entry, signal).

        Only signals named in ``max_distance`` are searched, each within its own radius.
        Sorted by distance, then entry id, then signal.
        """
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
                found = index.search([p.value for p in probes], max_distance[signal])
                hits += (
                    IndexHit(entry_id, signal, distance, probes[at])
                    for entry_id, distance, at in found
                )
        hits.sort(key=lambda hit: (hit.distance, hit.entry_id, hit.signal))
        return hits

    def pairs(
        self, bank_ids: Iterable[int], signal: str, values: Sequence[int], max_distance: int
    ) -> list[tuple[int, int, int, int]]:
        """``SignalIndex.pairs`` over the banks' indexes of ``signal``."""
        found: list[tuple[int, int, int, int]] = []
        for bank_id in sorted(set(bank_ids)):
            index = self._indexes.get((bank_id, signal))
            if index is not None:
                found += index.pairs(values, max_distance)
        return found

    def group_count(self, signal: str, entry_id: int) -> int:
        """Distinct groups (seconds of a video; else hashes) of an entry's ``signal`` hashes."""
        known = self._entries.get(entry_id)
        index = self._indexes.get((known[0], signal)) if known is not None else None
        return index.group_count(entry_id) if index is not None else 0

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
        if entry.id in self._entries:
            self.remove_entry(entry.id)
        signals = frozenset(f.signal for f in entry.fingerprints)
        # Nearly all entries share one or two signal sets; sharing the frozensets saves
        # a few hundred bytes per entry on a million-entry blocklist.
        signals = self._signal_sets.setdefault(signals, signals)
        self._entries[entry.id] = (entry.bank_id, signals)
        self._bank_sizes[entry.bank_id] = self._bank_sizes.get(entry.bank_id, 0) + 1

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
