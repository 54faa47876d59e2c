//! TLS for the public listener (rustls with aws-lc-rs), offering h2 and http/1.1 by ALPN. The
//! certificate and key are read again on [`TlsCertificate::reload`] (SIGHUP, or a change of
//! either file): new handshakes get the new pair, open connections keep theirs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::{CryptoProvider, aws_lc_rs};
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};

use crate::error::error_chain;

/// How often the certificate and key files are looked at for a change.
const FILE_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// Why the certificate and key cannot serve. Names the file, never its content.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate chain {}", path.display())]
    ReadChain {
        path: PathBuf,
        #[source]
        source: pem::Error,
    },
    #[error("no certificate in {}", path.display())]
    NoCertificate { path: PathBuf },
    #[error("cannot read the private key {}", path.display())]
    ReadKey {
        path: PathBuf,
        #[source]
        source: pem::Error,
    },
    #[error("TLS setup")]
    Protocols(#[source] rustls::Error),
    #[error("the certificate and key do not form a usable pair")]
    KeyPair(#[source] rustls::Error),
}

/// The served certificate and key, and where they are read from.
#[derive(Clone, Debug)]
pub struct TlsCertificate {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Arc<ArcSwap<CertifiedKey>>,
}

/// Every handshake takes the pair loaded last.
#[derive(Debug)]
struct Current(Arc<ArcSwap<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// Reads a PEM certificate chain and private key and makes the listener's acceptor, and the
/// handle that reloads them.
pub fn load_tls(cert: &Path, key: &Path) -> Result<(TlsAcceptor, TlsCertificate), TlsError> {
    // The provider is explicit so that another crate enabling rustls's `ring` feature cannot
    // leave the process without a default provider (rustls would panic at the first handshake).
    let provider = Arc::new(aws_lc_rs::default_provider());
    let first = read_pair(&provider, cert, key)?;
    let certificate = TlsCertificate {
        cert: cert.to_owned(),
        key: key.to_owned(),
        provider: Arc::clone(&provider),
        current: Arc::new(ArcSwap::from_pointee(first)),
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Protocols)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Current(Arc::clone(&certificate.current))));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), certificate))
}

impl TlsCertificate {
    /// Reads the files again; on any error the pair in use stays (a half-written renewal must
    /// not take the listener down).
    pub fn reload(&self) -> Result<(), TlsError> {
        let pair = read_pair(&self.provider, &self.cert, &self.key)?;
        self.current.store(Arc::new(pair));
        Ok(())
    }

    /// Reloads whenever either file's modification time changes (checked every 2 s).
    pub fn reload_on_change(&self) {
        let certificate = self.clone();
        tokio::spawn(async move {
            let mut seen = certificate.modified();
            loop {
                tokio::time::sleep(FILE_CHECK_INTERVAL).await;
                let now = certificate.modified();
                if now != seen {
                    seen = now;
                    certificate.reload_logged("the certificate or key file changed");
                }
            }
        });
    }

    /// Reloads and logs the outcome; `why` says what prompted it.
    pub fn reload_logged(&self, why: &str) {
        match self.reload() {
            Ok(()) => tracing::info!(why, "TLS certificate reloaded"),
            Err(error) => tracing::warn!(
                why,
                error = %error_chain(&error),
                "TLS certificate not reloaded; keeping the current one"
            ),
        }
    }

    fn modified(&self) -> [Option<SystemTime>; 2] {
        [&self.cert, &self.key].map(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())
    }
}

fn read_pair(provider: &CryptoProvider, cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::ReadChain {
            path: cert.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::ReadKey {
        path: key.to_owned(),
        source,
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(TlsError::KeyPair)
}
