-- The fleet's lifecycle (hearth-central home rotate-token, revoke, the
-- console): a home's revocation; the previous token of a planned rotation
-- while its grace period lasts (in the database, so every replica honours
-- and ends it alike); what the home's edge last said of itself in its
-- request headers. Children's names are in hearth_home_children already.

ALTER TABLE hearth_homes ADD COLUMN revoked_at TEXT;
ALTER TABLE hearth_homes ADD COLUMN edge_id TEXT NOT NULL DEFAULT '';
ALTER TABLE hearth_homes ADD COLUMN edge_version TEXT NOT NULL DEFAULT '';
ALTER TABLE hearth_homes ADD COLUMN backlog_messages INTEGER NOT NULL DEFAULT -1;
ALTER TABLE hearth_homes ADD COLUMN backlog_oldest_seconds INTEGER NOT NULL DEFAULT -1;
ALTER TABLE hearth_homes ADD COLUMN dead_letters INTEGER NOT NULL DEFAULT -1;

CREATE TABLE hearth_grace_tokens (
    token_hash TEXT PRIMARY KEY,
    home_id    TEXT NOT NULL REFERENCES hearth_homes (id) ON DELETE CASCADE,
    expires_at TEXT NOT NULL
);
CREATE INDEX hearth_grace_tokens_home_id ON hearth_grace_tokens (home_id);
