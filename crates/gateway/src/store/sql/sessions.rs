//! Browser sessions and OIDC pre-login state in the SQL both backends run. A built-in user's
//! session is a row of `sessions` (deleted with its user); a federated user's, which has no
//! `users` row, is a row of `oidc_sessions` holding the principal.

/// Implements [`SessionQueries`](crate::store::backend::SessionQueries) for the connection type `$conn`, `$sql` turning each statement's
/// text (`?` placeholders) into its backend's.
macro_rules! session_queries {
    ($conn:ty, $sql:path) => {
        const _: () = {
            use $crate::store::backend::SessionQueries;
            use $crate::store::error::StoreResult;
            use $crate::store::model::{FederatedPrincipal, LoginState, SessionOwner, SessionRecord};

            impl SessionQueries for $conn {
                async fn insert_session(&mut self, s: &SessionRecord) -> StoreResult<()> {
                    match &s.owner {
                        SessionOwner::User { user_id } => {
                            sqlx::query(
                                $sql("INSERT INTO sessions (id_sha256, user_id, created_at, expires_at, last_seen_at) \
                                 VALUES (?, ?, ?, ?, ?)"),
                            )
                            .bind(&s.id_sha256)
                            .bind(user_id)
                            .bind(s.created_at)
                            .bind(s.expires_at)
                            .bind(s.last_seen_at)
                            .execute(&mut *self)
                            .await?;
                        }
                        SessionOwner::Federated(principal) => {
                            let stored = FederatedPrincipal::of(principal)?;
                            sqlx::query(
                                $sql("INSERT INTO oidc_sessions (id_sha256, provider, principal, created_at, expires_at, last_seen_at) \
                                 VALUES (?, ?, ?, ?, ?, ?)"),
                            )
                            .bind(&s.id_sha256)
                            .bind(&stored.provider)
                            .bind(stored.to_json())
                            .bind(s.created_at)
                            .bind(s.expires_at)
                            .bind(s.last_seen_at)
                            .execute(&mut *self)
                            .await?;
                        }
                    }
                    Ok(())
                }

                async fn session(&mut self, id_sha256: &str) -> StoreResult<Option<SessionRecord>> {
                    let builtin: Option<(String, i64, i64, i64)> = sqlx::query_as(
                        $sql("SELECT user_id, created_at, expires_at, last_seen_at FROM sessions WHERE id_sha256 = ?"),
                    )
                    .bind(id_sha256)
                    .fetch_optional(&mut *self)
                    .await?;
                    if let Some((user_id, created_at, expires_at, last_seen_at)) = builtin {
                        return Ok(Some(SessionRecord {
                            id_sha256: id_sha256.to_owned(),
                            owner: SessionOwner::User { user_id },
                            created_at,
                            expires_at,
                            last_seen_at,
                        }));
                    }
                    let federated: Option<(String, i64, i64, i64)> = sqlx::query_as(
                        $sql("SELECT principal, created_at, expires_at, last_seen_at FROM oidc_sessions \
                         WHERE id_sha256 = ?"),
                    )
                    .bind(id_sha256)
                    .fetch_optional(&mut *self)
                    .await?;
                    Ok(
                        federated.and_then(|(json, created_at, expires_at, last_seen_at)| {
                            Some(SessionRecord {
                                id_sha256: id_sha256.to_owned(),
                                owner: SessionOwner::Federated(
                                    FederatedPrincipal::from_json(&json)?.principal(),
                                ),
                                created_at,
                                expires_at,
                                last_seen_at,
                            })
                        }),
                    )
                }

                async fn touch_session(&mut self, s: &SessionRecord, at: i64) -> StoreResult<()> {
                    let sql = match s.owner {
                        SessionOwner::User { .. } => {
                            "UPDATE sessions SET last_seen_at = ? WHERE id_sha256 = ? AND last_seen_at < ?"
                        }
                        SessionOwner::Federated(_) => {
                            "UPDATE oidc_sessions SET last_seen_at = ? WHERE id_sha256 = ? AND last_seen_at < ?"
                        }
                    };
                    sqlx::query($sql(sql))
                        .bind(at)
                        .bind(&s.id_sha256)
                        .bind(at)
                        .execute(&mut *self)
                        .await?;
                    Ok(())
                }

                async fn delete_session(&mut self, id_sha256: &str) -> StoreResult<bool> {
                    let mut deleted = 0;
                    for sql in [
                        "DELETE FROM sessions WHERE id_sha256 = ?",
                        "DELETE FROM oidc_sessions WHERE id_sha256 = ?",
                    ] {
                        deleted += sqlx::query($sql(sql))
                            .bind(id_sha256)
                            .execute(&mut *self)
                            .await?
                            .rows_affected();
                    }
                    Ok(deleted > 0)
                }

                async fn delete_ended_sessions(&mut self, expired_at: i64, idle_since: i64) -> StoreResult<()> {
                    for sql in [
                        "DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?",
                        "DELETE FROM oidc_sessions WHERE expires_at <= ? OR last_seen_at <= ?",
                    ] {
                        sqlx::query($sql(sql))
                            .bind(expired_at)
                            .bind(idle_since)
                            .execute(&mut *self)
                            .await?;
                    }
                    Ok(())
                }

                async fn count_live_sessions(&mut self, now: i64, idle_since: i64) -> StoreResult<i64> {
                    let mut live = 0;
                    for sql in [
                        "SELECT COUNT(*) FROM sessions WHERE expires_at > ? AND last_seen_at > ?",
                        "SELECT COUNT(*) FROM oidc_sessions WHERE expires_at > ? AND last_seen_at > ?",
                    ] {
                        let (n,): (i64,) = sqlx::query_as($sql(sql))
                            .bind(now)
                            .bind(idle_since)
                            .fetch_one(&mut *self)
                            .await?;
                        live += n;
                    }
                    Ok(live)
                }

                async fn delete_user_sessions(&mut self, user_id: &str) -> StoreResult<()> {
                    sqlx::query($sql("DELETE FROM sessions WHERE user_id = ?"))
                        .bind(user_id)
                        .execute(&mut *self)
                        .await?;
                    Ok(())
                }

                async fn insert_login(
                    &mut self,
                    id_sha256: &str,
                    login: &LoginState,
                    at: i64,
                    expires_at: i64,
                ) -> StoreResult<()> {
                    sqlx::query(
                        $sql("INSERT INTO oidc_logins (id_sha256, provider, state, nonce, pkce_verifier, next, created_at, expires_at) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                    )
                    .bind(id_sha256)
                    .bind(&login.provider)
                    .bind(&login.state)
                    .bind(&login.nonce)
                    .bind(&login.pkce_verifier)
                    .bind(&login.next)
                    .bind(at)
                    .bind(expires_at)
                    .execute(&mut *self)
                    .await?;
                    Ok(())
                }

                async fn take_login(&mut self, id_sha256: &str) -> StoreResult<Option<(LoginState, i64)>> {
                    let row: Option<(String, String, String, String, String, i64)> = sqlx::query_as(
                        $sql("DELETE FROM oidc_logins WHERE id_sha256 = ? \
                         RETURNING provider, state, nonce, pkce_verifier, next, expires_at"),
                    )
                    .bind(id_sha256)
                    .fetch_optional(&mut *self)
                    .await?;
                    Ok(row.map(
                        |(provider, state, nonce, pkce_verifier, next, expires_at)| {
                            let login = LoginState {
                                provider,
                                state,
                                nonce,
                                pkce_verifier,
                                next,
                            };
                            (login, expires_at)
                        },
                    ))
                }

                async fn delete_expired_logins(&mut self, now: i64) -> StoreResult<()> {
                    sqlx::query($sql("DELETE FROM oidc_logins WHERE expires_at <= ?"))
                        .bind(now)
                        .execute(&mut *self)
                        .await?;
                    Ok(())
                }

                async fn count_logins(&mut self) -> StoreResult<i64> {
                    let (n,): (i64,) = sqlx::query_as($sql("SELECT COUNT(*) FROM oidc_logins"))
                        .fetch_one(&mut *self)
                        .await?;
                    Ok(n)
                }
            }
        };
    };
}
pub(crate) use session_queries;
