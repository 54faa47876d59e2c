//! mlgate: the gateway. Each request-pipeline stage (docs/architecture.md) is one module, in
//! order:
//!
//! 1. [`listen`]       HTTP/1.1 + h2 listener, optional TLS, size limits and timeouts
//! 2. [`normalize`]    one canonical method + path; MLflow-style field reading; ambiguity → 400
//! 3. [`authenticate`] exactly one credential → a [`identity::Principal`]
//! 4. [`classify`]     route catalog lookup → action + where the resource ids are
//! 5. [`resolve`]      ids → resource ARNs (run → experiment, ...), cached
//! 6. [`authorize`]    the IAM policy decision
//! 7. [`rewrite`]      attribution of writes to the principal; searches narrowed
//! 8. [`forward`]      streaming proxy to MLflow over pooled connections; then [`effects`],
//!    what a forwarded write changes in mlgate's own state (caches, creator records)
//! 9. [`filter`]       drop unreadable items from searches; pages stay full, tokens sealed
//! 10. [`audit`]       one record per request
//!
//! [`pipeline`] wires them together in one readable place. Around it: [`store`] (users, groups,
//! policies, tokens, sessions), [`portal`] (sign-in pages under the reserved prefix),
//! [`basic_auth`] (MLflow basic-auth's REST API, answered after the authorize stage) and
//! [`admin`] (the CLI and `mlgate apply`).

pub mod admin;
pub mod audit;
pub mod authenticate;
pub mod authorize;
pub mod basic_auth;
pub mod classify;
pub mod cli;
pub mod config;
pub mod effects;
pub mod error;
pub mod filter;
pub mod forward;
pub mod identity;
pub mod listen;
pub mod normalize;
pub mod pipeline;
pub mod portal;
pub mod resolve;
pub mod rewrite;
pub mod store;
pub mod telemetry;

/// Every path mlgate serves itself lives under this prefix, which no MLflow route uses.
pub const RESERVED_PREFIX: &str = "/_mlgate";
