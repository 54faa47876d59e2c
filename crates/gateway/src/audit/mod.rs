//! Stage 10, audit: one JSON line per request, written without blocking the request path.
//!
//! [`AuditSink::record`] never blocks and never fails: it hands the record to a bounded channel
//! (capacity [`CHANNEL_CAPACITY`]) drained by a dedicated writer thread, which serializes each
//! record as one JSON line, appends it to the file and flushes whenever the channel runs empty.
//! After writing a batch the writer sleeps for [`BATCH_INTERVAL`] before it drains again, so a
//! busy gateway wakes it at most once per interval instead of once per request (a sender only
//! pays for a wake-up when the writer is blocked waiting, i.e. after a quiet interval). A quiet
//! server therefore has a record on disk within microseconds, a busy one within about
//! [`BATCH_INTERVAL`]. The file is opened in append mode with permissions 0600.
//!
//! When the writer cannot keep up (slow disk) and the channel is full, the record is **dropped**
//! rather than stalling requests: availability of the gateway wins over completeness of the log.
//! Drops are counted ([`AuditSink::dropped`]), logged as a warning (at most once every 10 s), and
//! written into the audit file itself as soon as there is room, as a line
//! `{"event":"audit_records_dropped","count":N,"time":…}`, so a gap in the trail is visible to
//! whoever reads it.
//!
//! The path `-` writes to standard output (containers).

pub mod record;
mod trail;

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use record::{AuditDecision, AuditRecord};
pub use trail::Trail;

use crate::listen::ParserRefusal;

/// Records waiting for the writer before new ones are dropped.
pub const CHANNEL_CAPACITY: usize = 16_384;

/// How long the writer lets records gather after a batch. With [`CHANNEL_CAPACITY`] this
/// absorbs bursts of up to ≈ 8 million records/s before any is dropped.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(2);

enum Msg {
    Record(Box<AuditRecord>),
    Flush(mpsc::Sender<()>),
}

/// Where audit records go. Cheap to clone; clones share the writer.
#[derive(Clone)]
pub struct AuditSink {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
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
    /// Opens (creating, mode 0600) the audit file for appending and starts the writer thread.
    /// Creates missing parent directories. `-` means standard output.
    pub fn open(path: &Path) -> io::Result<AuditSink> {
        let out: Box<dyn Write + Send> = if path == Path::new("-") {
            Box::new(io::stdout())
        } else {
            if let Some(parent) = path.parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)?;
            }
            Box::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(path)?,
            )
        };
        Ok(AuditSink::with_writer(out, CHANNEL_CAPACITY))
    }

    /// A sink writing to any writer (tests, custom destinations).
    pub fn with_writer(out: Box<dyn Write + Send>, capacity: usize) -> AuditSink {
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let written = Arc::new(AtomicU64::new(0));
        let (d, w) = (dropped.clone(), written.clone());
        std::thread::Builder::new()
            .name("mlgate-audit".into())
            .spawn(move || writer(rx, BufWriter::with_capacity(64 * 1024, out), d, w))
            .expect("spawning the audit writer thread");
        AuditSink {
            inner: Some(Arc::new(Inner {
                tx,
                dropped,
                written,
                last_warning: Mutex::new(None),
            })),
        }
    }

    /// A sink that discards everything (tests, or audit turned off).
    pub fn disabled() -> AuditSink {
        AuditSink { inner: None }
    }

    /// What the listener calls with each request head hyper's parser refused: it is recorded.
    pub fn parser_refusals(&self) -> impl Fn(ParserRefusal) + Clone + Send + 'static {
        let audit = self.clone();
        move |refusal| audit.record(AuditRecord::refused_by_parser(refusal))
    }

    /// Queues a record. Never blocks; drops (and counts) the record if the writer is behind.
    pub fn record(&self, rec: AuditRecord) {
        let Some(inner) = &self.inner else { return };
        match inner.tx.try_send(Msg::Record(Box::new(rec))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let n = inner.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let mut last = inner.last_warning.lock().unwrap_or_else(|p| p.into_inner());
                if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    *last = Some(Instant::now());
                    tracing::warn!(
                        dropped_total = n,
                        "audit writer is behind; audit records are being dropped"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                inner.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::error!("audit writer has stopped; audit record dropped");
            }
        }
    }

    /// Records dropped so far because the writer was behind.
    pub fn dropped(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.dropped.load(Ordering::Relaxed))
    }

    /// Records written so far.
    pub fn written(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.written.load(Ordering::Relaxed))
    }

    /// Waits until everything queued before this call is written and flushed. Blocking: for
    /// shutdown and tests (from async code, call it in `spawn_blocking`).
    pub fn flush(&self) -> io::Result<()> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let (ack_tx, ack_rx) = mpsc::channel();
        inner
            .tx
            .send(Msg::Flush(ack_tx))
            .map_err(|_| io::Error::other("audit writer has stopped"))?;
        ack_rx
            .recv()
            .map_err(|_| io::Error::other("audit writer has stopped"))
    }
}

fn writer(
    rx: Receiver<Msg>,
    mut out: BufWriter<Box<dyn Write + Send>>,
    dropped: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
) {
    let mut reported_drops = 0u64;
    let mut failing = false;
    let mut write_line = |out: &mut BufWriter<Box<dyn Write + Send>>, line: &[u8]| {
        let r = out.write_all(line).and_then(|_| out.write_all(b"\n"));
        match r {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::error!(error = %e, "cannot write the audit log");
            }
            Err(_) => {}
        }
    };
    // Blocks until a message arrives; ends when every sender is gone.
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut acks = Vec::new();
        while let Some(msg) = next.take() {
            match msg {
                Msg::Record(rec) => match serde_json::to_vec(&rec) {
                    Ok(line) => {
                        write_line(&mut out, &line);
                        written.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => tracing::error!(error = %e, "cannot serialize an audit record"),
                },
                Msg::Flush(ack) => acks.push(ack),
            }
            next = rx.try_recv().ok();
        }
        let d = dropped.load(Ordering::Relaxed);
        if d > reported_drops {
            let line = serde_json::json!({
                "event": "audit_records_dropped",
                "count": d - reported_drops,
                "time": jiff::Timestamp::now().to_string(),
            });
            write_line(&mut out, line.to_string().as_bytes());
            reported_drops = d;
        }
        if let Err(e) = out.flush() {
            tracing::error!(error = %e, "cannot flush the audit log");
        }
        for ack in acks {
            let _ = ack.send(());
        }
        // Let the next records gather: senders do not wake a writer that is not waiting.
        std::thread::sleep(BATCH_INTERVAL);
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::AuthMethod;

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

    #[test]
    fn writes_one_json_line_per_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit.jsonl");
        let sink = AuditSink::open(&path).unwrap();
        for i in 0..100 {
            sink.record(sample(i));
        }
        sink.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 100);
        let v: serde_json::Value = serde_json::from_str(lines[42]).unwrap();
        assert_eq!(v["request_id"], "req-42");
        assert_eq!(v["decision"], "allow");
        assert_eq!(v["auth_method"], "basic");
        assert_eq!(sink.written(), 100);
        assert_eq!(sink.dropped(), 0);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        // Appends on reopen.
        drop(sink);
        let sink = AuditSink::open(&path).unwrap();
        sink.record(sample(100));
        sink.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 101);
    }

    /// A writer that blocks until released, to fill the channel.
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

    #[test]
    fn a_full_channel_drops_without_blocking_and_says_so() {
        let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let buf = Arc::new(Mutex::new(Vec::new()));
        // BufWriter holds 64 KiB before touching the gate, so send enough to get past it.
        let sink = AuditSink::with_writer(Box::new(Gate(gate.clone(), buf.clone())), 4);
        let start = Instant::now();
        for i in 0..2_000 {
            sink.record(sample(i));
        }
        assert!(start.elapsed() < Duration::from_secs(5), "record() blocked");
        assert!(sink.dropped() > 0);
        {
            let (m, cv) = &*gate;
            *m.lock().unwrap() = true;
            cv.notify_all();
        }
        sink.flush().unwrap();
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let dropped_lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["event"] == "audit_records_dropped")
            .collect();
        let reported: u64 = dropped_lines
            .iter()
            .map(|v| v["count"].as_u64().unwrap())
            .sum();
        assert_eq!(reported, sink.dropped());
        assert_eq!(sink.written() + sink.dropped(), 2_000);
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

    #[test]
    fn records_trickling_in_are_written_in_batches() {
        let writes = Arc::new(AtomicU64::new(0));
        let sink = AuditSink::with_writer(Box::new(CountingWriter(writes.clone())), 1024);
        let start = Instant::now();
        // Spaced out so that a writer woken for every record would write each one on its own.
        for i in 0..200 {
            sink.record(sample(i));
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

    #[test]
    fn disabled_sink_accepts_everything() {
        let s = AuditSink::disabled();
        s.record(sample(0));
        s.flush().unwrap();
        assert_eq!(s.written(), 0);
    }
}
