"""Compiled inner loops of the hash index (numba).

numpy can express a multi-index lookup, but only as a dozen passes over temporary arrays
of candidates (gather, XOR, popcount, compare, mask...); at 10M hashes that costs more
than the lookups themselves. These loops do one pass per candidate with no temporaries,
and release the GIL so a search on the index thread never stalls the event loop.

Every function works on rows of ``uint64`` words (least significant word first), as laid
out by ``hashdb.signal_index.SignalIndex``. Results go into caller-provided output arrays; a
function returns how many results there were, which may exceed the arrays' length, in
which case the caller grows them and calls again.

The functions are compiled on first use and cached on disk (next to this file, or in
numba's user-wide cache when this folder is read-only; with neither, they are compiled
anew in each process); ``warm_up`` compiles them ahead of time so no user waits for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np
import numpy.typing as npt
from numba import types
from numba.extending import intrinsic


@intrinsic
def _popcount(typing_context: Any, word: Any) -> Any:
    """One ``popcnt`` instruction (LLVM's ctpop) on a uint64."""
    signature = types.uint64(types.uint64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.ctpop(args[0])

    return signature, codegen


@numba.njit(inline="always")
def _bits(words: npt.NDArray[np.uint64], offset: int, width: int) -> int:
    """Bits ``[offset, offset + width)`` of a row of words (width < 64), as an int."""
    word, shift = offset >> 6, offset & 63
    value = words[word] >> np.uint64(shift)
    if shift + width > 64:
        value |= words[word + 1] << np.uint64(64 - shift)
    return int(value & ((np.uint64(1) << np.uint64(width)) - np.uint64(1)))


@numba.njit(inline="always")
def _distance(
    hashes: npt.NDArray[np.uint64], row: int, probes: npt.NDArray[np.uint64], probe: int
) -> int:
    """Hamming distance of a row to a probe."""
    total = 0
    for word in range(hashes.shape[1]):
        total += int(_popcount(hashes[row, word] ^ probes[probe, word]))  # type: ignore[call-arg]
    return total


def _compiled(function: Callable[..., Any]) -> Any:
    """``numba.njit`` with the GIL released, cached on disk where numba finds a place."""
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(nogil=True)(function)


@_compiled
def scan(
    hashes: npt.NDArray[np.uint64],
    alive: npt.NDArray[np.bool_],
    start: int,
    stop: int,
    probes: npt.NDArray[np.uint64],
    max_distance: int,
    out_probe: npt.NDArray[np.int64],
    out_row: npt.NDArray[np.int64],
    out_distance: npt.NDArray[np.int64],
) -> int:
    """Every (probe, live row in ``[start, stop)``) pair within ``max_distance``."""
    found = 0
    capacity = out_row.shape[0]
    for row in range(start, stop):
        if not alive[row]:
            continue
        for probe in range(probes.shape[0]):
            distance = _distance(hashes, row, probes, probe)
            if distance <= max_distance:
                if found < capacity:
                    out_probe[found] = probe
                    out_row[found] = row
                    out_distance[found] = distance
                found += 1
    return found


@_compiled
def candidate_count(
    bucket_starts: npt.NDArray[np.uint32],
    layout: tuple[npt.NDArray[np.int64], ...],
    masks: npt.NDArray[np.uint64],
    probes: npt.NDArray[np.uint64],
) -> int:
    """How many bucket entries ``mih_search`` would visit (rows repeat across chunks)."""
    offsets, widths, _, table_starts, mask_starts = layout
    total = 0
    for probe in range(probes.shape[0]):
        for chunk in range(offsets.shape[0]):
            value = _bits(probes[probe], offsets[chunk], widths[chunk])
            table = table_starts[chunk]
            for at in range(mask_starts[chunk], mask_starts[chunk + 1]):
                near = table + (value ^ int(masks[at]))
                total += int(bucket_starts[near + 1]) - int(bucket_starts[near])
    return total


@_compiled
def mih_search(
    hashes: npt.NDArray[np.uint64],
    alive: npt.NDArray[np.bool_],
    bucket_rows: npt.NDArray[np.uint32],
    bucket_starts: npt.NDArray[np.uint32],
    layout: tuple[npt.NDArray[np.int64], ...],
    masks: npt.NDArray[np.uint64],
    probes: npt.NDArray[np.uint64],
    max_distance: int,
    out_probe: npt.NDArray[np.int64],
    out_row: npt.NDArray[np.int64],
    out_distance: npt.NDArray[np.int64],
) -> int:
    """Multi-index search: every (probe, live bucketed row) pair within ``max_distance``,
    each pair once.

    The layout splits a hash into chunks (bit ``offsets`` and ``widths``); chunk ``c``'s
    ``masks[mask_starts[c]:mask_starts[c + 1]]`` reach every chunk value within
    ``radii[c]`` (none for a negative radius), and the radii are chosen so that every row
    within ``max_distance`` is within its radius on some chunk (``hashdb.signal_index._Layout``
    proves it). Each candidate is
    verified with its full distance. A row found through chunk ``c`` is reported only if
    no earlier chunk was also within radius: that chunk's bucket reported it already.
    """
    offsets, widths, radii, table_starts, mask_starts = layout
    chunks = offsets.shape[0]
    found = 0
    capacity = out_row.shape[0]
    for probe in range(probes.shape[0]):
        for chunk in range(chunks):
            value = _bits(probes[probe], offsets[chunk], widths[chunk])
            table = table_starts[chunk]
            for mask_at in range(mask_starts[chunk], mask_starts[chunk + 1]):
                near = table + (value ^ int(masks[mask_at]))
                for at in range(bucket_starts[near], bucket_starts[near + 1]):
                    row = int(bucket_rows[at])
                    distance = _distance(hashes, row, probes, probe)
                    if distance > max_distance or not alive[row]:
                        continue
                    seen = False
                    for earlier in range(chunk):
                        offset, width = offsets[earlier], widths[earlier]
                        bits = _bits(hashes[row], offset, width) ^ _bits(
                            probes[probe], offset, width
                        )
                        if int(_popcount(np.uint64(bits))) <= radii[earlier]:  # type: ignore[call-arg]
                            seen = True
                            break
                    if seen:
                        continue
                    if found < capacity:
                        out_probe[found] = probe
                        out_row[found] = row
                        out_distance[found] = distance
                    found += 1
    return found


@_compiled
def build_buckets(
    hashes: npt.NDArray[np.uint64],
    rows: npt.NDArray[np.uint32],
    offsets: npt.NDArray[np.int64],
    widths: npt.NDArray[np.int64],
    table_starts: npt.NDArray[np.int64],
    bucket_rows: npt.NDArray[np.uint32],
    bucket_starts: npt.NDArray[np.uint32],
) -> None:
    """Counting-sort ``rows`` by each chunk's value: chunk ``c``'s rows with value ``v``
    land in ``bucket_rows[bucket_starts[t + v]:bucket_starts[t + v + 1]]`` (``t`` being
    ``table_starts[c]``), in row order."""
    count = rows.shape[0]
    next_slot = np.empty(1 << int(widths.max()), dtype=np.int64)
    for chunk in range(offsets.shape[0]):
        offset, width, table = offsets[chunk], widths[chunk], table_starts[chunk]
        values = 1 << width
        next_slot[:values] = 0
        for i in range(count):
            next_slot[_bits(hashes[rows[i]], offset, width)] += 1
        position = chunk * count
        for value in range(values):
            bucket_starts[table + value] = position
            size = next_slot[value]
            next_slot[value] = position
            position += size
        bucket_starts[table + values] = position
        for i in range(count):
            value = _bits(hashes[rows[i]], offset, width)
            bucket_rows[next_slot[value]] = rows[i]
            next_slot[value] += 1


def warm_up() -> None:
    """Compile (or load from the disk cache) every function, on a tiny index."""
    hashes = np.arange(8, dtype=np.uint64).reshape(2, 4)
    alive = np.ones(2, dtype=np.bool_)
    rows = np.arange(2, dtype=np.uint32)
    offsets, widths = np.array([0, 8], dtype=np.int64), np.array([8, 8], dtype=np.int64)
    radii = np.zeros(2, dtype=np.int64)
    table_starts = np.array([0, 257], dtype=np.int64)
    mask_starts = np.array([0, 1, 2], dtype=np.int64)
    bucket_rows = np.empty(4, dtype=np.uint32)
    bucket_starts = np.empty(514, dtype=np.uint32)
    build_buckets(hashes, rows, offsets, widths, table_starts, bucket_rows, bucket_starts)
    layout = (offsets, widths, radii, table_starts, mask_starts)
    masks = np.zeros(2, dtype=np.uint64)
    out = [np.empty(4, dtype=np.int64) for _ in range(3)]
    candidate_count(bucket_starts, layout, masks, hashes)
    mih_search(hashes, alive, bucket_rows, bucket_starts, layout, masks, hashes, 31, *out)
    scan(hashes, alive, 0, 2, hashes, 31, *out)
