//! The certificates of a TLS scenario, minted fresh at the start of each
//! run into its directory (`tls/`): one CA, a server certificate every
//! system presents, and a client certificate the load generator presents
//! when the scenario asks for client authentication.
//!
//! Every key is ECDSA P-256 (the leaves the issue asks for, and what every
//! system under test signs with at the same cost); the server certificate
//! names `localhost` and 127.0.0.1, and the generator asks for `localhost`
//! (sent as SNI). The client certificate is a SPIFFE X509-SVID (one
//! `spiffe://` URI SAN, not a CA, digitalSignature only), so that ringway's
//! SPIFFE verification accepts it as the peers' plain chain checks do.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

/// The name the server certificate carries and the generator asks for.
pub const SERVER_NAME: &str = "localhost";
/// The client certificate's SPIFFE ID.
pub const CLIENT_ID: &str = "spiffe://bench.ringway.test/load";

/// The PEM files of a run's certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pki {
    /// The CA certificate: what the generator trusts, and what the systems
    /// verify client certificates against.
    pub ca: PathBuf,
    /// The server certificate (leaf first, then the CA).
    pub server_cert: PathBuf,
    /// Its private key (PKCS#8).
    pub server_key: PathBuf,
    /// Certificate chain and key in one file, as HAProxy's `crt` takes it.
    pub server_bundle: PathBuf,
    /// The client certificate (leaf first, then the CA).
    pub client_cert: PathBuf,
    /// Its private key.
    pub client_key: PathBuf,
}

impl Pki {
    /// Mints a CA and its two leaves into `dir` (created if need be).
    pub fn mint(dir: &Path) -> Result<Pki, String> {
        let bad = |what: &str, e: rcgen::Error| format!("cannot mint the {what}: {e}");
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;

        let ca_key = KeyPair::generate().map_err(|e| bad("CA key", e))?;
        let mut ca_params = CertificateParams::new(Vec::new()).map_err(|e| bad("CA", e))?;
        // The leaves sit right under it: a chain of depth 2 with the root.
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "ringway-bench CA");
        let ca = ca_params.self_signed(&ca_key).map_err(|e| bad("CA", e))?;

        let server_key = KeyPair::generate().map_err(|e| bad("server key", e))?;
        let mut server = CertificateParams::new(vec![SERVER_NAME.into(), "127.0.0.1".into()])
            .map_err(|e| bad("server certificate", e))?;
        server
            .distinguished_name
            .push(DnType::CommonName, SERVER_NAME);
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = server
            .signed_by(&server_key, &ca, &ca_key)
            .map_err(|e| bad("server certificate", e))?;

        let client_key = KeyPair::generate().map_err(|e| bad("client key", e))?;
        let mut client = CertificateParams::new(Vec::new()).map_err(|e| bad("client", e))?;
        let uri = CLIENT_ID
            .try_into()
            .map_err(|e| bad("client certificate's URI", e))?;
        client.subject_alt_names = vec![SanType::URI(uri)];
        client
            .distinguished_name
            .push(DnType::CommonName, "ringway-bench load");
        client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = client
            .signed_by(&client_key, &ca, &ca_key)
            .map_err(|e| bad("client certificate", e))?;

        let write = |name: &str, text: String| -> Result<PathBuf, String> {
            let path = dir.join(name);
            fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(path)
        };
        let server_chain = format!("{}{}", server.pem(), ca.pem());
        Ok(Pki {
            ca: write("ca.pem", ca.pem())?,
            server_bundle: write(
                "server-bundle.pem",
                format!("{server_chain}{}", server_key.serialize_pem()),
            )?,
            server_cert: write("server.pem", server_chain)?,
            server_key: write("server.key", server_key.serialize_pem())?,
            client_cert: write("client.pem", format!("{}{}", client.pem(), ca.pem()))?,
            client_key: write("client.key", client_key.serialize_pem())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_files_are_pem_chains_and_keys() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let pki = Pki::mint(dir.path()).expect("minted");
        let read = |p: &Path| fs::read_to_string(p).expect("a PEM file");
        let certs = |p: &Path| read(p).matches("BEGIN CERTIFICATE").count();
        assert_eq!(certs(&pki.ca), 1);
        assert_eq!(certs(&pki.server_cert), 2, "leaf, then the CA");
        assert_eq!(certs(&pki.client_cert), 2);
        assert!(read(&pki.server_key).contains("BEGIN PRIVATE KEY"));
        let bundle = read(&pki.server_bundle);
        assert!(bundle.starts_with(&read(&pki.server_cert)));
        assert!(bundle.ends_with(&read(&pki.server_key)));
        // The generator's client accepts the CA and the client pair.
        crate::load::tls::client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)))
            .expect("a client config");
    }
}
