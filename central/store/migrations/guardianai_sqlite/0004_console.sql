-- State of the operator's console, in the database so that every replica
-- of central behind one load balancer sees the same (issue 13).
--
-- hearth_console_sessions: the logged-in browsers. id_hash is the SHA-256 (hex)
-- of the session id the browser holds in its cookie, never the id itself,
-- so a dump of the database gives no live session. csrf is the token the
-- session's forms carry. The table holds at most 256 rows: a login deletes
-- the expired ones and those beyond the bound that expire first.
CREATE TABLE hearth_console_sessions (
    id_hash    TEXT PRIMARY KEY,
    csrf       TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    addr       TEXT NOT NULL -- the client's address at login, for the audit log
) WITHOUT ROWID;

-- hearth_home_messages: the messages stored per home and hour (its start, UTC),
-- counted in the transaction that stores the batch; the console sums the
-- last 24 hours. The hour leads the key: the console and the prune read a
-- range of hours across all homes. The prune keeps two days.
CREATE TABLE hearth_home_messages (
    hour     TEXT NOT NULL,
    home_id  TEXT NOT NULL,
    messages INTEGER NOT NULL,
    PRIMARY KEY (hour, home_id)
) WITHOUT ROWID;
