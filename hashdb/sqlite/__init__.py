"""The SQLite implementation of ``hashdb.store.Store``, on aiosqlite: a module per aggregate.

``SQLiteStore`` is composed of mixins, one per aggregate and part: what SQLite does its own
way is here (``banks``, ``entries``, ``index_load``, ``chats``, ``copy``, each a
subclass of ``SQLiteBase`` in ``base.py``, which holds the one connection, its lock,
migrations, transactions and the ``changes`` table); what it does as PostgreSQL does is
written once in ``hashdb.sql`` (jobs, audit, strikes, reports and cases whole; most of
banks, entries and chats), run through ``SQLiteBase``'s ``hashdb.sql.db.Db``.

Mixins rather than per-aggregate objects sharing a connection holder: the store stays one
object to open, close and hand around, as before, and an operation that spans aggregates (a
self-submission adds a case and its entry; ``record_match`` writes audit, hits, a strike
and a job step) runs in one transaction on the one connection with nothing to reach
through. A consumer still depends only on the protocols of ``hashdb.store`` it uses.

Row mapping and validation shared with the PostgreSQL store are in ``hashdb.store_rows``.
"""

from __future__ import annotations

from hashdb.sql.audit import SQLAudit
from hashdb.sql.banks import SQLBanks
from hashdb.sql.cases import SQLCases
from hashdb.sql.chats import SQLChats
from hashdb.sql.entries import SQLEntries
from hashdb.sql.jobs import SQLJobs
from hashdb.sql.reports import SQLReports
from hashdb.sql.strikes import SQLStrikes
from hashdb.sqlite.banks import SQLiteBanks
from hashdb.sqlite.base import SQLiteBase
from hashdb.sqlite.chats import SQLiteChats
from hashdb.sqlite.copy import SQLiteCopy
from hashdb.sqlite.entries import SQLiteEntries
from hashdb.sqlite.index_load import SQLiteIndexLoad

__all__ = ["SQLiteBase", "SQLiteStore"]


class SQLiteStore(
    SQLiteBanks,
    SQLiteEntries,
    SQLiteIndexLoad,
    SQLiteChats,
    SQLiteCopy,
    SQLBanks,
    SQLCases,
    SQLEntries,
    SQLChats,
    SQLAudit,
    SQLStrikes,
    SQLReports,
    SQLJobs,
):
    """A ``Store`` in one SQLite file, opened with ``open()`` and released with ``close()``."""
