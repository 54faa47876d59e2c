-- The journal of administrative changes (users, groups, policies, grants, roles, keys, tokens):
-- written in the transaction of the change itself, kept until a server has sealed it into its
-- audit log (recorded_at), and kept after that too (store/journal.rs). Every write holds the
-- store's write lock, so ids grow in commit order.
CREATE TABLE admin_changes (
    id            BIGSERIAL PRIMARY KEY,
    changed_at    BIGINT  NOT NULL,
    actor         TEXT    NOT NULL,
    action        TEXT    NOT NULL,
    target        TEXT    NOT NULL,
    before_state  TEXT,
    after_state   TEXT,
    recorded_at   BIGINT
);
CREATE INDEX admin_changes_unrecorded ON admin_changes (id) WHERE recorded_at IS NULL;
