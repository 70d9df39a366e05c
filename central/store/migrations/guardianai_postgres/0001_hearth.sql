-- hearth's own state beside the GuardianAI dashboard's Django tables
-- (PostgreSQL, --schema guardianai). Every table is hearth_-prefixed, and
-- none has an index, trigger or foreign key on or to a Django table:
-- Django cascades its deletes in Python, so a foreign key to its tables
-- would break the dashboard's deletes.

CREATE TABLE hearth_homes (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    token_hash      text NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL,
    clock_offset_ms bigint NOT NULL DEFAULT 0,
    last_seen       timestamptz
);

-- A GuardianAI child (accounts_child.child_hash) attached to a home; a
-- child may belong to several homes. name is for the operator.
CREATE TABLE hearth_home_children (
    home_id    text NOT NULL REFERENCES hearth_homes (id) ON DELETE CASCADE,
    child_hash text NOT NULL,
    name       text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (home_id, child_hash)
);
CREATE INDEX hearth_home_children_child ON hearth_home_children (child_hash);

CREATE TABLE hearth_readers (
    id         text PRIMARY KEY,
    home_id    text NOT NULL REFERENCES hearth_homes (id) ON DELETE CASCADE,
    token_hash text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL
);
CREATE INDEX hearth_readers_home_id ON hearth_readers (home_id);

CREATE TABLE hearth_heartbeat (
    id integer PRIMARY KEY CHECK (id = 1),
    at timestamptz NOT NULL
);
INSERT INTO hearth_heartbeat (id, at) VALUES (1, '2000-01-01T00:00:00Z');

-- Versions for newer-wins: the received time and value that last wrote a
-- Django row, by its id (ids come from sequences: never reused).
CREATE TABLE hearth_screentime (
    row_id      bigint PRIMARY KEY,
    received_at timestamptz NOT NULL,
    total       bigint NOT NULL,
    apps        text NOT NULL
);
CREATE TABLE hearth_appscreentime (
    row_id      bigint PRIMARY KEY,
    received_at timestamptz NOT NULL,
    seconds     bigint NOT NULL
);

-- Dedupe keys of the tables without a natural key in Django: one row per
-- (child, timestamp[, url]) names the Django row that holds it. A key is
-- inserted before its row, so concurrent batches never both create one.
CREATE TABLE hearth_locationhistory (
    child_id    bigint NOT NULL,
    ts          timestamptz NOT NULL,
    row_id      bigint NOT NULL,
    received_at timestamptz NOT NULL,
    latitude    double precision NOT NULL,
    longitude   double precision NOT NULL,
    PRIMARY KEY (child_id, ts)
);
CREATE INDEX hearth_locationhistory_row ON hearth_locationhistory (row_id);

CREATE TABLE hearth_siteaccesslog (
    child_id    bigint NOT NULL,
    ts          timestamptz NOT NULL,
    url         text NOT NULL,
    row_id      bigint NOT NULL,
    received_at timestamptz NOT NULL,
    accessed    boolean NOT NULL,
    PRIMARY KEY (child_id, ts, url)
);
CREATE INDEX hearth_siteaccesslog_row ON hearth_siteaccesslog (row_id);


-- Rows the seed wrote before hearth: their keys (the lowest id of each,
-- so duplicates the seed left stay out) and their updated (or created)
-- time as received time.
INSERT INTO hearth_screentime (row_id, received_at, total, apps)
    SELECT id, updated, total_screen_time, app_wise_data::text FROM backend_screentime;
INSERT INTO hearth_appscreentime (row_id, received_at, seconds)
    SELECT id, updated, seconds FROM backend_appscreentime;
INSERT INTO hearth_locationhistory (child_id, ts, row_id, received_at, latitude, longitude)
    SELECT DISTINCT ON (child_id, "timestamp") child_id, "timestamp", id, created, latitude, longitude
    FROM backend_locationhistory ORDER BY child_id, "timestamp", id;
INSERT INTO hearth_siteaccesslog (child_id, ts, url, row_id, received_at, accessed)
    SELECT DISTINCT ON (child_id, "timestamp", url) child_id, "timestamp", url, id, created, accessed
    FROM backend_siteaccesslog ORDER BY child_id, "timestamp", url, id;
