//! The certificates of a TLS scenario, minted fresh at the start of each
//! run into its directory (`tls/`): one CA, a server certificate every
//! system presents, a client certificate the load generator presents when
//! the scenario asks for client authentication, and another the outbound
//! half of a sidecar pair presents to the inbound half.
//!
//! Every key is ECDSA P-256 (the leaves the issue asks for, and what every
//! system under test signs with at the same cost); the server certificate
//! names `localhost` and 127.0.0.1, and every client (the generator, an
//! outbound proxy) asks for `localhost` (sent as SNI). The client
//! certificates are SPIFFE X509-SVIDs (one `spiffe://` URI SAN, not a CA,
//! digitalSignature only), so that ringway's SPIFFE verification accepts
//! them as the peers' plain chain checks do.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

/// The name the server certificate carries and the generator asks for.
pub const SERVER_NAME: &str = "localhost";
/// The generator's client certificate's SPIFFE ID.
pub const CLIENT_ID: &str = "spiffe://bench.ringway.test/load";
/// The SPIFFE ID the outbound half of a sidecar pair presents.
pub const OUTBOUND_ID: &str = "spiffe://bench.ringway.test/outbound";

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
    /// The generator's client certificate (leaf first, then the CA).
    pub client_cert: PathBuf,
    /// Its private key.
    pub client_key: PathBuf,
    /// The outbound proxy's client certificate (leaf first, then the CA).
    pub outbound_cert: PathBuf,
    /// Its private key.
    pub outbound_key: PathBuf,
    /// Both in one file, as HAProxy's `crt` takes it.
    pub outbound_bundle: PathBuf,
}

impl Pki {
    /// Mints a CA and its three leaves into `dir` (created if need be).
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

        let client = |id: &str, name: &str| -> Result<(String, String), String> {
            let key = KeyPair::generate().map_err(|e| bad("client key", e))?;
            let mut params = CertificateParams::new(Vec::new()).map_err(|e| bad("client", e))?;
            let uri = id
                .try_into()
                .map_err(|e| bad("client certificate's URI", e))?;
            params.subject_alt_names = vec![SanType::URI(uri)];
            params.distinguished_name.push(DnType::CommonName, name);
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let cert = params
                .signed_by(&key, &ca, &ca_key)
                .map_err(|e| bad("client certificate", e))?;
            Ok((format!("{}{}", cert.pem(), ca.pem()), key.serialize_pem()))
        };
        let (client_chain, client_key) = client(CLIENT_ID, "ringway-bench load")?;
        let (outbound_chain, outbound_key) = client(OUTBOUND_ID, "ringway-bench outbound")?;

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
            client_cert: write("client.pem", client_chain)?,
            client_key: write("client.key", client_key)?,
            outbound_bundle: write(
                "outbound-bundle.pem",
                format!("{outbound_chain}{outbound_key}"),
            )?,
            outbound_cert: write("outbound.pem", outbound_chain)?,
            outbound_key: write("outbound.key", outbound_key)?,
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
        assert_eq!(certs(&pki.outbound_cert), 2);
        assert_ne!(read(&pki.client_cert), read(&pki.outbound_cert));
        assert!(read(&pki.server_key).contains("BEGIN PRIVATE KEY"));
        let bundle = read(&pki.server_bundle);
        assert!(bundle.starts_with(&read(&pki.server_cert)));
        assert!(bundle.ends_with(&read(&pki.server_key)));
        let bundle = read(&pki.outbound_bundle);
        assert!(bundle.starts_with(&read(&pki.outbound_cert)));
        assert!(bundle.ends_with(&read(&pki.outbound_key)));
        // The generator's client accepts the CA and the client pair.
        crate::load::tls::client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)))
            .expect("a client config");
    }
}
