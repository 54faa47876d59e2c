-- mlgate identity store, schema 3: OpenID Connect browser sign-in (issue 4).
--
-- Federated users are not stored anywhere: their principal comes from the provider's ID token at
-- sign-in (user claim, mapped groups) and lives in the session row until it ends. Same portable
-- SQL subset as schema 1. Secrets are never stored: ids are hex SHA-256 digests of cookie values.

-- Pre-login state of the authorization code flow, tied to the browser by the `mlgate_oidc`
-- cookie (its SHA-256 is the key). Single use, 10 minutes.
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

-- Browser sessions of federated users; the cookie is the same as for built-in users.
CREATE TABLE oidc_sessions (
    id_sha256     TEXT PRIMARY KEY,         -- hex SHA-256 of the cookie value
    provider      TEXT NOT NULL,            -- the issuer's configured name
    principal     TEXT NOT NULL,            -- JSON: account, name, groups, tags at sign-in
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,          -- absolute lifetime
    last_seen_at  BIGINT NOT NULL           -- for the idle timeout
);
CREATE INDEX oidc_sessions_by_expiry ON oidc_sessions (expires_at);
