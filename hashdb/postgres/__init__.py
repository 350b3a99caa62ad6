"""The PostgreSQL implementation of ``hashdb.store.Store``, on asyncpg: one module per aggregate.

``PostgresStore`` is composed of one mixin per aggregate (banks, entries, cases, audit,
strikes, chats, reports, jobs, copy), each a subclass of ``PostgresBase`` (``base.py``),
which holds the connection pool, migrations, transactions, snapshots and the NOTIFY channel.
Mixins rather than per-aggregate objects sharing a pool holder, as in ``hashdb.sqlite``: the
store stays one object to open, close and hand around, and an operation spanning two
aggregates (``record_match``, a self-submission) is one transaction on one connection.

SQL, row mapping and validation shared with the SQLite store live in ``hashdb.store_rows``;
what is here is what PostgreSQL does differently.
"""

from __future__ import annotations

from hashdb.postgres.audit import PostgresAudit
from hashdb.postgres.banks import PostgresBanks
from hashdb.postgres.base import PostgresBase
from hashdb.postgres.cases import PostgresCases
from hashdb.postgres.chats import PostgresChats
from hashdb.postgres.copy import PostgresCopy
from hashdb.postgres.entries import PostgresEntries
from hashdb.postgres.index_load import PostgresIndexLoad
from hashdb.postgres.jobs import PostgresJobs
from hashdb.postgres.reports import PostgresReports
from hashdb.postgres.strikes import PostgresStrikes

__all__ = ["PostgresBase", "PostgresStore"]


class PostgresStore(
    PostgresBanks,
    PostgresEntries,
    PostgresIndexLoad,
    PostgresCases,
    PostgresAudit,
    PostgresStrikes,
    PostgresChats,
    PostgresReports,
    PostgresJobs,
    PostgresCopy,
):
    """A ``Store`` in a PostgreSQL database, opened with ``open()`` and released with
    ``close()``.

    ``url`` is a ``postgresql://user:password@host:port/database`` URL (asyncpg's DSN; the
    PG* environment variables and ``~/.pgpass`` fill in what it leaves out).
    """
