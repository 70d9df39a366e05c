-- hearth-central schema v1 (SQLite). Times are TEXT in one fixed-width UTC
-- form, 2006-01-02T15:04:05.000000Z, so that text order is time order.

CREATE TABLE homes (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    token_hash      TEXT NOT NULL UNIQUE,
    created_at      TEXT NOT NULL,
    clock_offset_ms INTEGER NOT NULL DEFAULT 0,
    last_seen       TEXT
);

CREATE TABLE children (
    hash       TEXT PRIMARY KEY,
    home_id    TEXT NOT NULL REFERENCES homes (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);
CREATE INDEX children_home_id ON children (home_id);

CREATE TABLE screen_time (
    child         TEXT NOT NULL REFERENCES children (hash) ON DELETE CASCADE,
    date          TEXT NOT NULL,
    total_seconds INTEGER NOT NULL,
    received_at   TEXT NOT NULL,
    PRIMARY KEY (child, date)
) WITHOUT ROWID;

CREATE TABLE app_screen_time (
    child       TEXT NOT NULL REFERENCES children (hash) ON DELETE CASCADE,
    date        TEXT NOT NULL,
    app         TEXT NOT NULL,
    hour        INTEGER NOT NULL CHECK (hour BETWEEN 0 AND 23),
    seconds     INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (child, date, app, hour)
) WITHOUT ROWID;

CREATE TABLE locations (
    child       TEXT NOT NULL REFERENCES children (hash) ON DELETE CASCADE,
    ts          TEXT NOT NULL,
    latitude    REAL NOT NULL,
    longitude   REAL NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (child, ts)
) WITHOUT ROWID;

CREATE TABLE site_access (
    child       TEXT NOT NULL REFERENCES children (hash) ON DELETE CASCADE,
    ts          TEXT NOT NULL,
    url         TEXT NOT NULL,
    accessed    INTEGER NOT NULL CHECK (accessed IN (0, 1)),
    received_at TEXT NOT NULL,
    PRIMARY KEY (child, ts, url)
) WITHOUT ROWID;
