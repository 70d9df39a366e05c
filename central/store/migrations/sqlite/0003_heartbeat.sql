-- One row that central's readiness probe rewrites every few seconds: a
-- database that cannot take this write (read-only file, wrong owner, full
-- disk) cannot take data either, and /readyz says so.

CREATE TABLE heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at TEXT NOT NULL
);
INSERT INTO heartbeat (id, at) VALUES (1, '2000-01-01T00:00:00.000000Z');
