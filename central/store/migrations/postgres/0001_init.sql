-- hearth-central schema v1 (PostgreSQL). The two screen time tables are
-- mostly updated (phones resend day totals): fillfactor leaves room on each
-- page for HOT updates, which skip the index.

CREATE TABLE homes (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    token_hash      text NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL,
    clock_offset_ms bigint NOT NULL DEFAULT 0,
    last_seen       timestamptz
);

CREATE TABLE children (
    hash       text PRIMARY KEY,
    home_id    text NOT NULL REFERENCES homes (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL
);
CREATE INDEX children_home_id ON children (home_id);

CREATE TABLE screen_time (
    child         text NOT NULL REFERENCES children (hash) ON DELETE CASCADE,
    date          date NOT NULL,
    total_seconds integer NOT NULL,
    received_at   timestamptz NOT NULL,
    PRIMARY KEY (child, date)
) WITH (fillfactor = 80);

CREATE TABLE app_screen_time (
    child       text NOT NULL REFERENCES children (hash) ON DELETE CASCADE,
    date        date NOT NULL,
    app         text NOT NULL,
    hour        smallint NOT NULL CHECK (hour BETWEEN 0 AND 23),
    seconds     integer NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (child, date, app, hour)
) WITH (fillfactor = 80);

CREATE TABLE locations (
    child       text NOT NULL REFERENCES children (hash) ON DELETE CASCADE,
    ts          timestamptz NOT NULL,
    latitude    double precision NOT NULL,
    longitude   double precision NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (child, ts)
);

CREATE TABLE site_access (
    child       text NOT NULL REFERENCES children (hash) ON DELETE CASCADE,
    ts          timestamptz NOT NULL,
    url         text NOT NULL,
    accessed    boolean NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (child, ts, url)
);
