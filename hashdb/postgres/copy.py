"""Moving a deployment with the PostgreSQL store: tables dumped and loaded whole (COPY), id
sequences moved past the copied rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import asyncpg

from hashdb.postgres.base import PostgresBase
from hashdb.records import TABLES, StoreError
from hashdb.store_rows import check_table


class PostgresCopy(PostgresBase):
    """``CopyStore`` on PostgreSQL."""

    async def dump_table(
        self, table: str, batch: int
    ) -> AsyncIterator[tuple[list[str], list[tuple[Any, ...]]]]:
        check_table(table)
        # One snapshot and one cursor for the whole table: consistent, and streamed.
        async with self._snapshot(f"read the {table} table") as conn:
            columns = await _table_columns(conn, table)
            names = [name for name, _, _ in columns]
            keys = sorted((key, name, kind) for name, kind, key in columns if key is not None)
            # Text keys in byte order, as SQLite sorts them, whatever the server's locale.
            order = ", ".join(
                f'"{name}"' + (' COLLATE "C"' if kind == "text" else "") for _, name, kind in keys
            )
            listed = ", ".join(f'"{name}"' for name in names)
            cursor = await conn.cursor(f"SELECT {listed} FROM {table} ORDER BY {order}")
            while rows := await cursor.fetch(batch):
                yield names, [tuple(row) for row in rows]

    async def load_table(
        self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        check_table(table)
        async with self._transaction(f"copy rows into the {table} table") as conn:
            kinds = {name: kind for name, kind, _ in await _table_columns(conn, table)}
            unknown = [name for name in columns if name not in kinds]
            if unknown:
                raise StoreError(
                    f"cannot copy rows into the {table} table of database {self._display}: it "
                    f"has no column {', '.join(map(repr, unknown))}; it has: {', '.join(kinds)}"
                )
            # SQLite keeps flags as 0 and 1; asyncpg takes only True and False for BOOLEAN.
            flags = [at for at, name in enumerate(columns) if kinds[name] == "boolean"]
            records = [
                tuple(
                    bool(value) if at in flags and value is not None else value
                    for at, value in enumerate(row)
                )
                for row in rows
            ]
            # COPY writes the ids given even into GENERATED ALWAYS identity columns.
            await conn.copy_records_to_table(table, records=records, columns=list(columns))

    async def is_empty(self) -> bool:
        async with self._session("check whether the database is empty") as conn:
            query = " OR ".join(f"EXISTS (SELECT 1 FROM {table})" for table in TABLES)
            return not await conn.fetchval(f"SELECT {query}")

    async def _id_sequences(self, conn: asyncpg.Connection) -> dict[str, str]:
        """Each table's id sequence, for the tables that have one."""
        found = {}
        for table in TABLES:
            if table == "entries":
                found[table] = "entry_ids"
            elif any(name == "id" for name, _, _ in await _table_columns(conn, table)):
                found[table] = await conn.fetchval("SELECT pg_get_serial_sequence($1, 'id')", table)
        return found

    async def id_high_water(self) -> dict[str, int]:
        async with self._session("read the id counters") as conn:
            found = {}
            for table, sequence in (await self._id_sequences(conn)).items():
                value = await conn.fetchval("SELECT pg_sequence_last_value($1)", sequence)
                if value is not None:
                    found[table] = int(value)
        return found

    async def after_load(self, high_water: Mapping[str, int]) -> None:
        """Move every id sequence past the ids copied in and past the source's counters, so
        new rows never reuse an id, and gather the planner's statistics of the filled
        tables."""
        async with self._transaction("move id counters past the copied rows") as conn:
            for table, sequence in (await self._id_sequences(conn)).items():
                await conn.execute(
                    f"SELECT setval($1, greatest(max(id), coalesce(pg_sequence_last_value($1), "
                    f"0), $2)) FROM {table} HAVING max(id) IS NOT NULL OR $2 > 0",
                    sequence,
                    high_water.get(table, 0),
                )
        await self._analyze(*TABLES)


async def _table_columns(conn: asyncpg.Connection, table: str) -> list[tuple[str, str, int | None]]:
    """(name, type, place in the primary key or None) of the table's columns, in order."""
    rows = await conn.fetch(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
        "array_position(i.indkey::int2[], a.attnum) "
        "FROM pg_attribute AS a LEFT JOIN pg_index AS i "
        "ON i.indrelid = a.attrelid AND i.indisprimary "
        "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        table,
    )
    return [(row[0], row[1], row[2]) for row in rows]
