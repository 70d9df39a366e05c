-- hearth's own state beside the GuardianAI dashboard's Django tables
-- (SQLite, --schema guardianai). Every table is hearth_-prefixed, and none
-- has an index, trigger or foreign key on or to a Django table: Django
-- rebuilds SQLite tables in its migrations and cascades its deletes in
-- Python, so such a link would break the dashboard. Times are TEXT as
-- Django writes them ("2006-01-02 15:04:05[.ffffff]", UTC), whose text
-- order is time order.

CREATE TABLE hearth_homes (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    token_hash      TEXT NOT NULL UNIQUE,
    created_at      TEXT NOT NULL,
    clock_offset_ms INTEGER NOT NULL DEFAULT 0,
    last_seen       TEXT
);

-- A GuardianAI child (accounts_child.child_hash) attached to a home; a
-- child may belong to several homes. name is for the operator.
CREATE TABLE hearth_home_children (
    home_id    TEXT NOT NULL REFERENCES hearth_homes (id) ON DELETE CASCADE,
    child_hash TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (home_id, child_hash)
) WITHOUT ROWID;
CREATE INDEX hearth_home_children_child ON hearth_home_children (child_hash);

CREATE TABLE hearth_readers (
    id         TEXT PRIMARY KEY,
    home_id    TEXT NOT NULL REFERENCES hearth_homes (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE INDEX hearth_readers_home_id ON hearth_readers (home_id);

CREATE TABLE hearth_heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at TEXT NOT NULL
);
INSERT INTO hearth_heartbeat (id, at) VALUES (1, '2000-01-01 00:00:00');

-- Versions for newer-wins: the received time and value that last wrote a
-- Django row, by its id (ids are AUTOINCREMENT: never reused).
CREATE TABLE hearth_screentime (
    row_id      INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    total       INTEGER NOT NULL,
    apps        TEXT NOT NULL
);
CREATE TABLE hearth_appscreentime (
    row_id      INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    seconds     INTEGER NOT NULL
);

-- Dedupe keys of the tables without a natural key in Django: one row per
-- (child, timestamp[, url]) names the Django row that holds it.
CREATE TABLE hearth_locationhistory (
    child_id    INTEGER NOT NULL,
    ts          TEXT NOT NULL,
    row_id      INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    latitude    REAL NOT NULL,
    longitude   REAL NOT NULL,
    PRIMARY KEY (child_id, ts)
) WITHOUT ROWID;
CREATE INDEX hearth_locationhistory_row ON hearth_locationhistory (row_id);
CREATE TABLE hearth_siteaccesslog (
    child_id    INTEGER NOT NULL,
    ts          TEXT NOT NULL,
    url         TEXT NOT NULL,
    row_id      INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    accessed    INTEGER NOT NULL,
    PRIMARY KEY (child_id, ts, url)
) WITHOUT ROWID;
CREATE INDEX hearth_siteaccesslog_row ON hearth_siteaccesslog (row_id);

-- Rows the seed wrote before hearth: their keys (the lowest id of each,
-- so duplicates the seed left stay out) and their updated (or created)
-- time as received time.
INSERT INTO hearth_screentime (row_id, received_at, total, apps)
    SELECT id, updated, total_screen_time, app_wise_data FROM backend_screentime;
INSERT INTO hearth_appscreentime (row_id, received_at, seconds)
    SELECT id, updated, seconds FROM backend_appscreentime;
INSERT OR IGNORE INTO hearth_locationhistory (child_id, ts, row_id, received_at, latitude, longitude)
    SELECT child_id, timestamp, id, created, latitude, longitude FROM backend_locationhistory ORDER BY id;
INSERT OR IGNORE INTO hearth_siteaccesslog (child_id, ts, url, row_id, received_at, accessed)
    SELECT child_id, timestamp, url, id, created, accessed FROM backend_siteaccesslog ORDER BY id;
