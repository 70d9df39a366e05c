-- A child detached from its home (hearth-central child remove without
-- --erase-data) keeps its row, and so its data, with home_id NULL: no
-- home's roster, child count or edge batch sees it, and removing its
-- former home leaves it alone (the cascade follows home_id, which no
-- longer names that home). child add puts it back in a home.

ALTER TABLE children ALTER COLUMN home_id DROP NOT NULL;
