-- The children hearth took out of their last home (hearth-central child
-- remove without --erase-data, or home remove): GuardianAI keeps the
-- accounts_child row and its data whether or not a hearth home has it, so
-- without this table nothing would tell them from the dashboard's children
-- that never were in a hearth home. child add deletes the row (the child
-- is in a home again), and so does child remove --erase-data. name is the
-- name it had in its home.
CREATE TABLE hearth_detached_children (
    child_hash text PRIMARY KEY,
    name       text NOT NULL
);
