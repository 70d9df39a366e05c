-- A child detached from its home (hearth-central child remove without
-- --erase-data) keeps its row, and so its data, with home_id NULL: no
-- home's roster, child count or edge batch sees it, and removing its
-- former home leaves it alone (the cascade follows home_id, which no
-- longer names that home). child add puts it back in a home.
--
-- SQLite cannot drop a NOT NULL in place: the table is rebuilt as its
-- documentation says (new table, copy, drop, rename). The migration runs
-- with foreign keys off, so dropping the old table does not cascade to the
-- data tables, whose references name "children" and so name the new table
-- once it is renamed; foreign_key_check runs before the commit.

CREATE TABLE children_new (
    hash       TEXT PRIMARY KEY,
    home_id    TEXT REFERENCES homes (id) ON DELETE CASCADE, -- NULL: detached
    created_at TEXT NOT NULL,
    name       TEXT NOT NULL DEFAULT ''
);
INSERT INTO children_new (hash, home_id, created_at, name)
    SELECT hash, home_id, created_at, name FROM children;
DROP TABLE children;
ALTER TABLE children_new RENAME TO children;
CREATE INDEX children_home_id ON children (home_id);
