//! The audit writer thread: seals each entry into the chain, writes it, signs checkpoints, and
//! moves to a new file on rotation. Everything here runs off the request path.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::chain::{Chain, CheckpointReason};
use super::{AuditOptions, AuditRecord, BATCH_INTERVAL};
use crate::store::AdminChange;

/// What the request side sends the writer.
pub(super) enum Msg {
    Record(Box<AuditRecord>),
    /// Acknowledged once everything sent before is written and flushed.
    Flush(mpsc::Sender<()>),
    /// Journaled administrative changes, never dropped; acknowledged once flushed, with
    /// whether they reached the log.
    AdminChanges(Vec<AdminChange>, tokio::sync::oneshot::Sender<bool>),
    /// Move to a new file at the same path (SIGHUP: the old one was renamed).
    Reopen,
    /// Sign with the shutdown checkpoint, flush, acknowledge and stop.
    Close(mpsc::Sender<()>),
}

/// An administrative change's line: `{"event":"admin_change", ...}` ([`AdminChange`]).
#[derive(Serialize)]
struct AdminChangeLine {
    event: &'static str,
    #[serde(flatten)]
    change: AdminChange,
}

/// The file being written, when the log is a file (not standard output or a test's writer).
pub(super) struct LogFile {
    path: PathBuf,
    /// Device and inode, to tell whether the path was renamed away.
    id: (u64, u64),
    /// Bytes in the file, for `--audit-max-bytes`; regular files only.
    size: Option<u64>,
}

/// Counters shared with [`super::AuditSink`].
pub(super) struct Shared {
    pub queue: Semaphore,
    pub dropped: AtomicU64,
    pub written: AtomicU64,
}

/// Opens `path` for appending (0600, parent directories created), locked against a second
/// writer, and finds where its chain stands.
pub(super) fn open_file(path: &Path) -> io::Result<(File, LogFile, Chain)> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    // Two writers interleaving lines would break the chain for good.
    if let Err(std::fs::TryLockError::WouldBlock) = file.try_lock() {
        return Err(io::Error::other(
            "another process is writing this audit log (each mlgate needs its own --audit-log)",
        ));
    }
    let metadata = file.metadata()?;
    // A pipe or device is written as it is: never read back nor rotated.
    let (size, chain) = if metadata.is_file() {
        (Some(metadata.len()), resume(&mut file, metadata.len())?)
    } else {
        (None, Chain::genesis())
    };
    Ok((
        file,
        LogFile {
            path: path.to_owned(),
            id: (metadata.dev(), metadata.ino()),
            size,
        },
        chain,
    ))
}

/// Longest last line looked for when resuming a chain.
const RESUME_WINDOW: u64 = 256 * 1024;

/// The chain after the file's last line; a new chain when the file is empty or its last line is
/// not chained (an older log, or a line cut by a crash), which `mlgate audit verify` will name.
fn resume(file: &mut File, len: u64) -> io::Result<Chain> {
    if len == 0 {
        return Ok(Chain::genesis());
    }
    let start = len.saturating_sub(RESUME_WINDOW);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.take(len - start).read_to_end(&mut tail)?;
    let complete = tail.ends_with(b"\n");
    let last = tail
        .strip_suffix(b"\n")
        .unwrap_or(&tail)
        .rsplit(|&b| b == b'\n')
        .next()
        .unwrap_or_default();
    match Chain::resume(last).filter(|_| complete) {
        Some(chain) => Ok(chain),
        None => {
            tracing::warn!(
                "the audit log's last line is not a complete chained line; a new chain starts"
            );
            if !complete {
                // The next line must not be glued to the cut one.
                let mut end = &*file;
                end.write_all(b"\n")?;
            }
            Ok(Chain::genesis())
        }
    }
}

/// Where a rotated file goes: `<path>.<UTC time>`, with `-<n>` if that name is taken.
fn rotated_name(path: &Path) -> PathBuf {
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ");
    let base = format!("{}.{stamp}", path.display());
    let mut candidate = PathBuf::from(&base);
    let mut n = 1;
    while candidate.exists() {
        candidate = PathBuf::from(format!("{base}-{n}"));
        n += 1;
    }
    candidate
}

pub(super) struct Writer {
    out: BufWriter<Box<dyn Write + Send>>,
    file: Option<LogFile>,
    chain: Chain,
    key: Zeroizing<[u8; 32]>,
    options: AuditOptions,
    shared: Arc<Shared>,
    /// Lines written since the last checkpoint, and when the first of them was.
    unsigned: u64,
    unsigned_since: Option<Instant>,
    reported_drops: u64,
    failing: bool,
}

const BUFFER: usize = 64 * 1024;

impl Writer {
    pub(super) fn new(
        out: Box<dyn Write + Send>,
        file: Option<LogFile>,
        chain: Chain,
        key: Zeroizing<[u8; 32]>,
        options: AuditOptions,
        shared: Arc<Shared>,
    ) -> Writer {
        Writer {
            out: BufWriter::with_capacity(BUFFER, out),
            file,
            chain,
            key,
            options,
            shared,
            unsigned: 0,
            unsigned_since: None,
            reported_drops: 0,
            failing: false,
        }
    }

    /// Runs until closed, or until every sender is gone.
    pub(super) fn run(mut self, rx: Receiver<Msg>) {
        let mut closed_by = None;
        while closed_by.is_none() {
            if self.checkpoint_due_in() == Some(Duration::ZERO) {
                self.checkpoint(CheckpointReason::Interval);
                self.flush();
            }
            let first = match self.checkpoint_due_in() {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(wait) => rx.recv_timeout(wait),
            };
            let first = match first {
                Ok(msg) => msg,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut next = Some(first);
            let mut acks = Vec::new();
            let mut change_acks = Vec::new();
            let mut taken = 0;
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Record(record) => {
                        taken += 1;
                        self.append(&*record);
                    }
                    Msg::Flush(ack) => acks.push(ack),
                    Msg::AdminChanges(changes, ack) => {
                        for change in changes {
                            self.append(&AdminChangeLine {
                                event: "admin_change",
                                change,
                            });
                        }
                        change_acks.push(ack);
                    }
                    Msg::Reopen => self.reopen(),
                    Msg::Close(ack) => {
                        closed_by = Some(ack);
                        break;
                    }
                }
                next = rx.try_recv().ok();
            }
            // Queue space is given back once the batch is taken, waking blocked requests.
            self.shared.queue.add_permits(taken);
            self.report_drops();
            if closed_by.is_some() {
                self.close();
            }
            self.flush();
            for ack in acks.into_iter().chain(closed_by.clone()) {
                let _ = ack.send(());
            }
            for ack in change_acks {
                let _ = ack.send(!self.failing);
            }
            // Let the next records gather: senders do not wake a writer that is not waiting.
            std::thread::sleep(BATCH_INTERVAL);
        }
        if closed_by.is_none() {
            self.close();
        }
    }

    /// How long until unsigned lines are due a checkpoint; `None` when everything is signed.
    fn checkpoint_due_in(&self) -> Option<Duration> {
        self.unsigned_since.map(|since| {
            self.options
                .checkpoint_interval
                .saturating_sub(since.elapsed())
        })
    }

    /// Appends one entry, then a checkpoint and a rotation when they are due.
    fn append<E: Serialize>(&mut self, entry: &E) {
        match self.chain.seal(entry) {
            Ok(line) => {
                self.write_line(&line);
                self.shared.written.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize an audit entry");
                return;
            }
        }
        self.unsigned += 1;
        self.unsigned_since.get_or_insert_with(Instant::now);
        if self.unsigned >= self.options.checkpoint_records {
            self.checkpoint(CheckpointReason::Count);
        }
        let full = self.file.as_ref().is_some_and(|f| {
            f.size
                .zip(self.options.max_bytes)
                .is_some_and(|(size, max)| size >= max)
        });
        if full {
            self.rotate_by_size();
        }
    }

    fn checkpoint(&mut self, reason: CheckpointReason) {
        let time = jiff::Timestamp::now().to_string();
        let line = self.chain.checkpoint(&self.key, &time, reason);
        self.write_line(&line);
        self.unsigned = 0;
        self.unsigned_since = None;
        // On stderr too, so that whoever collects mlgate's own log holds the chain's heads.
        tracing::info!(
            seq = self.chain.sealed(),
            checkpoint = %String::from_utf8_lossy(line.trim_ascii_end()),
            "audit checkpoint"
        );
    }

    fn report_drops(&mut self) {
        let dropped = self.shared.dropped.load(Ordering::Relaxed);
        if dropped > self.reported_drops {
            let marker = serde_json::json!({
                "event": "audit_records_dropped",
                "count": dropped - self.reported_drops,
                "time": jiff::Timestamp::now().to_string(),
            });
            self.append(&marker);
            self.reported_drops = dropped;
        }
    }

    fn write_line(&mut self, line: &[u8]) {
        match self.out.write_all(line) {
            Ok(()) => {
                self.failing = false;
                if let Some(size) = self.file.as_mut().and_then(|f| f.size.as_mut()) {
                    *size += line.len() as u64;
                }
            }
            Err(e) if !self.failing => {
                self.failing = true;
                tracing::error!(error = %e, "cannot write the audit log");
            }
            Err(_) => {}
        }
    }

    fn flush(&mut self) {
        if let Err(e) = self.out.flush() {
            self.failing = true;
            tracing::error!(error = %e, "cannot flush the audit log");
        }
    }

    /// SIGHUP: sign the end of the current file (already renamed by logrotate) and continue in
    /// a new file at the path.
    fn reopen(&mut self) {
        let Some(file) = &self.file else { return };
        let path = file.path.clone();
        // Nothing was renamed: the path is still the file being written.
        if std::fs::metadata(&path).is_ok_and(|m| (m.dev(), m.ino()) == file.id) {
            return;
        }
        self.checkpoint(CheckpointReason::Rotate);
        self.flush();
        self.switch_to(&path);
    }

    /// `--audit-max-bytes`: sign the end of the file, rename it aside, continue in a new one.
    fn rotate_by_size(&mut self) {
        let Some(path) = self.file.as_ref().map(|f| f.path.clone()) else {
            return;
        };
        self.checkpoint(CheckpointReason::Rotate);
        self.flush();
        let rotated = rotated_name(&path);
        if let Err(e) = std::fs::rename(&path, &rotated) {
            tracing::error!(error = %e, path = %path.display(), "cannot rotate the audit log; writing on without size rotation");
            if let Some(file) = &mut self.file {
                file.size = None;
            }
            return;
        }
        tracing::info!(rotated = %rotated.display(), "audit log rotated");
        self.switch_to(&path);
    }

    fn switch_to(&mut self, path: &Path) {
        match open_file(path) {
            Ok((file, log_file, _)) => {
                self.out = BufWriter::with_capacity(BUFFER, Box::new(file));
                self.file = Some(log_file);
                // The chain goes on in the new file; its first line names the last hash.
                self.chain.new_file();
            }
            Err(e) => {
                tracing::error!(error = %e, path = %path.display(), "cannot open the new audit log; writing on in the old file");
            }
        }
    }

    fn close(&mut self) {
        self.report_drops();
        self.checkpoint(CheckpointReason::Shutdown);
        self.flush();
        // Closed (and unlocked) before the close is acknowledged: a new writer may open it.
        self.out = BufWriter::new(Box::new(io::sink()));
        self.file = None;
        // Requests still waiting for queue space are refused their record, not left hanging.
        self.shared.queue.close();
    }
}
