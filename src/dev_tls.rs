//! `toastyfs dev --tls`: a certificate authority made for one dev
//! directory and a certificate it signs for 127.0.0.1 and localhost,
//! which every process of the dev cluster serves with (rcgen). Kept in the
//! directory (`tls/`) and reused by later runs, so clients configured with
//! its CA keep working.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// Where a dev cluster's TLS files are.
pub struct DevTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl DevTls {
    /// The command-line flags of a metadata node, chunk server or gateway.
    pub fn node_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
            "--tls-ca".into(),
            self.ca.display().to_string(),
        ]
    }
}

/// The dev directory's CA and certificate, made on first use.
pub fn certificates(dir: &Path) -> anyhow::Result<DevTls> {
    let tls_dir = dir.join("tls");
    let files = DevTls {
        ca: tls_dir.join("ca.pem"),
        cert: tls_dir.join("server.pem"),
        key: tls_dir.join("server.key"),
    };
    if files.ca.exists() && files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    std::fs::create_dir_all(&tls_dir)?;
    let (ca_pem, cert_pem, key_pem) = generate().context("cannot make the dev certificates")?;
    write(&files.ca, &ca_pem, 0o644)?;
    write(&files.cert, &cert_pem, 0o644)?;
    write(&files.key, &key_pem, 0o600)?;
    Ok(files)
}

/// A CA, and a certificate it signs for 127.0.0.1 and localhost: the
/// PEMs of the CA certificate, the server certificate and its key.
fn generate() -> Result<(String, String, String), rcgen::Error> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ToastyFS dev CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "ToastyFS dev cluster");
    let cert = params.signed_by(&server_key, &issuer)?;
    Ok((ca_cert.pem(), cert.pem(), server_key.serialize_pem()))
}

fn write(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The made certificate loads as a server's, and the CA as a client's.
    #[test]
    fn made_certificates_load() {
        let dir = tempfile::tempdir().unwrap();
        let tls = certificates(dir.path()).unwrap();
        toastyfs_client::tls::NodeTls::from_files(&tls.cert, &tls.key, &tls.ca).unwrap();
        let again = certificates(dir.path()).unwrap();
        assert_eq!(
            std::fs::read(&again.ca).unwrap(),
            std::fs::read(&tls.ca).unwrap()
        );
    }
}
