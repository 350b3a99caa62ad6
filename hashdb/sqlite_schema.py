"""The SQLite store's schema: migration scripts in order, migration ``i`` (0-based)
bringing the schema to version ``i + 1`` (``PRAGMA user_version``). Scripts are appended,
never edited: a database made by any earlier version migrates through each of them.
"""

from __future__ import annotations

_SCHEMA_V1 = """
-- Entries are never deleted, only marked removed, so the audit trail can always say what
-- an entry id was. AUTOINCREMENT keeps ids from ever being reused, since admins see them.
CREATE TABLE entries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id     INTEGER NOT NULL,
    added_by    INTEGER,
    added_at    REAL    NOT NULL,
    reason      TEXT    NOT NULL DEFAULT '',
    source      TEXT    NOT NULL,
    removed_at  REAL,
    removed_by  INTEGER
);
CREATE INDEX entries_by_chat ON entries (chat_id, removed_at);

-- One row per fingerprint; position keeps the order they were given in (the first is the
-- whole-image PDQ). The primary key doubles as the index for loading an entry's hashes.
CREATE TABLE entry_signals (
    entry_id  INTEGER NOT NULL REFERENCES entries (id),
    position  INTEGER NOT NULL,
    signal    TEXT    NOT NULL,
    hash      TEXT    NOT NULL,
    quality   INTEGER,
    PRIMARY KEY (entry_id, position)
) WITHOUT ROWID;

-- Telegram files known to match an entry; the primary key serves lookups by file id.
CREATE TABLE known_files (
    file_unique_id  TEXT    NOT NULL,
    entry_id        INTEGER NOT NULL REFERENCES entries (id),
    PRIMARY KEY (file_unique_id, entry_id)
) WITHOUT ROWID;

-- History tables carry no foreign keys: an audit record or strike must never be refused.
CREATE TABLE audit (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id      INTEGER NOT NULL,
    at           REAL    NOT NULL,
    event        TEXT    NOT NULL,
    actor_id     INTEGER,
    actor_name   TEXT    NOT NULL DEFAULT '',
    target_id    INTEGER,
    target_name  TEXT    NOT NULL DEFAULT '',
    message_id   INTEGER,
    entry_id     INTEGER,
    signal       TEXT,
    distance     INTEGER,
    detail       TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_chat ON audit (chat_id, id);

CREATE TABLE strikes (
    id        INTEGER PRIMARY KEY,
    chat_id   INTEGER NOT NULL,
    user_id   INTEGER NOT NULL,
    at        REAL    NOT NULL,
    entry_id  INTEGER
);
CREATE INDEX strikes_by_user ON strikes (chat_id, user_id);

-- rights_ok starts false: the bot has not yet seen itself with the rights it needs.
CREATE TABLE chats (
    chat_id             INTEGER PRIMARY KEY,
    title               TEXT    NOT NULL,
    added_at            REAL    NOT NULL,
    rights_ok           INTEGER NOT NULL DEFAULT 0,
    rights_notice_sent  INTEGER NOT NULL DEFAULT 0,
    active              INTEGER NOT NULL DEFAULT 1
);
"""

_SCHEMA_V2 = """
-- A video frame's time in its video, so a match can say how much of a blocked video's
-- running time was found (frames are stored denser than uploads are sampled).
ALTER TABLE entry_signals ADD COLUMN seconds REAL;
"""

_SCHEMA_V3 = """
-- Members' reports: one row per reported message, its reporters apart, and the fingerprints
-- of the reported media as they were when first reported (never the media itself).
CREATE TABLE reports (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id            INTEGER NOT NULL,
    message_id         INTEGER NOT NULL,
    sender_id          INTEGER,
    sender_name        TEXT    NOT NULL DEFAULT '',
    reason             TEXT    NOT NULL DEFAULT '',
    file_unique_id     TEXT,
    at                 REAL    NOT NULL,
    status             TEXT    NOT NULL DEFAULT 'open',
    decided_by         INTEGER,
    decided_at         REAL,
    review_chat_id     INTEGER,
    review_message_id  INTEGER,
    UNIQUE (chat_id, message_id)
);

CREATE TABLE report_reporters (
    report_id    INTEGER NOT NULL REFERENCES reports (id),
    reporter_id  INTEGER NOT NULL,
    at           REAL    NOT NULL,
    PRIMARY KEY (report_id, reporter_id)
) WITHOUT ROWID;

CREATE TABLE report_signals (
    report_id  INTEGER NOT NULL REFERENCES reports (id),
    position   INTEGER NOT NULL,
    signal     TEXT    NOT NULL,
    hash       TEXT    NOT NULL,
    quality    INTEGER,
    seconds    REAL,
    PRIMARY KEY (report_id, position)
) WITHOUT ROWID;
"""

_SCHEMA_V4 = """
-- Members an admin barred from reporting in a chat.
CREATE TABLE report_bans (
    chat_id  INTEGER NOT NULL,
    user_id  INTEGER NOT NULL,
    by       INTEGER,
    at       REAL    NOT NULL,
    PRIMARY KEY (chat_id, user_id)
) WITHOUT ROWID;
CREATE INDEX report_reporters_by_reporter ON report_reporters (reporter_id, at);
"""

_SCHEMA_V5 = """
-- A group's own values for settings whose defaults come from the config file.
CREATE TABLE chat_settings (
    chat_id  INTEGER NOT NULL,
    key      TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    PRIMARY KEY (chat_id, key)
) WITHOUT ROWID;
"""

_SCHEMA_V6 = """
-- Set once the reported message was hidden (deleted) after enough reporters.
ALTER TABLE reports ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;
"""

_SCHEMA_V7 = """
-- Banks: named lists of fingerprints. Every entry belongs to one; a group's own entries go
-- to its bank "group:<chat id>", made here for each group that already has entries.
CREATE TABLE banks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    kind        TEXT    NOT NULL,
    owner_id    INTEGER,
    created_at  REAL    NOT NULL,
    source      TEXT    NOT NULL DEFAULT ''
);
CREATE TABLE bank_editors (
    bank_id   INTEGER NOT NULL REFERENCES banks (id),
    user_id   INTEGER NOT NULL,
    added_by  INTEGER,
    at        REAL    NOT NULL,
    PRIMARY KEY (bank_id, user_id)
) WITHOUT ROWID;
CREATE TABLE subscriptions (
    chat_id  INTEGER NOT NULL,
    bank_id  INTEGER NOT NULL REFERENCES banks (id),
    by       INTEGER,
    at       REAL    NOT NULL,
    PRIMARY KEY (chat_id, bank_id)
) WITHOUT ROWID;
CREATE INDEX subscriptions_by_bank ON subscriptions (bank_id);

-- Self-submissions: one case per media item a person sent to protect themselves.
CREATE TABLE cases (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    code        TEXT    NOT NULL UNIQUE,
    user_id     INTEGER NOT NULL,
    created_at  REAL    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'active',
    status_at   REAL,
    kind        TEXT    NOT NULL
);
CREATE INDEX cases_by_user ON cases (user_id, created_at);
CREATE TABLE self_submitters (
    user_id      INTEGER PRIMARY KEY,
    accepted_at  REAL NOT NULL
);

ALTER TABLE entries ADD COLUMN bank_id INTEGER REFERENCES banks (id);
ALTER TABLE entries ADD COLUMN origin TEXT NOT NULL DEFAULT '';
ALTER TABLE entries ADD COLUMN case_id INTEGER REFERENCES cases (id);
ALTER TABLE entries ADD COLUMN hits INTEGER NOT NULL DEFAULT 0;
ALTER TABLE entries ADD COLUMN last_hit_at REAL;

INSERT INTO banks (name, kind, owner_id, created_at)
    SELECT 'group:' || chat_id, 'group', chat_id, min(added_at) FROM entries GROUP BY chat_id;
UPDATE entries SET bank_id = (SELECT id FROM banks WHERE name = 'group:' || entries.chat_id);
CREATE INDEX entries_by_bank ON entries (bank_id, removed_at);
CREATE INDEX entries_by_case ON entries (case_id) WHERE case_id IS NOT NULL;
-- Entries are found by bank now; one index fewer makes bulk imports about a fifth faster.
DROP INDEX entries_by_chat;
"""

_SCHEMA_V8 = """
-- Local features (ORB keypoints) of blocked photos, to find them cropped or screenshotted.
CREATE TABLE entry_features (
    entry_id  INTEGER PRIMARY KEY REFERENCES entries (id),
    data      BLOB    NOT NULL
);
"""

_SCHEMA_V9 = """
-- The outbox: Telegram actions decided on (delete, restrict, warn) kept until they are
-- made, so flood control, outages and restarts delay them but never drop them. Only ids
-- and the names a warning mentions; rows go once the actions are made.
CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id       INTEGER NOT NULL,
    steps         TEXT    NOT NULL,
    done          INTEGER NOT NULL DEFAULT 0,
    results       TEXT    NOT NULL DEFAULT '{}',
    created_at    REAL    NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       REAL    NOT NULL,
    last_error    TEXT    NOT NULL DEFAULT '',
    claimed_until REAL    NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_due ON jobs (next_at);
"""

_SCHEMA_V10 = """
-- Recent actions per person, for a rate limit that holds across processes (a store several
-- processes share); kept for a minute or so.
CREATE TABLE actions (
    actor_id  INTEGER NOT NULL,
    at        REAL    NOT NULL
);
CREATE INDEX actions_by_actor ON actions (actor_id, at);
"""

_SCHEMA_V11 = """
-- The earliest message the bot saw each member post in a chat: only reports from members
-- who posted before the reported message count toward auto-hide.
CREATE TABLE first_posts (
    chat_id     INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    message_id  INTEGER NOT NULL,
    PRIMARY KEY (chat_id, user_id)
) WITHOUT ROWID;
"""

_SCHEMA_V12 = """
-- Files used to be remembered from matches, which held under one group's threshold and
-- banks only, yet a known file short-cuts every group's check. Only the file an admin
-- blocked is exact for all; old rows cannot say which they are, so an entry blocked by
-- reply or self-submitted keeps its file when it has just one, and the other remembered
-- files are forgotten (their re-uploads are hashed and matched by each group's rules).
DELETE FROM known_files
WHERE entry_id NOT IN (SELECT id FROM entries WHERE source IN ('reply', 'self'))
   OR entry_id IN (SELECT entry_id FROM known_files GROUP BY entry_id HAVING count(*) > 1);
"""

_SCHEMA_V13 = """
-- Entries a group exempted for itself: an entry of a bank it uses (subscribed, the
-- operator's, self-submitted) that it judged wrong stops matching there, and only there.
CREATE TABLE exemptions (
    chat_id   INTEGER NOT NULL,
    entry_id  INTEGER NOT NULL REFERENCES entries (id),
    by        INTEGER,
    at        REAL    NOT NULL,
    PRIMARY KEY (chat_id, entry_id)
);
CREATE INDEX exemptions_by_entry ON exemptions (entry_id);
-- The bot's deletion notices and the entry each is about: a reply to one finds the entry
-- without the notice naming it to the group.
CREATE TABLE notices (
    chat_id     INTEGER NOT NULL,
    message_id  INTEGER NOT NULL,
    entry_id    INTEGER NOT NULL REFERENCES entries (id),
    at          REAL    NOT NULL,
    PRIMARY KEY (chat_id, message_id)
);
-- A person's imports of the last day are counted against a quota.
CREATE INDEX entries_by_importer ON entries (added_by, added_at) WHERE source = 'import';
"""

_SCHEMA_V14 = """
-- The file's change feed (PostgreSQL's NOTIFY): every write that changes what a running bot
-- keeps in memory (entries, a group's banks or settings) adds a row in its transaction, so
-- the bot takes in what another process (hashguard block, import) wrote. The writer is a
-- random id per open store, so a bot skips its own rows; old rows are pruned as new come.
CREATE TABLE changes (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    writer   TEXT    NOT NULL,
    payload  TEXT    NOT NULL
);
"""

MIGRATIONS: list[str] = [
    _SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3, _SCHEMA_V4, _SCHEMA_V5, _SCHEMA_V6, _SCHEMA_V7,
    _SCHEMA_V8, _SCHEMA_V9, _SCHEMA_V10, _SCHEMA_V11, _SCHEMA_V12, _SCHEMA_V13, _SCHEMA_V14,
]  # fmt: skip
