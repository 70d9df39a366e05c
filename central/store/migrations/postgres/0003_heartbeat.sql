-- One row that central's readiness probe rewrites every few seconds: a
-- database that cannot take this write (read-only after a failover, full
-- disk, lost privileges) cannot take data either, and /readyz says so.
-- Every replica writes the same row.

CREATE TABLE heartbeat (
    id integer PRIMARY KEY CHECK (id = 1),
    at timestamptz NOT NULL
);
INSERT INTO heartbeat (id, at) VALUES (1, '2000-01-01T00:00:00Z');
