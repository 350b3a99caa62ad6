"""Loading every active entry's hashes into the near-match index from PostgreSQL, in
batches aggregated per signal (the row by row path names a damaged entry).
"""

from __future__ import annotations

import asyncpg
import numpy as np

from hashdb.index import ColumnBuilder
from hashdb.postgres.base import PostgresBase
from hashdb.records import StoreError
from hashdb.signals import SIGNAL_TYPES

#: Entry ids per batch when loading the index: few round trips, bounded transient memory.
_INDEX_BATCH = 200_000


# The range is given for both tables: the planner can then read each through its primary
# key, and never joins more of entry_signals than the batch.
_INDEX_WHERE = (
    " WHERE e.id >= $1 AND e.id < $2 AND s.entry_id >= $1 AND s.entry_id < $2"
    " AND e.removed_at IS NULL"
)


_INDEX_FROM = "FROM entries AS e JOIN entry_signals AS s ON s.entry_id = e.id" + _INDEX_WHERE


#: Per row, true if its hash is not its signal's fixed-width hex (or the signal is unknown).
_BAD_WIDTH = (
    "length(s.hash) IS DISTINCT FROM CASE s.signal "
    + " ".join(f"WHEN '{name}' THEN {signal.hex_length}" for name, signal in SIGNAL_TYPES.items())
    + " END"
)


#: A batch of entry ids' hashes, one row per signal, its columns aggregated (the hashes in
#: one string): a million hashes load in a fraction of the time a million rows take, and
#: each signal comes apart without splitting in Python (a hash aggregate of a few groups on
#: the server). The aggregates of a group see its rows in one pass, so their i-th items
#: belong together.
_INDEX_JOINED = (
    f"SELECT s.signal, count(*), count(*) FILTER (WHERE {_BAD_WIDTH}), array_agg(e.id), "
    "array_agg(e.bank_id), string_agg(s.hash, ''), array_agg(s.quality), array_agg(s.seconds) "
    f"{_INDEX_FROM} GROUP BY s.signal"
)


#: A batch's rows of one signal (``$3``), one by one.
_INDEX_ROWS = (
    "SELECT e.id, e.bank_id, s.signal, s.hash, s.quality, s.seconds "
    f"{_INDEX_FROM} AND s.signal = $3 ORDER BY e.id, s.position"
)


class PostgresIndexLoad(PostgresBase):
    """``EntryStore.load_index`` on PostgreSQL."""

    async def load_index(self, builder: ColumnBuilder) -> None:
        # One snapshot: every batch sees the same entries, whatever another process writes.
        async with self._snapshot("load the index") as conn:
            start = await conn.fetchval("SELECT min(id) FROM entries")
            while start is not None:
                bounds = (start, start + _INDEX_BATCH)
                await _feed_index_batch(conn, builder, bounds)
                # Skips a gap in the ids (a purged import) in one step.
                start = await conn.fetchval("SELECT min(id) FROM entries WHERE id >= $1", bounds[1])


async def _feed_index_batch(
    conn: asyncpg.Connection, builder: ColumnBuilder, bounds: tuple[int, int]
) -> None:
    """Feed a batch of entry ids' hashes to ``builder``, signal by signal. A signal whose
    hashes are not as the store writes them (or that this hashguard does not know) goes
    again row by row, which names a damaged entry, and loads what parses after all, as the
    SQLite store does."""
    for group in await conn.fetch(_INDEX_JOINED, *bounds):
        signal, count, bad_widths, ids, banks, hashes, qualities, seconds = group
        if not bad_widths:
            try:
                if builder.feed_joined(
                    np.array(ids, dtype=np.int64),
                    np.array(banks, dtype=np.int64),
                    [signal] * count,
                    hashes,
                    # None (no quality, not a video frame) becomes NaN.
                    np.array(qualities, dtype=np.float64),
                    np.array(seconds, dtype=np.float64),
                ):
                    continue
            except ValueError:
                pass  # the row by row path below says which entry
        # feed_joined added nothing of this signal, so its rows go in once.
        try:
            builder.feed(await conn.fetch(_INDEX_ROWS, *bounds, signal))
        except ValueError as exc:
            raise StoreError(str(exc)) from exc
