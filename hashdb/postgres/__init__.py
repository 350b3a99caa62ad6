"""The PostgreSQL implementation of ``hashdb.store.Store``, on asyncpg: a module per aggregate.

``PostgresStore`` is composed as ``hashdb.sqlite.SQLiteStore`` is (see there why mixins):
what PostgreSQL does its own way is here (``banks``, ``entries``, ``index_load``,
``chats``, ``copy``, each a subclass of ``PostgresBase`` in ``base.py``, which holds the
connection pool, migrations, transactions, snapshots, the NOTIFY channel and the advisory
locks); what it does as SQLite does is written once in ``hashdb.sql``, run through
``PostgresBase``'s ``hashdb.sql.db.Db``, which numbers SQLite's ``?`` marks as ``$1``...
"""

from __future__ import annotations

from hashdb.postgres.banks import PostgresBanks
from hashdb.postgres.base import PostgresBase
from hashdb.postgres.chats import PostgresChats
from hashdb.postgres.copy import PostgresCopy
from hashdb.postgres.entries import PostgresEntries
from hashdb.postgres.index_load import PostgresIndexLoad
from hashdb.sql.audit import SQLAudit
from hashdb.sql.banks import SQLBanks
from hashdb.sql.cases import SQLCases
from hashdb.sql.chats import SQLChats
from hashdb.sql.entries import SQLEntries
from hashdb.sql.jobs import SQLJobs
from hashdb.sql.reports import SQLReports
from hashdb.sql.strikes import SQLStrikes

__all__ = ["PostgresBase", "PostgresStore"]


class PostgresStore(
    PostgresBanks,
    PostgresEntries,
    PostgresIndexLoad,
    PostgresChats,
    PostgresCopy,
    SQLBanks,
    SQLCases,
    SQLEntries,
    SQLChats,
    SQLAudit,
    SQLStrikes,
    SQLReports,
    SQLJobs,
):
    """A ``Store`` in a PostgreSQL database, opened with ``open()`` and released with
    ``close()``.

    ``url`` is a ``postgresql://user:password@host:port/database`` URL (asyncpg's DSN; the
    PG* environment variables and ``~/.pgpass`` fill in what it leaves out).
    """
