"""What the SQLite and PostgreSQL stores do alike, written once: one mixin per aggregate.

Each module here implements (part of) one protocol of ``hashdb.store`` in SQL both
databases accept, run through ``hashdb.sql.db.Db``; ``hashdb.sqlite`` and
``hashdb.postgres`` mix these in and keep only what truly differs (how ids are taken, bulk
loads, streaming, the locks PostgreSQL needs between processes). A method written here
decides the same on both databases by construction.
"""
