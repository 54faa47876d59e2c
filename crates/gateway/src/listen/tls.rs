//! TLS for the public listener (rustls with aws-lc-rs), offering h2 and http/1.1 by ALPN.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

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

/// Reads a PEM certificate chain and private key.
pub fn load_tls(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
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
    // The provider is explicit so that another crate enabling rustls's `ring` feature cannot
    // leave the process without a default provider (rustls would panic at the first handshake).
    let mut config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Protocols)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsError::KeyPair)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
