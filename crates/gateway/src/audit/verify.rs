//! `mlgate audit verify FILE…`: checks the chain and the checkpoint signatures of audit files.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::chain::{CHECKPOINT_KEY_PURPOSE, Location, Tampered, Verified, Verifier};
use crate::store::secrets::{MASTER_KEY_ENV, MASTER_KEY_FILE, MasterKey, SecretError};

/// `mlgate audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check audit files: every line in sequence and unaltered, every checkpoint signed with the
    /// master key, the log closed by mlgate's shutdown checkpoint. Names the first bad line.
    Verify(VerifyArgs),
    /// Find a request's record and decide it again with today's policies: the decision then
    /// and now, the statements about its action and what kept each from applying.
    Explain(super::explain::ExplainArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Audit files in the order they were written: rotated files oldest first, then the current
    /// one (`audit.log.* audit.log`).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The log is still being written: lines after the last checkpoint are checked but need
    /// not be signed yet (so a cut after them cannot be detected).
    #[arg(long)]
    pub open: bool,
}

/// Why a verification could not pass.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "no master key: set {MASTER_KEY_ENV} or --data-dir to the server's (no {} there)",
        .0.display()
    )]
    NoMasterKey(PathBuf),
    #[error("cannot load the master key")]
    MasterKey(#[source] SecretError),
    #[error("{}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The first bad line and what is wrong with it.
    #[error(transparent)]
    Tampered(#[from] Tampered),
}

/// Verifies; the text to print on success, the first bad line on failure.
pub fn run(args: VerifyArgs, data_dir: &Path) -> Result<String, VerifyError> {
    let key = checkpoint_key(data_dir)?;
    let verified = verify_files(&args.files, &key, args.open)?;
    Ok(format!("audit log verified: {verified}"))
}

/// The checkpoint key of the server's master key; never creates a master key.
fn checkpoint_key(data_dir: &Path) -> Result<[u8; 32], VerifyError> {
    let in_env = std::env::var(MASTER_KEY_ENV).is_ok_and(|k| !k.trim().is_empty());
    if !in_env && !data_dir.join(MASTER_KEY_FILE).exists() {
        return Err(VerifyError::NoMasterKey(data_dir.join(MASTER_KEY_FILE)));
    }
    let master = MasterKey::load_or_create(data_dir).map_err(VerifyError::MasterKey)?;
    Ok(master.derive(CHECKPOINT_KEY_PURPOSE))
}

fn verify_files(files: &[PathBuf], key: &[u8; 32], open: bool) -> Result<Verified, VerifyError> {
    let mut verifier = Verifier::new(key);
    let mut end = None;
    for path in files {
        let unreadable = |source| VerifyError::Read {
            path: path.clone(),
            source,
        };
        let name = path.display().to_string();
        let file = File::open(path).map_err(unreadable)?;
        let mut number = 0;
        for line in BufReader::new(file).split(b'\n') {
            let line = line.map_err(unreadable)?;
            number += 1;
            let at = Location {
                file: name.clone(),
                line: number,
            };
            verifier.line(at, &line)?;
        }
        end = Some(Location {
            file: name,
            line: number,
        });
    }
    let end = end.expect("clap requires at least one file");
    Ok(verifier.finish(open, end)?)
}
