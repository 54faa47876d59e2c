use super::*;

const KEY: [u8; 32] = [7; 32];
const TIME: &str = "2026-12-04T10:00:00Z";

/// A closed log: `records` request lines with a count checkpoint after every `every`, then
/// the shutdown checkpoint. Lines without their newline.
fn closed_log(chain: &mut Chain, records: usize, every: usize) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    for i in 0..records {
        let entry = serde_json::json!({"request_id": format!("req-{i}"), "status": 200});
        lines.push(chain.seal(&entry).unwrap());
        if (i + 1) % every == 0 {
            lines.push(chain.checkpoint(&KEY, TIME, CheckpointReason::Count));
        }
    }
    lines.push(chain.checkpoint(&KEY, TIME, CheckpointReason::Shutdown));
    lines.into_iter().map(strip_newline).collect()
}

fn strip_newline(mut line: Vec<u8>) -> Vec<u8> {
    assert_eq!(line.pop(), Some(b'\n'));
    line
}

/// Verifies files (name, lines) in order.
fn verify(files: &[(&str, &[Vec<u8>])], open: bool) -> Result<Verified, Tampered> {
    verify_with(&KEY, files, open)
}

fn verify_with(
    key: &[u8; 32],
    files: &[(&str, &[Vec<u8>])],
    open: bool,
) -> Result<Verified, Tampered> {
    let mut verifier = Verifier::new(key);
    let mut end = Location {
        file: String::new(),
        line: 0,
    };
    for (name, lines) in files {
        for (i, line) in lines.iter().enumerate() {
            end = Location {
                file: (*name).to_owned(),
                line: i as u64 + 1,
            };
            verifier.line(end.clone(), line)?;
        }
    }
    verifier.finish(open, end)
}

fn at(line: u64) -> Location {
    Location {
        file: "audit.log".into(),
        line,
    }
}

fn failure(lines: &[Vec<u8>]) -> Tampered {
    verify(&[("audit.log", lines)], false).expect_err("tampering must be detected")
}

#[test]
fn lines_are_json_with_seq_first_and_hash_last() {
    let mut chain = Chain::genesis();
    let lines = closed_log(&mut chain, 3, 2);
    let first: serde_json::Value = serde_json::from_slice(&lines[0]).unwrap();
    assert_eq!(first["seq"], 1);
    assert_eq!(first["prev"], hex::encode(GENESIS));
    assert_eq!(first["request_id"], "req-0");
    assert!(lines[0].starts_with(b"{\"seq\":1,\"prev\":\""));
    let second: serde_json::Value = serde_json::from_slice(&lines[1]).unwrap();
    assert!(
        second.get("prev").is_none(),
        "only a file's first line names prev"
    );
    // The hash is SHA-256 of the previous hash and the bytes before `,"hash":"`.
    let body = &lines[1][..lines[1].len() - HASH_SUFFIX_LEN];
    let mut h = Sha256::new();
    h.update(hex::decode(first["hash"].as_str().unwrap()).unwrap());
    h.update(body);
    assert_eq!(second["hash"], hex::encode(h.finalize()));
    let checkpoint: serde_json::Value = serde_json::from_slice(&lines[2]).unwrap();
    assert_eq!(checkpoint["event"], CHECKPOINT_EVENT);
    assert_eq!(checkpoint["reason"], "count");
    let verified = verify(&[("audit.log", &lines)], false).unwrap();
    assert_eq!(verified.lines, 5);
    assert_eq!(verified.checkpoints, 2);
    assert_eq!(verified.last_checkpoint, Some(at(5)));
}

#[test]
fn a_removed_line_is_named() {
    let mut lines = closed_log(&mut Chain::genesis(), 10, 4);
    lines.remove(2);
    let t = failure(&lines);
    assert_eq!(t.at, at(3));
    assert_eq!(
        t.problem,
        Problem::Sequence {
            expected: 3,
            found: 4
        }
    );
}

#[test]
fn an_altered_line_is_named() {
    let mut lines = closed_log(&mut Chain::genesis(), 10, 4);
    let text = String::from_utf8(lines[6].clone()).unwrap();
    lines[6] = text
        .replace("\"status\":200", "\"status\":403")
        .into_bytes();
    assert_eq!(
        failure(&lines),
        Tampered {
            at: at(7),
            problem: Problem::Altered
        }
    );
}

#[test]
fn an_inserted_line_is_named() {
    let mut lines = closed_log(&mut Chain::genesis(), 10, 4);
    let copy = lines[1].clone();
    lines.insert(5, copy);
    let t = failure(&lines);
    assert_eq!(t.at, at(6));
    assert!(matches!(t.problem, Problem::Sequence { .. }), "{t}");
}

#[test]
fn reordered_lines_are_named() {
    let mut lines = closed_log(&mut Chain::genesis(), 10, 4);
    lines.swap(7, 8);
    assert_eq!(failure(&lines).at, at(8));
}

#[test]
fn a_cut_tail_is_named_from_the_first_unsigned_line() {
    let lines = closed_log(&mut Chain::genesis(), 10, 4);
    // 10 records, checkpoints after the 4th and 8th: lines 5 and 10 are checkpoints.
    let cut = &lines[..12];
    let t = failure(cut);
    assert_eq!(t.at, at(11));
    assert_eq!(t.problem, Problem::UnsignedTail { count: 2 });
    // A log still being written may end that way.
    let verified = verify(&[("audit.log", cut)], true).unwrap();
    assert_eq!(verified.unsigned, 2);
    // Cut right after a periodic checkpoint: the shutdown checkpoint is missing.
    let t = failure(&lines[..10]);
    assert_eq!(t.at, at(10));
    assert_eq!(
        t.problem,
        Problem::NoShutdown {
            reason: CheckpointReason::Count
        }
    );
}

#[test]
fn a_rewritten_chain_fails_at_the_next_checkpoint() {
    // Whoever edits a line and recomputes every later hash cannot sign the checkpoint again.
    let mut forger = Chain::genesis();
    let mut lines = Vec::new();
    for i in 0..3 {
        let status = if i == 1 { 403 } else { 200 };
        let entry = serde_json::json!({"request_id": format!("req-{i}"), "status": status});
        lines.push(strip_newline(forger.seal(&entry).unwrap()));
    }
    lines.push(strip_newline(forger.checkpoint(
        &[8; 32],
        TIME,
        CheckpointReason::Shutdown,
    )));
    let t = failure(&lines);
    assert_eq!(
        t,
        Tampered {
            at: at(4),
            problem: Problem::BadSignature
        }
    );
    // And the same log checks out with the key it was signed with.
    assert!(verify_with(&[8; 32], &[("audit.log", &lines)], false).is_ok());
}

#[test]
fn a_checkpoint_reason_cannot_be_changed() {
    let mut lines = closed_log(&mut Chain::genesis(), 4, 2);
    let n = lines.len() - 1;
    let mut forger = Chain::resume(&lines[n - 2]).unwrap();
    lines.truncate(n - 1);
    // A periodic checkpoint passed off as the shutdown one (hash recomputed): the signature
    // covers the reason.
    let mut forged = forger.checkpoint(&KEY, TIME, CheckpointReason::Count);
    forged = String::from_utf8(forged)
        .unwrap()
        .replace("\"reason\":\"count\"", "\"reason\":\"shutdown\"")
        .into_bytes();
    let body_len = forged.len() - 1 - HASH_SUFFIX_LEN;
    let head: serde_json::Value = serde_json::from_slice(&lines[n - 2]).unwrap();
    let prev: [u8; 32] = hex::decode(head["hash"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let rehashed = format!(
        "{},\"hash\":\"{}\"}}",
        String::from_utf8(forged[..body_len].to_vec()).unwrap(),
        hex::encode(line_hash(&prev, &forged[..body_len]))
    );
    lines.push(rehashed.into_bytes());
    assert_eq!(failure(&lines).problem, Problem::BadSignature);
}

#[test]
fn the_chain_continues_across_files_in_order_only() {
    let mut chain = Chain::genesis();
    let mut first = Vec::new();
    for i in 0..3 {
        first.push(strip_newline(
            chain.seal(&serde_json::json!({"i": i})).unwrap(),
        ));
    }
    first.push(strip_newline(chain.checkpoint(
        &KEY,
        TIME,
        CheckpointReason::Rotate,
    )));
    chain.new_file();
    let second = closed_log(&mut chain, 3, 10);
    let head: serde_json::Value = serde_json::from_slice(&second[0]).unwrap();
    let last: serde_json::Value = serde_json::from_slice(&first[3]).unwrap();
    assert_eq!(
        head["prev"], last["hash"],
        "a file's first line names the last hash before it"
    );
    assert_eq!(head["seq"], 5);

    let verified = verify(&[("audit.log.1", &first), ("audit.log", &second)], false).unwrap();
    assert_eq!(verified.lines, 8);
    // The second file alone is checked from its first line's prev on.
    assert!(verify(&[("audit.log", &second)], false).is_ok());
    // Out of order, or with the first file missing a line.
    // After a shutdown a new chain may start, so the swapped files read as two runs until the
    // log ends without its shutdown checkpoint.
    let t = verify(&[("audit.log", &second), ("audit.log.1", &first)], false).unwrap_err();
    assert_eq!((t.at.file.as_str(), t.at.line), ("audit.log.1", 4));
    assert_eq!(
        t.problem,
        Problem::NoShutdown {
            reason: CheckpointReason::Rotate
        }
    );
    let t = verify(
        &[("audit.log.1", &first[..2]), ("audit.log", &second)],
        false,
    )
    .unwrap_err();
    assert_eq!((t.at.file.as_str(), t.at.line), ("audit.log", 1));
    // A file that does not start a chain nor name its prev is missing its beginning.
    assert_eq!(
        verify(&[("audit.log", &second[1..])], false)
            .unwrap_err()
            .problem,
        Problem::MissingStart
    );
}

#[test]
fn a_new_chain_may_start_only_after_a_shutdown() {
    let before = closed_log(&mut Chain::genesis(), 2, 10);
    let after = closed_log(&mut Chain::genesis(), 2, 10);
    assert!(verify(&[("a", &before), ("b", &after)], false).is_ok());
    // Without the shutdown checkpoint between them, a restart hides removed lines.
    let t = verify(&[("a", &before[..2]), ("b", &after)], false).unwrap_err();
    assert_eq!(t.problem, Problem::UnexpectedRestart);
    assert_eq!(t.at.file, "b");
}

#[test]
fn resume_continues_after_the_last_line() {
    let mut chain = Chain::genesis();
    let lines = closed_log(&mut chain, 3, 10);
    let resumed = Chain::resume(lines.last().unwrap()).unwrap();
    assert_eq!(resumed.next_seq, chain.next_seq);
    assert_eq!(resumed.head, chain.head);
    assert!(!resumed.name_prev);
    assert!(Chain::resume(b"{\"time\":\"legacy line\"}").is_none());
    assert!(Chain::resume(b"").is_none());
}

#[test]
fn garbage_and_uppercase_hashes_are_not_chained_lines() {
    let mut lines = closed_log(&mut Chain::genesis(), 2, 10);
    assert_eq!(
        verify(&[("a", &[b"not json".to_vec()])], false)
            .unwrap_err()
            .problem,
        Problem::NotChained
    );
    let upper = String::from_utf8(lines[1].clone()).unwrap();
    let cut = upper.len() - 66;
    lines[1] = format!("{}{}", &upper[..cut], upper[cut..].to_uppercase()).into_bytes();
    assert_eq!(
        failure(&lines),
        Tampered {
            at: at(2),
            problem: Problem::NotChained
        }
    );
}
