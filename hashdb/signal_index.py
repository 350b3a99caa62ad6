"""One signal's near-match index: which hashes of one signal type lie within a distance of
a probe, with the distances.

Hashes sit in a numpy ``uint64`` array, one row per hash and one column per 64-bit word;
the loops over them are compiled (``hashdb.kernels``). Small indexes, 64-bit signals and
wide radii are answered by an exact linear scan. Large 256-bit indexes (PDQ, vPDQ) use
multi-index hashing (Norouzi et al., "Fast Search in Hamming Space with Multi-Index
Hashing", CVPR 2012): the 256 bits are split into chunks (16 of 16 bits; 13 of 19-20 bits
past 2M hashes), and by the pigeonhole rule a hash within distance ``d`` of a probe agrees
with it within a small radius on at least one chunk (``_Layout`` gives the radii).
Looking up the probe's chunk values and their near neighbours in per-chunk buckets
therefore yields every possible match; each candidate is then verified with the exact
distance, so results are identical to the linear scan.

``hashdb.index.BlocklistIndex`` keeps one of these per (bank, signal).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from hashdb import kernels
from hashdb.signals import SignalType

WORD_BITS = 64
_MIN_CAPACITY = 16

#: The group of a hash added without one: it then counts on its own.
NO_GROUP = np.iinfo(np.int64).min

#: Multi-index hashing is used for hashes this wide (PDQ, vPDQ).
_MIH_BITS = 256

#: Below this many live hashes a linear scan is as fast as the index and needs no upkeep.
MIH_MIN_ROWS = 4096

#: From this many live hashes, 13 chunks of 19-20 bits replace 16 of 16 bits.
_WIDE_MIN_ROWS = 1 << 21

#: No chunk is searched beyond this radius: radius 3 of a 16-bit chunk is 697 lookups, and
#: the linear scan wins (a search radius of 48 or more with 16 chunks).
_MAX_CHUNK_RADIUS = 2


class _Layout:
    """How multi-index hashing cuts a 256-bit hash into chunks.

    A search within ``r`` uses the refined pigeonhole rule of Norouzi et al.: with ``m``
    chunks, ``s = r // m`` and ``a = r - m * s``, a hash within ``r`` is within ``s`` bits
    on one of the first ``a + 1`` chunks or within ``s - 1`` on one of the others (were
    every chunk one bit further, the total would be at least ``(a + 1)(s + 1) +
    (m - a - 1) s = r + 1``). Chunks are ordered widest first, so the wider ones get the
    larger radius.

    16 chunks of 16 bits at radius 31 give 272 lookups per probe, each bucket holding
    ``n / 65536`` rows. At 10M hashes those ~42K candidate rows, each a random memory
    read, dominate; 13 chunks (9 of 20 bits, 4 of 19) give 6 chunks at radius 2 and 7 at
    radius 1: 1,409 lookups but about 14K candidates, for 44 MB of bucket tables instead
    of 4 MB, which is why small indexes keep 16-bit chunks.
    """

    def __init__(self, widths: Sequence[int]) -> None:
        if sum(widths) != _MIH_BITS or list(widths) != sorted(widths, reverse=True):
            raise ValueError(f"chunk widths {widths} must be widest first and sum to 256")
        self.widths = np.array(widths, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.widths)[:-1]]).astype(np.int64)
        sizes = (1 << self.widths) + 1
        self.table_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.table_size = int(sizes.sum())
        self._plans: dict[
            int, tuple[tuple[npt.NDArray[np.int64], ...], npt.NDArray[np.uint64]] | None
        ] = {}

    def plan(
        self, max_distance: int
    ) -> tuple[tuple[npt.NDArray[np.int64], ...], npt.NDArray[np.uint64]] | None:
        """The kernel's layout tuple and XOR masks for a search within ``max_distance``, or
        None when some chunk would need a radius past ``_MAX_CHUNK_RADIUS``."""
        if max_distance not in self._plans:
            chunks = len(self.widths)
            share, extra = divmod(max_distance, chunks)
            radii = np.array(
                [share if chunk <= extra else share - 1 for chunk in range(chunks)],
                dtype=np.int64,
            )
            if radii.max() > _MAX_CHUNK_RADIUS:
                self._plans[max_distance] = None
            else:
                masks = [
                    _masks(int(width), int(radius))
                    for width, radius in zip(self.widths, radii, strict=True)
                ]
                mask_starts = np.concatenate([[0], np.cumsum([len(m) for m in masks])])
                layout = (
                    self.offsets,
                    self.widths,
                    radii,
                    self.table_starts,
                    mask_starts.astype(np.int64),
                )
                self._plans[max_distance] = (layout, np.concatenate(masks).astype(np.uint64))
        return self._plans[max_distance]


def _masks(width: int, radius: int) -> npt.NDArray[np.uint64]:
    """Every ``width``-bit value with at most ``radius`` bits set (none if negative)."""
    values = [0] if radius >= 0 else []
    for flips in range(1, radius + 1):
        values += [
            sum(1 << bit for bit in bits) for bits in itertools.combinations(range(width), flips)
        ]
    return np.array(values, dtype=np.uint64)


_NARROW = _Layout([16] * 16)
_WIDE = _Layout([20] * 9 + [19] * 4)

#: Hashes added since the buckets were last built are scanned linearly; the buckets are
#: rebuilt (O(n)) once that tail exceeds this many rows or 1/16 of the indexed rows, so
#: adding stays amortised O(1) and tail scans stay well under a millisecond.
_MAX_TAIL = 1 << 16


class SignalIndex:
    """The hashes of one signal type, each tagged with the id of the entry it belongs to.

    An entry may hold several hashes of the signal; queries report each entry once, with
    its best distance.
    """

    def __init__(
        self,
        signal: SignalType,
        *,
        min_index_rows: int = MIH_MIN_ROWS,
        wide_index_rows: int = _WIDE_MIN_ROWS,
    ) -> None:
        """``min_index_rows``: live hashes from which multi-index hashing is used rather
        than a linear scan (for 256-bit signals); ``wide_index_rows``: from which it uses
        13 wide chunks instead of 16 narrow ones. Tests lower them to exercise the index
        on small data. Results do not depend on them, only speed does.
        """
        if signal.bits % WORD_BITS:
            raise ValueError(f"{signal.name} has {signal.bits} bits; expected a multiple of 64")
        self.signal = signal
        self._words = signal.bits // WORD_BITS
        self._hashes: npt.NDArray[np.uint64] = np.zeros(
            (_MIN_CAPACITY, self._words), dtype=np.uint64
        )
        self._ids: npt.NDArray[np.int64] = np.zeros(_MIN_CAPACITY, dtype=np.int64)
        #: Per hash, the group it counts in for ``pairs`` (a video frame's second);
        #: ``NO_GROUP`` makes each hash its own group.
        self._groups: npt.NDArray[np.int64] = np.full(_MIN_CAPACITY, NO_GROUP, dtype=np.int64)
        #: Per hash, its quality (PDQ's 0-100; 0 when none was recorded), so a search can
        #: leave out the hashes its rules do not act on (``min_quality``).
        self._qualities: npt.NDArray[np.uint8] = np.zeros(_MIN_CAPACITY, dtype=np.uint8)
        #: Live hashes per quality value, so ``count_below`` costs nothing per hash.
        self._quality_counts: npt.NDArray[np.int64] = np.zeros(256, dtype=np.int64)
        self._alive: npt.NDArray[np.bool_] = np.zeros(_MIN_CAPACITY, dtype=np.bool_)
        #: Rows in use (live or dead); rows past it are free capacity.
        self._used = 0
        self._live = 0
        #: Rows ``[0, _id_sorted)`` are findable by entry id with a binary search: over
        #: ``_ids`` itself when ``_id_order`` is None (ids were added in increasing order),
        #: else over ``_id_keys``, the ids sorted by the permutation ``_id_order``.
        self._id_sorted = 0
        self._id_order: npt.NDArray[np.intp] | None = None
        self._id_keys: npt.NDArray[np.int64] | None = None
        self._min_index_rows = min_index_rows
        self._wide_index_rows = wide_index_rows
        #: Multi-index buckets over rows ``[0, _indexed)``, cut by ``_layout``: chunk ``c``'s
        #: live rows sorted by chunk value, the chunks laid end to end. With ``t`` the
        #: chunk's ``table_starts``, ``_bucket_starts[t + v]`` is where its rows with value
        #: ``v`` start in ``_bucket_rows`` (and ``[t + v + 1]`` where they end). ``None``
        #: until first needed and after compaction.
        self._bucket_rows: npt.NDArray[np.uint32] | None = None
        self._layout = _NARROW
        #: uint32: 4 MB per index with 16-bit chunks, 44 MB with 20-bit ones.
        self._bucket_starts: npt.NDArray[np.uint32] | None = None
        self._indexed = 0

    def __len__(self) -> int:
        """The number of live hashes."""
        return self._live

    def add(
        self, entry_id: int, value: int, group: int | None = None, quality: int | None = None
    ) -> None:
        """Index one hash of ``entry_id``; it is matchable as soon as this returns.

        ``group`` (e.g. the second of a video a frame is from) is what ``pairs`` and
        ``group_count`` count in; by default each hash is its own group. ``quality`` (none:
        0) is what searches' ``min_quality`` compares with.
        """
        self.add_many(
            [(entry_id, value)],
            None if group is None else [group],
            None if quality is None else [quality],
        )

    def add_many(
        self,
        items: Iterable[tuple[int, int]],
        groups: Sequence[int | None] | None = None,
        qualities: Sequence[int | None] | None = None,
    ) -> None:
        """Index several ``(entry_id, value)`` hashes at once (much faster than one by one)."""
        pairs = list(items)
        if not pairs:
            return
        if groups is not None and len(groups) != len(pairs):
            raise ValueError(f"{len(groups)} groups given for {len(pairs)} hashes")
        if qualities is not None and len(qualities) != len(pairs):
            raise ValueError(f"{len(qualities)} qualities given for {len(pairs)} hashes")
        self.add_arrays(
            np.array([entry_id for entry_id, _ in pairs], dtype=np.int64),
            self._pack([value for _, value in pairs]),
            None
            if groups is None
            else np.array([NO_GROUP if g is None else g for g in groups], dtype=np.int64),
            None if qualities is None else np.array([q or 0 for q in qualities], dtype=np.int64),
        )

    def add_arrays(
        self,
        ids: npt.NDArray[np.int64],
        hashes: npt.NDArray[np.uint64],
        groups: npt.NDArray[np.int64] | None = None,
        qualities: npt.NDArray[np.int64] | None = None,
    ) -> None:
        """Bulk add without Python objects per hash: ``hashes`` has one row per id, of
        ``bits / 64`` words, least significant first (start-up from the store uses this)."""
        count = len(ids)
        if hashes.shape != (count, self._words):
            raise ValueError(
                f"{hashes.shape} hash array for {count} ids; expected ({count}, {self._words})"
            )
        if qualities is not None and len(qualities) != count:
            raise ValueError(f"{len(qualities)} qualities for {count} ids; expected one per id")
        start, stop = self._used, self._used + count
        self._reserve(stop)
        self._hashes[start:stop] = hashes
        self._ids[start:stop] = ids
        self._groups[start:stop] = NO_GROUP if groups is None else groups
        self._qualities[start:stop] = 0 if qualities is None else np.clip(qualities, 0, 255)
        np.add.at(self._quality_counts, self._qualities[start:stop], 1)
        self._alive[start:stop] = True
        self._used = stop
        self._live += count

    def remove(self, entry_id: int) -> None:
        """Drop every hash of ``entry_id``; an id not in the index is ignored."""
        rows = self._rows_of(entry_id)
        if not rows.size:
            return
        self._alive[rows] = False
        self._live -= len(rows)
        np.subtract.at(self._quality_counts, self._qualities[rows], 1)
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

    def search(
        self, values: Sequence[int], max_distance: int, min_quality: int = 0
    ) -> list[tuple[int, int, int]]:
        """``(entry_id, distance, probe_index)`` per entry within ``max_distance``, among
        the hashes of at least ``min_quality``.

        ``probe_index`` is the position in ``values`` of the probe that came closest (the
        first one on a tie). Sorted by distance, then entry id.
        """
        if max_distance < 0:
            raise ValueError(f"max_distance {max_distance} is negative; expected 0 or more")
        if not values or not self._live:
            return []
        probe_indexes, rows, distances = self._near(self._pack(values), max_distance, min_quality)
        if not rows.size:
            return []
        ids = self._ids[rows]
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

    def pairs(
        self, values: Sequence[int], max_distance: int, min_quality: int = 0
    ) -> list[tuple[int, int, int, int]]:
        """Every (probe, hash) pair within ``max_distance``, the hash of at least
        ``min_quality``: ``(probe_index, entry_id, group, distance)``. Video matching counts
        the distinct groups (seconds) of an entry that were hit; a hash added without a
        group is a group of its own. Sorted by probe index, then position in the index.
        """
        if max_distance < 0:
            raise ValueError(f"max_distance {max_distance} is negative; expected 0 or more")
        if not values or not self._live:
            return []
        probe_indexes, rows, distances = self._near(self._pack(values), max_distance, min_quality)
        order = np.lexsort((rows, probe_indexes))
        probe_indexes, rows, distances = probe_indexes[order], rows[order], distances[order]
        groups = self._groups[rows]
        # Hashes without a group count one by one; their keys stay clear of real groups.
        groups = np.where(groups == NO_GROUP, -1 - rows, groups)
        return list(
            zip(
                probe_indexes.tolist(),
                self._ids[rows].tolist(),
                groups.tolist(),
                distances.tolist(),
                strict=True,
            )
        )

    def prepare(self) -> None:
        """Sort the multi-index buckets now (start-up) rather than on the first query."""
        if self.signal.bits == _MIH_BITS and self._live >= max(self._min_index_rows, 1):
            self._build_buckets()

    def count_below(self, quality: int) -> int:
        """How many live hashes have a quality under ``quality``."""
        return int(self._quality_counts[: max(0, quality)].sum())

    def hash_count(self, entry_id: int) -> int:
        """How many hashes of this signal ``entry_id`` has (e.g. the frames of a video)."""
        return len(self._rows_of(entry_id))

    def group_count(self, entry_id: int, min_quality: int = 0) -> int:
        """How many distinct groups ``entry_id``'s hashes (of at least ``min_quality``) fall
        in (e.g. seconds of a video)."""
        return len(self.groups(entry_id, min_quality))

    def groups(self, entry_id: int, min_quality: int = 0) -> list[int]:
        """The distinct groups of ``entry_id``'s hashes of at least ``min_quality``, keyed as
        ``pairs`` keys them."""
        rows = self._rows_of(entry_id)
        if min_quality > 0:
            rows = rows[self._qualities[rows] >= min_quality]
        groups = self._groups[rows]
        keys: list[int] = np.unique(np.where(groups == NO_GROUP, -1 - rows, groups)).tolist()
        return keys

    def _near(
        self, probes: npt.NDArray[np.uint64], max_distance: int, min_quality: int = 0
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """``(probe index, row, distance)`` arrays: every live row of at least
        ``min_quality`` within ``max_distance`` of a probe, each (probe, row) pair once, in
        no particular order."""
        probe, row, distance = self._near_all(probes, max_distance)
        if min_quality > 0 and row.size:
            keep = self._qualities[row] >= min_quality
            probe, row, distance = probe[keep], row[keep], distance[keep]
        return probe, row, distance

    def _near_all(
        self, probes: npt.NDArray[np.uint64], max_distance: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        found = _Found(len(probes))
        plan = None
        if self.signal.bits == _MIH_BITS and self._live >= max(self._min_index_rows, 1):
            tail_limit = max(self._min_index_rows, min(self._indexed // 16, _MAX_TAIL))
            if self._bucket_rows is None or self._used - self._indexed > tail_limit:
                self._build_buckets()
            plan = self._layout.plan(max_distance)
        if plan is not None:
            assert self._bucket_starts is not None
            layout, masks = plan
            visits = kernels.candidate_count(self._bucket_starts, layout, masks, probes)
            tail = self._used - self._indexed
            # A visit costs a few times a scanned row: with too many (huge clusters of
            # near-identical hashes) the plain scan is faster.
            if (visits + tail * len(probes)) > self._used // 4:
                plan = None
        if plan is None:
            found.run(kernels.scan, self._hashes, self._alive, 0, self._used, probes, max_distance)
            return found.result()
        found.run(
            kernels.mih_search,
            self._hashes,
            self._alive,
            self._bucket_rows,
            self._bucket_starts,
            layout,
            masks,
            probes,
            max_distance,
        )
        if self._used > self._indexed:
            found.run(
                kernels.scan,
                self._hashes,
                self._alive,
                self._indexed,
                self._used,
                probes,
                max_distance,
            )
        return found.result()

    def _build_buckets(self) -> None:
        """Sort the live rows into per-chunk buckets; rows added later form the tail."""
        used = self._used
        live = np.flatnonzero(self._alive[:used]).astype(np.uint32)
        layout = _WIDE if len(live) >= self._wide_index_rows else _NARROW
        # Drop the old buckets first: at 10M hashes they are over 500 MB.
        self._bucket_rows = self._bucket_starts = None
        bucket_rows = np.empty(len(layout.widths) * len(live), dtype=np.uint32)
        bucket_starts = np.empty(layout.table_size, dtype=np.uint32)
        kernels.build_buckets(
            self._hashes,
            live,
            layout.offsets,
            layout.widths,
            layout.table_starts,
            bucket_rows,
            bucket_starts,
        )
        self._layout = layout
        self._bucket_rows, self._bucket_starts = bucket_rows, bucket_starts
        self._indexed = used

    def _rows_of(self, entry_id: int) -> npt.NDArray[np.int64]:
        """The live rows of ``entry_id``, in row order.

        Rows up to ``_id_sorted`` are found by binary search (ids arrive in increasing order
        from the store, so usually no sort is needed), later ones by a scan of that short
        tail; the sorted part is extended like the buckets, amortised O(1) per add.
        """
        used, done = self._used, self._id_sorted
        if used - done > max(MIH_MIN_ROWS, done // 16):
            self._sort_ids()
            done = self._id_sorted
        keys = self._ids[:done] if self._id_keys is None else self._id_keys
        low, high = np.searchsorted(keys, [entry_id, entry_id + 1]).tolist()
        head = (
            np.arange(low, high, dtype=np.int64)
            if self._id_order is None
            else np.sort(self._id_order[low:high])
        )
        tail = np.flatnonzero(self._ids[done:used] == entry_id) + done
        rows: npt.NDArray[np.int64] = np.concatenate([head, tail])
        return rows[self._alive[rows]]

    def _sort_ids(self) -> None:
        ids = self._ids[: self._used]
        if np.all(ids[1:] >= ids[:-1]):
            self._id_order, self._id_keys = None, None
        else:
            self._id_order = np.argsort(ids, kind="stable")
            self._id_keys = ids[self._id_order]
        self._id_sorted = self._used

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
        groups = np.full(capacity, NO_GROUP, dtype=np.int64)
        qualities = np.zeros(capacity, dtype=np.uint8)
        alive = np.zeros(capacity, dtype=np.bool_)
        hashes[: self._used] = self._hashes[: self._used]
        ids[: self._used] = self._ids[: self._used]
        groups[: self._used] = self._groups[: self._used]
        qualities[: self._used] = self._qualities[: self._used]
        alive[: self._used] = self._alive[: self._used]
        self._hashes, self._ids, self._groups, self._alive = hashes, ids, groups, alive
        self._qualities = qualities

    def _compact(self) -> None:
        keep = np.flatnonzero(self._alive[: self._used])
        count = len(keep)
        self._hashes[:count] = self._hashes[keep]
        self._ids[:count] = self._ids[keep]
        self._groups[:count] = self._groups[keep]
        self._qualities[:count] = self._qualities[keep]
        self._alive[:count] = True
        self._alive[count : self._used] = False
        self._used = count
        # Row numbers changed: the buckets and the id order are rebuilt when next needed.
        self._bucket_rows = self._bucket_starts = None
        self._indexed = 0
        self._id_order = self._id_keys = None
        self._id_sorted = 0


class _Found:
    """Output arrays for a kernel, grown and the kernel rerun when they were too small."""

    def __init__(self, probes: int) -> None:
        self._capacity = max(64, 16 * probes)
        self._parts: list[tuple[npt.NDArray[np.int64], ...]] = []

    def run(self, kernel: Callable[..., int], *args: Any) -> None:
        while True:
            out = tuple(np.empty(self._capacity, dtype=np.int64) for _ in range(3))
            count = int(kernel(*args, *out))
            if count <= self._capacity:
                self._parts.append(tuple(column[:count] for column in out))
                return
            self._capacity = count

    def result(
        self,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        if len(self._parts) == 1:
            probe, row, distance = self._parts[0]
        else:
            columns = zip(*self._parts, strict=True)
            probe, row, distance = (np.concatenate(column) for column in columns)
        return probe, row, distance
