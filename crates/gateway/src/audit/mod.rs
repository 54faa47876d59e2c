//! Stage 10, audit: one JSON line per request, chained and signed, written off the request path.
//!
//! [`AuditSink::record`] hands the record to a queue (capacity `--audit-queue-capacity`) drained
//! by a dedicated writer thread ([`writer`]), which serializes each record as one JSON line,
//! seals it into the hash chain ([`chain`]: every line carries its sequence number and a hash
//! covering it and every line before), appends it to the file and flushes whenever the queue runs
//! empty. Hashing and signing happen on that thread, never on the request path. After writing a
//! batch the writer sleeps for [`BATCH_INTERVAL`] before it drains again, so a busy gateway
//! wakes it at most once per interval instead of once per request. A quiet server therefore has
//! a record on disk within microseconds, a busy one within about [`BATCH_INTERVAL`]. The file is
//! opened in append mode with permissions 0600 and locked, so a second mlgate cannot interleave
//! its lines.
//!
//! Every `--audit-checkpoint-records` lines, after `--audit-checkpoint-interval` with lines not
//! yet signed, before moving to a new file and at shutdown, the writer adds a checkpoint signed
//! with a key derived from the master key; `mlgate audit verify` ([`verify`]) checks the chain
//! and the signatures.
//!
//! When the writer cannot keep up (slow disk) and the queue is full, `--audit-overload` says
//! what happens ([`AuditOverload`]): `drop` (the default) drops the record rather than stalling
//! requests, counts it ([`AuditSink::dropped`]), logs a warning (at most once every 10 s) and
//! writes `{"event":"audit_records_dropped","count":N,"time":…}` into the log itself as soon as
//! there is room, so a gap in the trail is visible to whoever reads it; `block` holds room for the
//! request's record before the request goes any further ([`AuditSink::reserve`]), waiting at
//! most `--audit-block-timeout`: a request that gets no room is refused (503) and never reaches
//! MLflow, so nothing happens without its record and nothing is dropped.
//!
//! Rotation: SIGHUP ([`AuditSink::reopen`]) continues in a new file at the same path (logrotate
//! renamed the old one), and `--audit-max-bytes` renames a full file to `<path>.<UTC time>`;
//! either way the old file ends with a checkpoint and the new one's first line names the last
//! hash. The path `-` writes to standard output (containers).
//!
//! Administrative changes (users, groups, policies, grants, roles, keys, tokens, whoever made
//! them: the admin CLI or an admin through MLflow's basic-auth API) are journaled in the store
//! in the change's own transaction; the server seals them into this chain as
//! `{"event":"admin_change",...}` lines ([`admin_changes`]), never dropped.

pub mod admin_changes;
pub mod chain;
pub mod explain;
pub mod record;
mod trail;
pub mod verify;
mod writer;

use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use zeroize::Zeroizing;

pub use record::{AuditDecision, AuditRecord};
pub use trail::Trail;
use writer::{Msg, Shared, Writer};

use crate::config::{
    AuditOverload, DEFAULT_AUDIT_CHECKPOINT_INTERVAL, DEFAULT_AUDIT_CHECKPOINT_RECORDS,
    DEFAULT_AUDIT_QUEUE_CAPACITY, ServeArgs,
};
use crate::listen::ParserRefusal;

/// How long the writer lets records gather after a batch. With [`DEFAULT_AUDIT_QUEUE_CAPACITY`] this
/// absorbs bursts of up to ≈ 8 million records/s before the queue is full.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(2);

/// `--audit-*` flags that contradict each other.
#[derive(Debug, thiserror::Error)]
pub enum AuditOptionsError {
    #[error("--audit-max-bytes rotates a file; it does not apply to --audit-log -")]
    RotatingStdout,
}

/// How the audit log is written (the `--audit-*` flags).
#[derive(Clone, Debug)]
pub struct AuditOptions {
    pub overload: AuditOverload,
    /// How long [`AuditOverload::Block`] waits for room.
    pub block_timeout: Duration,
    pub queue_capacity: usize,
    pub checkpoint_records: u64,
    pub checkpoint_interval: Duration,
    /// Rotate a file once it holds this many bytes.
    pub max_bytes: Option<u64>,
}

impl AuditOptions {
    /// How the audit log is written, from the `--audit-*` flags.
    pub fn from_args(args: &ServeArgs) -> Result<AuditOptions, AuditOptionsError> {
        if args.audit_max_bytes.is_some() && args.audit_log.as_deref() == Some(Path::new("-")) {
            return Err(AuditOptionsError::RotatingStdout);
        }
        Ok(AuditOptions {
            overload: args.audit_overload,
            block_timeout: args.audit_block_timeout,
            queue_capacity: args.audit_queue_capacity,
            checkpoint_records: args.audit_checkpoint_records,
            checkpoint_interval: args.audit_checkpoint_interval,
            max_bytes: args.audit_max_bytes,
        })
    }
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            overload: AuditOverload::Drop,
            block_timeout: Duration::from_secs(10),
            queue_capacity: DEFAULT_AUDIT_QUEUE_CAPACITY,
            checkpoint_records: DEFAULT_AUDIT_CHECKPOINT_RECORDS,
            checkpoint_interval: DEFAULT_AUDIT_CHECKPOINT_INTERVAL,
            max_bytes: None,
        }
    }
}

/// Where audit records go. Cheap to clone; clones share the writer.
#[derive(Clone)]
pub struct AuditSink {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    tx: Sender<Msg>,
    overload: AuditOverload,
    block_timeout: Duration,
    /// The queue's size: what is not free of it is waiting for the writer.
    capacity: usize,
    shared: Arc<Shared>,
    last_warning: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSink")
            .field("enabled", &self.inner.is_some())
            .finish_non_exhaustive()
    }
}

impl AuditSink {
    /// Opens (creating, mode 0600) the audit file for appending, continues its chain, and
    /// starts the writer thread. Creates missing parent directories. `-` means standard output.
    /// `key` signs the checkpoints ([`chain::CHECKPOINT_KEY_PURPOSE`]).
    pub fn open(path: &Path, options: AuditOptions, key: [u8; 32]) -> io::Result<AuditSink> {
        if path == Path::new("-") {
            return Ok(AuditSink::with_writer(Box::new(io::stdout()), options, key));
        }
        let (file, log_file, chain) = writer::open_file(path)?;
        Ok(AuditSink::start(
            Box::new(file),
            Some(log_file),
            chain,
            options,
            key,
        ))
    }

    /// A sink writing a new chain to any writer (standard output, tests); never rotated.
    pub fn with_writer(
        out: Box<dyn Write + Send>,
        options: AuditOptions,
        key: [u8; 32],
    ) -> AuditSink {
        AuditSink::start(out, None, chain::Chain::genesis(), options, key)
    }

    fn start(
        out: Box<dyn Write + Send>,
        file: Option<writer::LogFile>,
        chain: chain::Chain,
        options: AuditOptions,
        key: [u8; 32],
    ) -> AuditSink {
        let (tx, rx) = mpsc::channel();
        let capacity = options.queue_capacity.max(1);
        let shared = Arc::new(Shared {
            queue: Semaphore::new(capacity),
            dropped: AtomicU64::new(0),
            written: AtomicU64::new(0),
        });
        let (overload, block_timeout) = (options.overload, options.block_timeout);
        let writer = Writer::new(
            out,
            file,
            chain,
            Zeroizing::new(key),
            options,
            shared.clone(),
        );
        std::thread::Builder::new()
            .name("mlgate-audit".into())
            .spawn(move || writer.run(rx))
            .expect("spawning the audit writer thread");
        AuditSink {
            inner: Some(Arc::new(Inner {
                tx,
                overload,
                block_timeout,
                capacity,
                shared,
                last_warning: Mutex::new(None),
            })),
        }
    }

    /// A sink that discards everything (tests, or audit turned off).
    pub fn disabled() -> AuditSink {
        AuditSink { inner: None }
    }

    /// What the listener calls with each request head hyper's parser refused: it is recorded
    /// (off the listener's task, since recording may wait under [`AuditOverload::Block`]).
    pub fn parser_refusals(&self) -> impl Fn(ParserRefusal) + Clone + Send + 'static {
        let audit = self.clone();
        move |refusal| {
            let audit = audit.clone();
            tokio::spawn(async move {
                audit.record(AuditRecord::refused_by_parser(refusal)).await;
            });
        }
    }

    /// Room for a request's record, taken before the request is processed. With
    /// [`AuditOverload::Drop`] it is looked for only when the record is queued; with
    /// [`AuditOverload::Block`] it is held now, waiting at most the block timeout.
    pub async fn reserve(&self) -> Slot {
        let Some(inner) = &self.inner else {
            return Slot::Later;
        };
        if inner.overload == AuditOverload::Drop {
            return Slot::Later;
        }
        let acquired =
            tokio::time::timeout(inner.block_timeout, inner.shared.queue.acquire()).await;
        match acquired {
            Ok(Ok(permit)) => {
                // Given back by the writer when it takes the record.
                permit.forget();
                Slot::Held
            }
            // Timed out, or the writer has stopped.
            Ok(Err(_)) | Err(_) => Slot::Unavailable,
        }
    }

    /// Queues a record in the room [`AuditSink::reserve`] gave. Without room held, it never
    /// waits: the record is dropped (and counted) when the queue is full.
    pub async fn record_in(&self, slot: Slot, rec: AuditRecord) {
        let Some(inner) = &self.inner else { return };
        let queued = slot == Slot::Held
            || inner.shared.queue.try_acquire().is_ok_and(|permit| {
                permit.forget();
                true
            });
        if !queued || inner.tx.send(Msg::Record(Box::new(rec))).is_err() {
            inner.dropped_one();
        }
    }

    /// Queues a record: [`AuditSink::reserve`], then [`AuditSink::record_in`].
    pub async fn record(&self, rec: AuditRecord) {
        let slot = self.reserve().await;
        self.record_in(slot, rec).await;
    }

    /// Seals journaled administrative changes into the log and waits until they are flushed:
    /// true when they are in the log. They do not take queue room and are never dropped.
    pub async fn admin_changes(&self, changes: Vec<crate::store::AdminChange>) -> bool {
        let Some(inner) = &self.inner else {
            return false;
        };
        let (ack, written) = tokio::sync::oneshot::channel();
        if inner.tx.send(Msg::AdminChanges(changes, ack)).is_err() {
            return false;
        }
        written.await.unwrap_or(false)
    }

    /// Records dropped so far because the writer was behind (or stopped).
    pub fn dropped(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.shared.dropped.load(Ordering::Relaxed))
    }

    /// Records waiting for the writer.
    pub fn queued(&self) -> usize {
        self.inner.as_ref().map_or(0, |i| {
            i.capacity
                .saturating_sub(i.shared.queue.available_permits())
        })
    }

    /// Entries written so far.
    pub fn written(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.shared.written.load(Ordering::Relaxed))
    }

    /// SIGHUP: the file was renamed (logrotate); sign its end and continue in a new file at the
    /// same path. No effect on standard output.
    pub fn reopen(&self) {
        if let Some(inner) = &self.inner {
            let _ = inner.tx.send(Msg::Reopen);
        }
    }

    /// Waits until everything queued before this call is written and flushed. Blocking: for
    /// tests (from async code, call it in `spawn_blocking`).
    pub fn flush(&self) -> io::Result<()> {
        self.acknowledged(Msg::Flush)
    }

    /// Writes everything queued, signs it with the shutdown checkpoint and stops the writer;
    /// records after this are dropped. Blocking, like [`AuditSink::flush`].
    pub fn close(&self) -> io::Result<()> {
        self.acknowledged(Msg::Close)
    }

    fn acknowledged(&self, msg: fn(mpsc::Sender<()>) -> Msg) -> io::Result<()> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let stopped = || io::Error::other("audit writer has stopped");
        let (ack_tx, ack_rx) = mpsc::channel();
        inner.tx.send(msg(ack_tx)).map_err(|_| stopped())?;
        ack_rx.recv().map_err(|_| stopped())
    }
}

/// Room in the audit queue for one record ([`AuditSink::reserve`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Held: the record will be queued whatever happens meanwhile.
    Held,
    /// Looked for when the record is queued (`--audit-overload drop`, or no audit log).
    Later,
    /// None came within the block timeout: the request must not go further.
    Unavailable,
}

impl Inner {
    /// Counts a dropped record; warns at most once every 10 s.
    fn dropped_one(&self) {
        let n = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last_warning.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            *last = Some(Instant::now());
            tracing::warn!(
                dropped_total = n,
                "the audit writer is behind or stopped; audit records are being dropped"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::AuthMethod;
    use chain::{Location, Verifier};

    const KEY: [u8; 32] = [3; 32];

    pub(crate) fn sample(i: usize) -> AuditRecord {
        AuditRecord {
            time: "2026-11-26T10:00:00Z".into(),
            request_id: format!("req-{i}"),
            source_ip: "127.0.0.1".into(),
            method: "POST".into(),
            path: "/api/2.0/mlflow/runs/create".into(),
            principal: Some("arn:aws:iam::111111111111:user/alice".into()),
            auth_method: Some(AuthMethod::Basic),
            actions: vec!["mlflow:CreateRun".into()],
            resources: vec!["arn:mlflow:us-east-1:111111111111:experiment/1".into()],
            decision: AuditDecision::Allow,
            policy: Some("admins".into()),
            statement: Some("AllowAll".into()),
            reason: None,
            status: 200,
            latency_ms: 1.5,
        }
    }

    fn options() -> AuditOptions {
        AuditOptions {
            checkpoint_records: 40,
            ..AuditOptions::default()
        }
    }

    fn parse(text: &str) -> Vec<serde_json::Value> {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn requests(lines: &[serde_json::Value]) -> Vec<&serde_json::Value> {
        lines.iter().filter(|v| v.get("event").is_none()).collect()
    }

    /// Verifies files in order as `mlgate audit verify` does.
    fn verify(files: &[&Path], open: bool) -> Result<chain::Verified, chain::Tampered> {
        let mut verifier = Verifier::new(&KEY);
        let mut end = None;
        for path in files {
            let text = std::fs::read_to_string(path).unwrap();
            let file = path.display().to_string();
            for (i, line) in text.lines().enumerate() {
                let at = Location {
                    file: file.clone(),
                    line: i as u64 + 1,
                };
                verifier.line(at.clone(), line.as_bytes())?;
                end = Some(at);
            }
        }
        verifier.finish(open, end.unwrap())
    }

    #[tokio::test]
    async fn writes_one_chained_json_line_per_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit.jsonl");
        let sink = AuditSink::open(&path, options(), KEY).unwrap();
        for i in 0..100 {
            sink.record(sample(i)).await;
        }
        sink.flush().unwrap();
        let lines = parse(&std::fs::read_to_string(&path).unwrap());
        let records = requests(&lines);
        assert_eq!(records.len(), 100);
        assert_eq!(records[42]["request_id"], "req-42");
        assert_eq!(records[42]["decision"], "allow");
        assert_eq!(records[42]["auth_method"], "basic");
        // A checkpoint after every 40 lines.
        assert_eq!(lines.len(), 102);
        assert_eq!(lines[40]["event"], "audit_checkpoint");
        assert_eq!(sink.dropped(), 0);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Open until the shutdown checkpoint.
        assert!(verify(&[&path], true).is_ok());
        assert!(verify(&[&path], false).is_err());

        // A second writer is refused; after a restart the chain goes on in the same file.
        assert!(AuditSink::open(&path, options(), KEY).is_err());
        sink.close().unwrap();
        drop(sink);
        let sink = AuditSink::open(&path, options(), KEY).unwrap();
        sink.record(sample(100)).await;
        sink.close().unwrap();
        let lines = parse(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(requests(&lines).len(), 101);
        assert_eq!(
            lines[103]["seq"], 104,
            "numbering goes on after the restart"
        );
        let verified = verify(&[&path], false).unwrap();
        assert_eq!(verified.lines, 105);
    }

    #[tokio::test]
    async fn size_rotation_and_reopen_continue_the_chain_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let sink = AuditSink::open(
            &path,
            AuditOptions {
                max_bytes: Some(4096),
                ..options()
            },
            KEY,
        )
        .unwrap();
        for i in 0..40 {
            sink.record(sample(i)).await;
            sink.flush().unwrap();
        }
        // logrotate's way: rename, then SIGHUP.
        let renamed = dir.path().join("audit.log.zz-renamed");
        std::fs::rename(&path, &renamed).unwrap();
        sink.record(sample(40)).await;
        sink.reopen();
        sink.record(sample(41)).await;
        // A SIGHUP with nothing renamed keeps the file.
        sink.reopen();
        sink.close().unwrap();

        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p != &path)
            .collect();
        files.sort();
        assert!(files.len() >= 3, "{files:?}");
        files.push(path.clone());
        let all: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
        let verified = verify(&all, false).unwrap();
        let records: usize = files
            .iter()
            .map(|p| requests(&parse(&std::fs::read_to_string(p).unwrap())).len())
            .sum();
        assert_eq!(records, 42);
        assert!(verified.checkpoints >= 3);
        // Each rotated file ends with its checkpoint; the next one starts with `prev`.
        let renamed_lines = parse(&std::fs::read_to_string(&renamed).unwrap());
        assert_eq!(renamed_lines.last().unwrap()["reason"], "rotate");
        let current = parse(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(current[0]["prev"], renamed_lines.last().unwrap()["hash"]);
        assert_eq!(current[0]["request_id"], "req-41");
        // Out of order, it fails.
        let mut shuffled = all.clone();
        shuffled.swap(0, 1);
        assert!(verify(&shuffled, false).is_err());
    }

    /// A writer that blocks until released, to fill the queue.
    struct Gate(Arc<(Mutex<bool>, std::sync::Condvar)>, Arc<Mutex<Vec<u8>>>);
    impl Write for Gate {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let (m, cv) = &*self.0;
            let mut open = m.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            self.1.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn gated(overload: AuditOverload) -> (AuditSink, impl Fn(), Arc<Mutex<Vec<u8>>>) {
        let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = AuditSink::with_writer(
            Box::new(Gate(gate.clone(), buf.clone())),
            AuditOptions {
                overload,
                queue_capacity: 4,
                ..options()
            },
            KEY,
        );
        let release = move || {
            let (m, cv) = &*gate;
            *m.lock().unwrap() = true;
            cv.notify_all();
        };
        (sink, release, buf)
    }

    // BufWriter holds 64 KiB before touching the gate, so send enough to get past it.
    const BURST: usize = 2_000;

    #[tokio::test]
    async fn overload_drop_drops_without_waiting_and_says_so() {
        let (sink, release, buf) = gated(AuditOverload::Drop);
        let start = Instant::now();
        for i in 0..BURST {
            sink.record(sample(i)).await;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "record() waited");
        assert!(sink.dropped() > 0);
        assert_eq!(
            sink.queued(),
            4,
            "the full queue is what waits for the writer"
        );
        release();
        sink.close().unwrap();
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let lines = parse(&text);
        let reported: u64 = lines
            .iter()
            .filter(|v| v["event"] == "audit_records_dropped")
            .map(|v| v["count"].as_u64().unwrap())
            .sum();
        assert_eq!(reported, sink.dropped());
        assert_eq!(requests(&lines).len() as u64 + sink.dropped(), BURST as u64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn overload_block_waits_for_room_and_drops_nothing() {
        let (sink, release, buf) = gated(AuditOverload::Block);
        let sender = sink.clone();
        let sending = tokio::spawn(async move {
            for i in 0..BURST {
                sender.record(sample(i)).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !sending.is_finished(),
            "record() must wait while the queue is full"
        );
        release();
        tokio::time::timeout(Duration::from_secs(20), sending)
            .await
            .expect("records flow again once the writer catches up")
            .unwrap();
        sink.close().unwrap();
        assert_eq!(sink.dropped(), 0);
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let lines = parse(&text);
        assert_eq!(requests(&lines).len(), BURST);
        assert!(!text.contains("audit_records_dropped"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn block_refuses_room_after_its_timeout_and_holds_it_once_there_is_some() {
        let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let sink = AuditSink::with_writer(
            Box::new(Gate(gate.clone(), Arc::new(Mutex::new(Vec::new())))),
            AuditOptions {
                overload: AuditOverload::Block,
                block_timeout: Duration::from_millis(200),
                queue_capacity: 1,
                ..options()
            },
            KEY,
        );
        // The writer is stuck on the gate; the queue fills.
        let mut held = 0;
        while sink.reserve().await == Slot::Held {
            sink.record_in(Slot::Held, sample(held)).await;
            held += 1;
            assert!(held < 10_000, "the queue never filled");
        }
        let started = std::time::Instant::now();
        assert_eq!(sink.reserve().await, Slot::Unavailable);
        assert!(started.elapsed() >= Duration::from_millis(200));
        let (m, cv) = &*gate;
        *m.lock().unwrap() = true;
        cv.notify_all();
        assert_eq!(sink.reserve().await, Slot::Held);
        sink.record_in(Slot::Held, sample(0)).await;
        assert_eq!(sink.dropped(), 0);
        sink.close().unwrap();
    }

    #[tokio::test]
    async fn a_closed_sink_drops_and_counts() {
        let (sink, release, _) = gated(AuditOverload::Block);
        release();
        sink.close().unwrap();
        sink.record(sample(0)).await;
        assert_eq!(sink.dropped(), 1);
    }

    /// Counts the writes that reach the destination (one per flushed batch).
    struct CountingWriter(Arc<AtomicU64>);
    impl Write for CountingWriter {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn records_trickling_in_are_written_in_batches() {
        let writes = Arc::new(AtomicU64::new(0));
        let sink = AuditSink::with_writer(
            Box::new(CountingWriter(writes.clone())),
            AuditOptions {
                checkpoint_records: 1000,
                ..AuditOptions::default()
            },
            KEY,
        );
        let start = Instant::now();
        // Spaced out so that a writer woken for every record would write each one on its own.
        for i in 0..200 {
            sink.record(sample(i)).await;
            std::thread::sleep(Duration::from_micros(100));
        }
        sink.flush().unwrap();
        let elapsed = start.elapsed();
        assert_eq!(sink.written(), 200);
        let batches = writes.load(Ordering::Relaxed);
        // At most one batch per interval, plus the first record and the final flush.
        let bound = u64::try_from(elapsed.as_micros() / BATCH_INTERVAL.as_micros()).unwrap() + 2;
        assert!(
            batches <= bound,
            "{batches} writes for 200 records in {elapsed:?} (bound {bound})"
        );
    }

    #[tokio::test]
    async fn unsigned_lines_get_an_interval_checkpoint() {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new((Mutex::new(true), std::sync::Condvar::new()));
        let sink = AuditSink::with_writer(
            Box::new(Gate(gate, buf.clone())),
            AuditOptions {
                checkpoint_interval: Duration::from_millis(100),
                ..AuditOptions::default()
            },
            KEY,
        );
        sink.record(sample(0)).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        sink.flush().unwrap();
        let lines = parse(&String::from_utf8(buf.lock().unwrap().clone()).unwrap());
        assert_eq!(
            lines.len(),
            2,
            "one record, one checkpoint, nothing while idle"
        );
        assert_eq!(lines[1]["reason"], "interval");
    }

    #[tokio::test]
    async fn disabled_sink_accepts_everything() {
        let s = AuditSink::disabled();
        s.record(sample(0)).await;
        s.flush().unwrap();
        assert_eq!(s.written(), 0);
    }
}
