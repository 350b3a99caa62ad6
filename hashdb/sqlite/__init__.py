"""The SQLite implementation of ``hashdb.store.Store``, on aiosqlite: one module per aggregate.

``SQLiteStore`` is composed of one mixin per aggregate (banks, entries, cases, audit,
strikes, chats, reports, jobs, copy), each a subclass of ``SQLiteBase`` (``base.py``), which
holds the one connection, its lock, migrations, transactions and the ``changes`` table.
Mixins rather than per-aggregate objects sharing a connection holder: the store is one
object to open, close and hand around, exactly as before, and an operation that spans two
aggregates (a self-submission adds a case and its entry; ``record_match`` writes audit,
hits, a strike and a job step) runs in one transaction on the one connection without a
second object to reach through. Each mixin satisfies its protocol of ``hashdb.store`` on
its own (``SQLiteBanks`` is a ``BankStore``), so a reader of one aggregate reads one file.

SQL, row mapping and validation shared with the PostgreSQL store live in
``hashdb.store_rows``; what is here is what SQLite does differently.
"""

from __future__ import annotations

from hashdb.sqlite.audit import SQLiteAudit
from hashdb.sqlite.banks import SQLiteBanks
from hashdb.sqlite.base import SQLiteBase
from hashdb.sqlite.cases import SQLiteCases
from hashdb.sqlite.chats import SQLiteChats
from hashdb.sqlite.copy import SQLiteCopy
from hashdb.sqlite.entries import SQLiteEntries
from hashdb.sqlite.index_load import SQLiteIndexLoad
from hashdb.sqlite.jobs import SQLiteJobs
from hashdb.sqlite.reports import SQLiteReports
from hashdb.sqlite.strikes import SQLiteStrikes

__all__ = ["SQLiteBase", "SQLiteStore"]


class SQLiteStore(
    SQLiteBanks,
    SQLiteEntries,
    SQLiteIndexLoad,
    SQLiteCases,
    SQLiteAudit,
    SQLiteStrikes,
    SQLiteChats,
    SQLiteReports,
    SQLiteJobs,
    SQLiteCopy,
):
    """A ``Store`` in one SQLite file, opened with ``open()`` and released with ``close()``."""
