//! TLS for every ToastyFS connection (rustls, with the `ring` provider):
//! what a server presents ([`ServerTls`], from a PEM certificate chain
//! and key) and what a client trusts ([`ClientTls`], the PEM certificates
//! of a CA). A cluster runs all-TLS or all-plain: every server given a
//! certificate is reached over `https://` by clients given the CA.
//!
//! A mismatch is a clear error, not a hang: a TLS server answers a plain
//! HTTP request with a plain 400 saying so (`serve.rs`), and a client
//! whose handshake meets a plain server says that the server does not
//! speak TLS ([`describe_handshake_failure`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { path: PathBuf },
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Every certificate in a PEM file.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = rustls_pemfile::certs(&mut bytes.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Invalid {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    rustls_pemfile::private_key(&mut bytes.as_slice())
        .map_err(|e| TlsError::Invalid {
            path: path.to_owned(),
            detail: e.to_string(),
        })?
        .ok_or_else(|| TlsError::NoKey {
            path: path.to_owned(),
        })
}

/// What a client trusts: the CA that signed the cluster's certificates.
#[derive(Clone, Debug)]
pub struct ClientTls {
    pub roots: Vec<CertificateDer<'static>>,
}

impl ClientTls {
    /// Trusts the certificates in the PEM file at `ca`.
    pub fn from_ca_file(ca: &Path) -> Result<ClientTls, TlsError> {
        Ok(ClientTls {
            roots: certificates(ca)?,
        })
    }

    /// The certificates as reqwest takes them.
    pub(crate) fn reqwest_roots(&self) -> Vec<reqwest::Certificate> {
        self.roots
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der).ok())
            .collect()
    }
}

/// What a server presents.
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub config: Arc<rustls::ServerConfig>,
}

impl ServerTls {
    /// The chain in `cert` and its key in `key` (PEM files).
    pub fn from_files(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        let chain = certificates(cert)?;
        let key = private_key(key)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
            .map_err(|e: rustls::Error| TlsError::Invalid {
                path: cert.to_owned(),
                detail: e.to_string(),
            })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
        })
    }
}

/// A hint for a failed connection whose cause reads like a TLS mismatch:
/// a plain server met by a TLS client, or a certificate not signed by the
/// client's CA.
pub fn describe_handshake_failure(detail: &str) -> Option<&'static str> {
    let lower = detail.to_ascii_lowercase();
    if lower.contains("invalidcontenttype")
        || lower.contains("corrupt message")
        || lower.contains("invalid content type")
    {
        Some("the server does not speak TLS: is it started without --tls-cert, or should this client not use --tls-ca?")
    } else if lower.contains("unknownissuer")
        || lower.contains("unknown issuer")
        || lower.contains("certificate")
    {
        Some("the server's certificate is not signed by the CA in --tls-ca (or does not name this address)")
    } else {
        None
    }
}

/// A server's whole TLS setup: the certificate it presents and the CA its
/// peers' certificates chain to (it reaches them over TLS too).
#[derive(Clone, Debug)]
pub struct NodeTls {
    pub server: ServerTls,
    pub peers: ClientTls,
}

impl NodeTls {
    pub fn from_files(cert: &Path, key: &Path, ca: &Path) -> Result<NodeTls, TlsError> {
        Ok(NodeTls {
            server: ServerTls::from_files(cert, key)?,
            peers: ClientTls::from_ca_file(ca)?,
        })
    }
}
