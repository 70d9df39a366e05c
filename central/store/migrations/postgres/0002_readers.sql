-- Reader tokens: they read a home's children's data on the read API and
-- can do nothing else (home tokens send batches and fetch the roster).
-- Only a hash of each token is kept, as for homes.

CREATE TABLE readers (
    id         text PRIMARY KEY,
    home_id    text NOT NULL REFERENCES homes (id) ON DELETE CASCADE,
    token_hash text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL
);
CREATE INDEX readers_home_id ON readers (home_id);
