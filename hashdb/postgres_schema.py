"""The PostgreSQL store's schema: migration scripts in order, migration ``i`` (0-based)
bringing the schema to version ``i + 1`` (the ``schema_migrations`` table). Scripts are
appended, never edited: a database made by any earlier version migrates through each of
them. The first is the whole schema as the SQLite store's first nine migrations left it.
"""

from __future__ import annotations

_SCHEMA_V1 = """
-- Banks: named lists of fingerprints. A group's own entries go to its bank
-- "group:<chat id>"; shared, operator and self-submission banks have their own names.
CREATE TABLE banks (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT             NOT NULL,
    kind        TEXT             NOT NULL,
    owner_id    BIGINT,
    created_at  DOUBLE PRECISION NOT NULL,
    source      TEXT             NOT NULL DEFAULT ''
);
-- Names are unique ignoring the case of ASCII letters (SQLite's NOCASE): lower() under the
-- "C" collation folds A-Z only, whatever the database's locale.
CREATE UNIQUE INDEX banks_by_name ON banks ((lower(name COLLATE "C")));

CREATE TABLE bank_editors (
    bank_id   BIGINT           NOT NULL REFERENCES banks (id),
    user_id   BIGINT           NOT NULL,
    added_by  BIGINT,
    at        DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (bank_id, user_id)
);

CREATE TABLE subscriptions (
    chat_id  BIGINT           NOT NULL,
    bank_id  BIGINT           NOT NULL REFERENCES banks (id),
    by       BIGINT,
    at       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (chat_id, bank_id)
);
CREATE INDEX subscriptions_by_bank ON subscriptions (bank_id);

-- Self-submissions: one case per media item a person sent to protect themselves.
CREATE TABLE cases (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        TEXT             NOT NULL UNIQUE,
    user_id     BIGINT           NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    status      TEXT             NOT NULL DEFAULT 'active',
    status_at   DOUBLE PRECISION,
    kind        TEXT             NOT NULL
);
CREATE INDEX cases_by_user ON cases (user_id, created_at);

CREATE TABLE self_submitters (
    user_id      BIGINT PRIMARY KEY,
    accepted_at  DOUBLE PRECISION NOT NULL
);

-- Entries are never deleted, only marked removed, so the audit trail can always say what
-- an entry id was; ids come from entry_ids and are never reused, since admins see them.
-- They are taken in consecutive blocks (see _take_entry_ids), not by a column default.
CREATE SEQUENCE entry_ids AS BIGINT;
CREATE TABLE entries (
    id           BIGINT           PRIMARY KEY,
    chat_id      BIGINT           NOT NULL,
    added_by     BIGINT,
    added_at     DOUBLE PRECISION NOT NULL,
    reason       TEXT             NOT NULL DEFAULT '',
    source       TEXT             NOT NULL,
    removed_at   DOUBLE PRECISION,
    removed_by   BIGINT,
    bank_id      BIGINT           NOT NULL REFERENCES banks (id),
    origin       TEXT             NOT NULL DEFAULT '',
    case_id      BIGINT           REFERENCES cases (id),
    hits         BIGINT           NOT NULL DEFAULT 0,
    last_hit_at  DOUBLE PRECISION
);
ALTER SEQUENCE entry_ids OWNED BY entries.id;
CREATE INDEX entries_by_bank ON entries (bank_id, removed_at);
CREATE INDEX entries_by_case ON entries (case_id) WHERE case_id IS NOT NULL;

-- One row per fingerprint; position keeps the order they were given in (the first is the
-- whole-image PDQ). seconds is a video frame's time in its video.
CREATE TABLE entry_signals (
    entry_id  BIGINT           NOT NULL REFERENCES entries (id),
    position  INTEGER          NOT NULL,
    signal    TEXT             NOT NULL,
    hash      TEXT             NOT NULL,
    quality   INTEGER,
    seconds   DOUBLE PRECISION,
    PRIMARY KEY (entry_id, position)
);

-- Local features (ORB keypoints) of blocked photos, to find them cropped or screenshotted.
CREATE TABLE entry_features (
    entry_id  BIGINT PRIMARY KEY REFERENCES entries (id),
    data      BYTEA  NOT NULL
);

-- Telegram files known to match an entry; the primary key serves lookups by file id.
CREATE TABLE known_files (
    file_unique_id  TEXT   NOT NULL,
    entry_id        BIGINT NOT NULL REFERENCES entries (id),
    PRIMARY KEY (file_unique_id, entry_id)
);

-- History tables carry no foreign keys: an audit record or strike must never be refused.
CREATE TABLE audit (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_id      BIGINT           NOT NULL,
    at           DOUBLE PRECISION NOT NULL,
    event        TEXT             NOT NULL,
    actor_id     BIGINT,
    actor_name   TEXT             NOT NULL DEFAULT '',
    target_id    BIGINT,
    target_name  TEXT             NOT NULL DEFAULT '',
    message_id   BIGINT,
    entry_id     BIGINT,
    signal       TEXT,
    distance     INTEGER,
    detail       TEXT             NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_chat ON audit (chat_id, id);

CREATE TABLE strikes (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_id   BIGINT           NOT NULL,
    user_id   BIGINT           NOT NULL,
    at        DOUBLE PRECISION NOT NULL,
    entry_id  BIGINT
);
CREATE INDEX strikes_by_user ON strikes (chat_id, user_id, at);

-- rights_ok starts false: the bot has not yet seen itself with the rights it needs.
CREATE TABLE chats (
    chat_id             BIGINT           PRIMARY KEY,
    title               TEXT             NOT NULL,
    added_at            DOUBLE PRECISION NOT NULL,
    rights_ok           BOOLEAN          NOT NULL DEFAULT false,
    rights_notice_sent  BOOLEAN          NOT NULL DEFAULT false,
    active              BOOLEAN          NOT NULL DEFAULT true
);

-- A group's own values for settings whose defaults come from the config file.
CREATE TABLE chat_settings (
    chat_id  BIGINT NOT NULL,
    key      TEXT   NOT NULL,
    value    TEXT   NOT NULL,
    PRIMARY KEY (chat_id, key)
);

-- Members' reports: one row per reported message, its reporters apart, and the fingerprints
-- of the reported media as they were when first reported (never the media itself).
CREATE TABLE reports (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_id            BIGINT           NOT NULL,
    message_id         BIGINT           NOT NULL,
    sender_id          BIGINT,
    sender_name        TEXT             NOT NULL DEFAULT '',
    reason             TEXT             NOT NULL DEFAULT '',
    file_unique_id     TEXT,
    at                 DOUBLE PRECISION NOT NULL,
    status             TEXT             NOT NULL DEFAULT 'open',
    decided_by         BIGINT,
    decided_at         DOUBLE PRECISION,
    review_chat_id     BIGINT,
    review_message_id  BIGINT,
    hidden             BOOLEAN          NOT NULL DEFAULT false,
    UNIQUE (chat_id, message_id)
);

CREATE TABLE report_reporters (
    report_id    BIGINT           NOT NULL REFERENCES reports (id),
    reporter_id  BIGINT           NOT NULL,
    at           DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (report_id, reporter_id)
);
CREATE INDEX report_reporters_by_reporter ON report_reporters (reporter_id, at);

CREATE TABLE report_signals (
    report_id  BIGINT           NOT NULL REFERENCES reports (id),
    position   INTEGER          NOT NULL,
    signal     TEXT             NOT NULL,
    hash       TEXT             NOT NULL,
    quality    INTEGER,
    seconds    DOUBLE PRECISION,
    PRIMARY KEY (report_id, position)
);

-- Members an admin barred from reporting in a chat.
CREATE TABLE report_bans (
    chat_id  BIGINT           NOT NULL,
    user_id  BIGINT           NOT NULL,
    by       BIGINT,
    at       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (chat_id, user_id)
);

-- The outbox: Telegram actions decided on (delete, restrict, warn) kept until they are
-- made, so flood control, outages and restarts delay them but never drop them. Only ids
-- and the names a warning mentions; rows go once the actions are made.
CREATE TABLE jobs (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_id        BIGINT           NOT NULL,
    steps          TEXT             NOT NULL,
    done           INTEGER          NOT NULL DEFAULT 0,
    results        TEXT             NOT NULL DEFAULT '{}',
    created_at     DOUBLE PRECISION NOT NULL,
    attempts       INTEGER          NOT NULL DEFAULT 0,
    next_at        DOUBLE PRECISION NOT NULL,
    last_error     TEXT             NOT NULL DEFAULT '',
    claimed_until  DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_due ON jobs (next_at);
"""

_SCHEMA_V2 = """
-- Recent actions per person, for a rate limit that holds across worker processes; kept
-- for a minute or so.
CREATE TABLE actions (
    actor_id  BIGINT           NOT NULL,
    at        DOUBLE PRECISION NOT NULL
);
CREATE INDEX actions_by_actor ON actions (actor_id, at);
"""

_SCHEMA_V3 = """
-- The earliest message the bot saw each member post in a chat: only reports from members
-- who posted before the reported message count toward auto-hide.
CREATE TABLE first_posts (
    chat_id     BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    message_id  BIGINT NOT NULL,
    PRIMARY KEY (chat_id, user_id)
);
"""

_SCHEMA_V4 = """
-- Files used to be remembered from matches, which held under one group's threshold and
-- banks only, yet a known file short-cuts every group's check. Only the file an admin
-- blocked is exact for all; old rows cannot say which they are, so an entry blocked by
-- reply or self-submitted keeps its file when it has just one, and the other remembered
-- files are forgotten (their re-uploads are hashed and matched by each group's rules).
DELETE FROM known_files
WHERE entry_id NOT IN (SELECT id FROM entries WHERE source IN ('reply', 'self'))
   OR entry_id IN (SELECT entry_id FROM known_files GROUP BY entry_id HAVING count(*) > 1);
"""

_SCHEMA_V5 = """
-- Entries a group exempted for itself: an entry of a bank it uses (subscribed, the
-- operator's, self-submitted) that it judged wrong stops matching there, and only there.
CREATE TABLE exemptions (
    chat_id   BIGINT           NOT NULL,
    entry_id  BIGINT           NOT NULL REFERENCES entries (id),
    by        BIGINT,
    at        DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (chat_id, entry_id)
);
CREATE INDEX exemptions_by_entry ON exemptions (entry_id);
-- The bot's deletion notices and the entry each is about: a reply to one finds the entry
-- without the notice naming it to the group.
CREATE TABLE notices (
    chat_id     BIGINT           NOT NULL,
    message_id  BIGINT           NOT NULL,
    entry_id    BIGINT           NOT NULL REFERENCES entries (id),
    at          DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (chat_id, message_id)
);
-- A person's imports of the last day are counted against a quota.
CREATE INDEX entries_by_importer ON entries (added_by, added_at) WHERE source = 'import';
"""

MIGRATIONS: list[str] = [_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3, _SCHEMA_V4, _SCHEMA_V5]

#: Records the migrations applied, one row each.
VERSION_TABLE = """
CREATE TABLE schema_migrations (
    version     INTEGER     PRIMARY KEY,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""
