-- The change counter: every committed change to the store adds one, and a running server that
-- sees the number move drops its caches (store/changes.rs). One row.
CREATE TABLE store_changes (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  BIGINT NOT NULL
);
INSERT INTO store_changes (id, version) VALUES (1, 0);
