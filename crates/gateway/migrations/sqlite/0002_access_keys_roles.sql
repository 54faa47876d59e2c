-- mlgate identity store, schema 2: roles, SigV4 access keys and STS sessions (issue 3).
--
-- Same portable subset as schema 1. Secret access keys are stored encrypted (AES-256-GCM under
-- the master key, which is never in the database: `<data-dir>/master.key` or MLGATE_MASTER_KEY);
-- session tokens are stored as hex SHA-256 digests.

CREATE TABLE roles (
    id                   TEXT PRIMARY KEY,
    account_id           TEXT NOT NULL REFERENCES accounts (id),
    name                 TEXT NOT NULL,
    trust_policy         TEXT NOT NULL,     -- IAM JSON resource policy (Principal required)
    max_session_duration BIGINT NOT NULL DEFAULT 3600,  -- seconds, 900..=43200
    description          TEXT NOT NULL DEFAULT '',
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    UNIQUE (account_id, name)
);

-- Permission policies attached to roles (attachments of schema 1 are for users and groups).
CREATE TABLE role_attachments (
    policy_id   TEXT NOT NULL REFERENCES policies (id) ON DELETE CASCADE,
    role_id     TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (policy_id, role_id)
);
CREATE INDEX role_attachments_by_role ON role_attachments (role_id);

-- Long-term access keys (AKIA...), of exactly one user or one role.
CREATE TABLE access_keys (
    id            TEXT PRIMARY KEY,         -- the access key id, AKIA + 16 chars
    user_id       TEXT REFERENCES users (id) ON DELETE CASCADE,
    role_id       TEXT REFERENCES roles (id) ON DELETE CASCADE,
    secret_enc    TEXT NOT NULL,            -- sealed secret (see store/secrets.rs)
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    CHECK ((user_id IS NULL AND role_id IS NOT NULL) OR (user_id IS NOT NULL AND role_id IS NULL))
);
CREATE INDEX access_keys_by_user ON access_keys (user_id);
CREATE INDEX access_keys_by_role ON access_keys (role_id);

-- Temporary credentials from sts:AssumeRole (ASIA...).
CREATE TABLE sts_sessions (
    access_key_id   TEXT PRIMARY KEY,       -- ASIA + 16 chars
    role_id         TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    session_name    TEXT NOT NULL,
    secret_enc      TEXT NOT NULL,          -- sealed secret access key
    token_sha256    TEXT NOT NULL,          -- hex SHA-256 of the session token
    session_policy  TEXT,                   -- optional IAM JSON that narrows the role's policies
    source_identity TEXT,
    tags            TEXT NOT NULL DEFAULT '{}', -- JSON object: session tags
    caller_arn      TEXT NOT NULL,          -- who assumed the role
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX sts_sessions_by_expiry ON sts_sessions (expires_at);
