//! The hash chain and the signed checkpoints of the audit log (pure: no I/O, no clock).
//!
//! Every line of the log is one JSON object that starts with its sequence number and ends with
//! its hash:
//!
//! ```text
//! {"seq":42,["prev":"<hex>",]<the entry's fields>,"hash":"<hex>"}
//! ```
//!
//! * `seq` counts lines, 1, 2, 3, … across files and restarts (a new chain starts again at 1).
//! * `hash` = hex(SHA-256(H ‖ B)), where H is the previous line's hash (32 raw bytes; 32 zero
//!   bytes for the first line of a new chain) and B is this line's bytes up to, not including,
//!   the `,"hash":"` that ends it. Changing any byte of a line, or of any line before it,
//!   changes its hash.
//! * `prev` (the first line of every file only) is the hex of H: it names the last line of the
//!   previous file, so a chain split over rotated files can be checked file by file, and a
//!   missing or misplaced file shows.
//!
//! A checkpoint is a line like any other with the entry
//! `"event":"audit_checkpoint","time":…,"reason":…,"signature":"<hex>"`, where the signature is
//! HMAC-SHA256 under a key derived from the master key ([`CHECKPOINT_KEY_PURPOSE`]) over
//! [`checkpoint_message`]: the checkpoint's `seq`, the hash of the line before it, its time and
//! its reason. Since that hash covers every earlier line, a valid signature vouches for all of
//! them; whoever rewrites lines before a checkpoint (recomputing the plain hashes) needs the
//! key to sign again.

use std::fmt;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The purpose string of the checkpoint signing key (`MasterKey::derive`).
pub const CHECKPOINT_KEY_PURPOSE: &str = "mlgate audit checkpoints v1";

/// The `event` of a checkpoint line.
pub const CHECKPOINT_EVENT: &str = "audit_checkpoint";

/// What ends every line, before the hex hash and `"}`.
const HASH_FIELD: &[u8] = b",\"hash\":\"";
/// `,"hash":"` + 64 hex digits + `"}`.
const HASH_SUFFIX_LEN: usize = HASH_FIELD.len() + 64 + 2;

/// The hash before the first line of a new chain.
pub const GENESIS: [u8; 32] = [0; 32];

/// Why a checkpoint was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointReason {
    /// `--audit-checkpoint-records` lines since the last one.
    Count,
    /// `--audit-checkpoint-interval` elapsed with lines not yet signed.
    Interval,
    /// The last line of a file before the log moves to a new one.
    Rotate,
    /// The last line mlgate writes before it stops: a log that ends elsewhere was cut (or
    /// mlgate is still running, or crashed).
    Shutdown,
}

impl CheckpointReason {
    fn as_str(self) -> &'static str {
        match self {
            CheckpointReason::Count => "count",
            CheckpointReason::Interval => "interval",
            CheckpointReason::Rotate => "rotate",
            CheckpointReason::Shutdown => "shutdown",
        }
    }
}

/// The bytes a checkpoint's signature covers.
pub fn checkpoint_message(
    seq: u64,
    prev: &[u8; 32],
    time: &str,
    reason: CheckpointReason,
) -> String {
    format!(
        "mlgate audit checkpoint v1\n{seq}\n{}\n{time}\n{}",
        hex::encode(prev),
        reason.as_str()
    )
}

/// HMAC-SHA256 of `message` under `key`, ready to finalize or verify.
fn signer(key: &[u8; 32], message: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message.as_bytes());
    mac
}

fn line_hash(prev: &[u8; 32], body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(body);
    h.finalize().into()
}

/// The writer's end of the chain: the next line's number and the last line's hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    next_seq: u64,
    head: [u8; 32],
    /// Whether the next line names `prev` (first line of a file).
    name_prev: bool,
}

/// A line's envelope: its number, the previous hash on a file's first line, then the entry.
#[derive(Serialize)]
struct Envelope<'a, E: Serialize> {
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    prev: Option<String>,
    #[serde(flatten)]
    entry: &'a E,
}

#[derive(Serialize)]
struct Checkpoint<'a> {
    event: &'static str,
    time: &'a str,
    reason: CheckpointReason,
    signature: String,
}

impl Chain {
    /// A new chain: its first line is number 1 and names the zero hash.
    pub fn genesis() -> Chain {
        Chain {
            next_seq: 1,
            head: GENESIS,
            name_prev: true,
        }
    }

    /// The chain continued after `last_line` (an existing file's last line, on restart), or
    /// `None` when that line is not a chained line.
    pub fn resume(last_line: &[u8]) -> Option<Chain> {
        let line = ChainedLine::parse(last_line).ok()?;
        Some(Chain {
            next_seq: line.seq.checked_add(1)?,
            head: line.hash,
            name_prev: false,
        })
    }

    /// The next line goes to a new file: it names the previous hash.
    pub fn new_file(&mut self) {
        self.name_prev = true;
    }

    /// Lines sealed so far in this chain.
    pub fn sealed(&self) -> u64 {
        self.next_seq - 1
    }

    /// The next line for `entry` (a JSON object), with its newline.
    pub fn seal<E: Serialize>(&mut self, entry: &E) -> serde_json::Result<Vec<u8>> {
        let envelope = Envelope {
            seq: self.next_seq,
            prev: self.name_prev.then(|| hex::encode(self.head)),
            entry,
        };
        let mut line = serde_json::to_vec(&envelope)?;
        // A struct serializes as an object: drop its `}` to append the hash field.
        debug_assert_eq!(line.last(), Some(&b'}'));
        line.pop();
        let hash = line_hash(&self.head, &line);
        line.extend_from_slice(HASH_FIELD);
        line.extend_from_slice(hex::encode(hash).as_bytes());
        line.extend_from_slice(b"\"}\n");
        self.head = hash;
        self.next_seq += 1;
        self.name_prev = false;
        Ok(line)
    }

    /// A checkpoint line signing everything up to here.
    pub fn checkpoint(&mut self, key: &[u8; 32], time: &str, reason: CheckpointReason) -> Vec<u8> {
        let message = checkpoint_message(self.next_seq, &self.head, time, reason);
        let entry = Checkpoint {
            event: CHECKPOINT_EVENT,
            time,
            reason,
            signature: hex::encode(signer(key, &message).finalize().into_bytes()),
        };
        self.seal(&entry)
            .expect("a checkpoint is plain strings and always serializes")
    }
}

/// What a line says about its place in the chain.
#[derive(Debug)]
struct ChainedLine {
    seq: u64,
    prev: Option<[u8; 32]>,
    /// The stored hash.
    hash: [u8; 32],
    /// The bytes the hash covers.
    body_len: usize,
    checkpoint: Option<CheckpointFields>,
}

#[derive(Debug, Deserialize)]
struct CheckpointFields {
    time: String,
    reason: CheckpointReason,
    signature: String,
}

#[derive(Deserialize)]
struct LineFields {
    seq: u64,
    prev: Option<String>,
    event: Option<String>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

fn decode_hash(text: &[u8]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    // Lowercase only, so that a line has exactly one spelling of its hash.
    if text.iter().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

impl ChainedLine {
    fn parse(line: &[u8]) -> Result<ChainedLine, Problem> {
        let not_chained = || Problem::NotChained;
        let body_len = line
            .len()
            .checked_sub(HASH_SUFFIX_LEN)
            .ok_or_else(not_chained)?;
        let suffix = &line[body_len..];
        if !suffix.starts_with(HASH_FIELD) || !suffix.ends_with(b"\"}") {
            return Err(not_chained());
        }
        let hash = decode_hash(&suffix[HASH_FIELD.len()..HASH_FIELD.len() + 64])
            .ok_or_else(not_chained)?;
        let fields: LineFields = serde_json::from_slice(line).map_err(|_| not_chained())?;
        let prev = match fields.prev {
            Some(p) => Some(decode_hash(p.as_bytes()).ok_or_else(not_chained)?),
            None => None,
        };
        let checkpoint = if fields.event.as_deref() == Some(CHECKPOINT_EVENT) {
            let value = serde_json::Value::Object(fields.rest);
            Some(serde_json::from_value(value).map_err(|_| Problem::BadCheckpoint)?)
        } else {
            None
        };
        Ok(ChainedLine {
            seq: fields.seq,
            prev,
            hash,
            body_len,
            checkpoint,
        })
    }
}

/// Where a line is: a file (as named on the command line) and its 1-based line number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// What is wrong with a line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("not a line of a chained audit log (no seq, or no hash at its end)")]
    NotChained,
    #[error("a checkpoint without its time, reason or signature")]
    BadCheckpoint,
    #[error(
        "the chain's beginning is missing: this line continues a previous line that was not \
         given (give every file, oldest first)"
    )]
    MissingStart,
    #[error(
        "line number {found} where {expected} was expected: a line was removed, inserted or \
         moved here"
    )]
    Sequence { expected: u64, found: u64 },
    #[error(
        "this file does not continue the previous one (its first line names another previous \
         hash): a file is missing, or the files are out of order"
    )]
    FileOutOfOrder,
    #[error(
        "a new chain starts here, but the line before is not a shutdown checkpoint: lines were \
         removed or inserted"
    )]
    UnexpectedRestart,
    #[error("the line's hash does not match its content: the line was altered")]
    Altered,
    #[error(
        "the checkpoint's signature is wrong: the lines before it were rewritten, or the master \
         key is not the one the log was written with"
    )]
    BadSignature,
    #[error(
        "{count} line(s) from here on are not covered by a checkpoint: lines after them were cut \
         off, or mlgate is still running or crashed (--open accepts a log still being written)"
    )]
    UnsignedTail { count: u64 },
    #[error(
        "the log ends with a {reason:?} checkpoint, not the shutdown checkpoint: lines after it \
         may have been cut off (--open accepts a log still being written)"
    )]
    NoShutdown { reason: CheckpointReason },
    #[error("no line at all")]
    Empty,
}

/// A verification failure: the first bad line and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {problem}")]
pub struct Tampered {
    pub at: Location,
    pub problem: Problem,
}

/// What a successful verification covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub lines: u64,
    pub checkpoints: u64,
    /// Lines after the last checkpoint (only with `open`).
    pub unsigned: u64,
    pub last_checkpoint: Option<Location>,
}

impl fmt::Display for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} lines, {} checkpoints", self.lines, self.checkpoints)?;
        if let Some(at) = &self.last_checkpoint {
            write!(f, ", the last at {at}")?;
        }
        if self.unsigned > 0 {
            write!(f, "; {} line(s) after it not yet signed", self.unsigned)?;
        }
        Ok(())
    }
}

/// Checks lines in order, file after file; stops at the first bad one.
pub struct Verifier<'k> {
    key: &'k [u8; 32],
    /// The last good line's hash and number.
    head: Option<([u8; 32], u64)>,
    after_shutdown: bool,
    lines: u64,
    checkpoints: u64,
    last_checkpoint: Option<(Location, CheckpointReason)>,
    first_unsigned: Option<Location>,
    unsigned: u64,
}

impl<'k> Verifier<'k> {
    pub fn new(key: &'k [u8; 32]) -> Verifier<'k> {
        Verifier {
            key,
            head: None,
            after_shutdown: false,
            lines: 0,
            checkpoints: 0,
            last_checkpoint: None,
            first_unsigned: None,
            unsigned: 0,
        }
    }

    /// Checks the next line (without its newline).
    pub fn line(&mut self, at: Location, bytes: &[u8]) -> Result<(), Tampered> {
        let fail = |problem| Tampered {
            at: at.clone(),
            problem,
        };
        let line = ChainedLine::parse(bytes).map_err(fail)?;
        let prev = match (line.prev, self.head) {
            (Some(GENESIS), Some(_)) if line.seq == 1 => {
                if !self.after_shutdown {
                    return Err(fail(Problem::UnexpectedRestart));
                }
                GENESIS
            }
            (prev, Some((head, last_seq))) => {
                let expected = last_seq + 1;
                if line.seq != expected {
                    return Err(fail(Problem::Sequence {
                        expected,
                        found: line.seq,
                    }));
                }
                if prev.is_some_and(|p| p != head) {
                    return Err(fail(Problem::FileOutOfOrder));
                }
                head
            }
            // The first line given: it must say what it follows.
            (Some(prev), None) => prev,
            (None, None) => return Err(fail(Problem::MissingStart)),
        };
        if line_hash(&prev, &bytes[..line.body_len]) != line.hash {
            return Err(fail(Problem::Altered));
        }
        self.after_shutdown = false;
        if let Some(cp) = &line.checkpoint {
            let message = checkpoint_message(line.seq, &prev, &cp.time, cp.reason);
            let good = hex::decode(&cp.signature)
                .is_ok_and(|given| signer(self.key, &message).verify_slice(&given).is_ok());
            if !good {
                return Err(fail(Problem::BadSignature));
            }
            self.checkpoints += 1;
            self.after_shutdown = cp.reason == CheckpointReason::Shutdown;
            self.last_checkpoint = Some((at, cp.reason));
            self.first_unsigned = None;
            self.unsigned = 0;
        } else {
            self.first_unsigned.get_or_insert(at);
            self.unsigned += 1;
        }
        self.head = Some((line.hash, line.seq));
        self.lines += 1;
        Ok(())
    }

    /// After the last line: a closed log ends with the shutdown checkpoint; an `open` one (still
    /// being written) may end with lines no checkpoint covers yet.
    pub fn finish(self, open: bool, end: Location) -> Result<Verified, Tampered> {
        if self.lines == 0 {
            return Err(Tampered {
                at: end,
                problem: Problem::Empty,
            });
        }
        if !open {
            if let Some(at) = self.first_unsigned {
                return Err(Tampered {
                    at,
                    problem: Problem::UnsignedTail {
                        count: self.unsigned,
                    },
                });
            }
            if let Some((at, reason)) = &self.last_checkpoint
                && *reason != CheckpointReason::Shutdown
            {
                return Err(Tampered {
                    at: at.clone(),
                    problem: Problem::NoShutdown { reason: *reason },
                });
            }
        }
        Ok(Verified {
            lines: self.lines,
            checkpoints: self.checkpoints,
            unsigned: self.unsigned,
            last_checkpoint: self.last_checkpoint.map(|(at, _)| at),
        })
    }
}

#[cfg(test)]
mod tests;
