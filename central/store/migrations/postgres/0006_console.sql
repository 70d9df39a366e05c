-- State of the operator's console, in the database so that every replica
-- of central behind one load balancer sees the same (issue 13).
--
-- console_sessions: the logged-in browsers. id_hash is the SHA-256 (hex)
-- of the session id the browser holds in its cookie, never the id itself,
-- so a dump of the database gives no live session. csrf is the token the
-- session's forms carry. The table holds at most 256 rows (give or take
-- logins at the same instant on several replicas): a login deletes the
-- expired ones and those beyond the bound that expire first.
CREATE TABLE console_sessions (
    id_hash    text PRIMARY KEY,
    csrf       text NOT NULL,
    expires_at timestamptz NOT NULL,
    addr       text NOT NULL -- the client's address at login, for the audit log
);

-- home_messages: the messages stored per home and hour (its start),
-- counted in the transaction that stores the batch; the console sums the
-- last 24 hours. The hour leads the key: the console and the prune read a
-- range of hours across all homes. The prune keeps two days.
CREATE TABLE home_messages (
    hour     timestamptz NOT NULL,
    home_id  text NOT NULL,
    messages bigint NOT NULL,
    PRIMARY KEY (hour, home_id)
);
