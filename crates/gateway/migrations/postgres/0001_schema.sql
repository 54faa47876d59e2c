-- mlgate store on PostgreSQL: the schema of the SQLite migrations 0001-0005 (migrations/sqlite)
-- in one step, plus the notification of changes. Same tables, columns and constraints, so the
-- statements in src/store/sql/ run unchanged on both.


CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,           -- 12 decimal digits, as in AWS
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    name          TEXT NOT NULL,
    password_hash TEXT,                     -- argon2id PHC string; NULL = no password sign-in
    tags          TEXT NOT NULL DEFAULT '{}', -- JSON object of string → string
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE user_groups (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE memberships (
    group_id    TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

CREATE TABLE policies (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    document    TEXT NOT NULL,              -- IAM JSON, validated by mlgate-policy when stored
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE attachments (
    policy_id   TEXT NOT NULL REFERENCES policies (id) ON DELETE CASCADE,
    user_id     TEXT REFERENCES users (id) ON DELETE CASCADE,
    group_id    TEXT REFERENCES user_groups (id) ON DELETE CASCADE,
    CHECK ((user_id IS NULL AND group_id IS NOT NULL) OR (user_id IS NOT NULL AND group_id IS NULL)),
    UNIQUE (policy_id, user_id),
    UNIQUE (policy_id, group_id)
);
CREATE INDEX attachments_by_user ON attachments (user_id);
CREATE INDEX attachments_by_group ON attachments (group_id);

CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,         -- public part of the token (mlg_<id>_<secret>)
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,            -- hex SHA-256 of the secret part
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,                   -- NULL = never
    revoked_at    BIGINT,
    last_used_at  BIGINT
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);

CREATE TABLE sessions (
    id_sha256     TEXT PRIMARY KEY,         -- hex SHA-256 of the cookie value
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,          -- absolute lifetime
    last_seen_at  BIGINT NOT NULL           -- for the idle timeout
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

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

CREATE TABLE role_attachments (
    policy_id   TEXT NOT NULL REFERENCES policies (id) ON DELETE CASCADE,
    role_id     TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (policy_id, role_id)
);
CREATE INDEX role_attachments_by_role ON role_attachments (role_id);

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

CREATE TABLE oidc_logins (
    id_sha256     TEXT PRIMARY KEY,
    provider      TEXT NOT NULL,
    state         TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,            -- useless without the code the provider gives the browser
    next          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX oidc_logins_by_expiry ON oidc_logins (expires_at);

CREATE TABLE oidc_sessions (
    id_sha256     TEXT PRIMARY KEY,         -- hex SHA-256 of the cookie value
    provider      TEXT NOT NULL,            -- the issuer's configured name
    principal     TEXT NOT NULL,            -- JSON: account, name, groups, tags at sign-in
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,          -- absolute lifetime
    last_seen_at  BIGINT NOT NULL           -- for the idle timeout
);
CREATE INDEX oidc_sessions_by_expiry ON oidc_sessions (expires_at);
CREATE TABLE resource_creators (
    resource_arn  TEXT    NOT NULL PRIMARY KEY,
    creator_name  TEXT    NOT NULL,
    creator_arn   TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);
CREATE TABLE store_changes (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  BIGINT NOT NULL
);
INSERT INTO store_changes (id, version) VALUES (1, 0);

-- Each change is announced on the channel every server LISTENs on; NOTIFY is delivered when
-- the transaction commits, and not at all when it rolls back.
CREATE FUNCTION mlgate_announce_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mlgate_changes', NEW.version::text);
    RETURN NEW;
END;
$$;
CREATE TRIGGER store_changes_announce AFTER UPDATE ON store_changes
    FOR EACH ROW EXECUTE FUNCTION mlgate_announce_change();
