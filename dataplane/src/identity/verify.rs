//! The certificate verifiers rustls calls in a handshake: webpki's chain
//! verification, then the X509-SVID rules and the accepted identities.
//!
//! - [`SvidClientVerifier`]: a listener's `client_ca`: the client's chain
//!   to the anchors, then the SVID rules and the listener's trust domains.
//! - [`SvidServerVerifier`]: a cluster's `identities`: the upstream's chain
//!   to the anchors (for server use), then the SVID rules and one of the
//!   expected IDs; the host name is not what is checked.
//! - [`UncheckedServer`]: a cluster's `verify = false`: any certificate,
//!   though the handshake's signature is still checked (it proves the peer
//!   holds the key of the certificate it sent).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, OtherError, RootCertStore,
    SignatureScheme,
};

use super::svid::{check_svid, in_trust_domains, SvidError};

/// A rustls error for a certificate that breaks the SVID rules or is not
/// one this side accepts.
fn refused(why: SvidError) -> Error {
    Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(why))))
}

/// A listener's verifier of client certificates.
#[derive(Debug)]
pub struct SvidClientVerifier {
    chain: Arc<dyn ClientCertVerifier>,
    trust_domains: Box<[Box<str>]>,
}

impl SvidClientVerifier {
    /// Verifies with `chain` (webpki, from the listener's `client_ca`),
    /// then the SVID rules, accepting IDs in `trust_domains` (any when
    /// empty).
    pub fn new(chain: Arc<dyn ClientCertVerifier>, trust_domains: Box<[Box<str>]>) -> Self {
        Self {
            chain,
            trust_domains,
        }
    }
}

impl ClientCertVerifier for SvidClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.chain.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.chain.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .chain
            .verify_client_cert(end_entity, intermediates, now)?;
        let id = check_svid(end_entity).map_err(refused)?;
        if !in_trust_domains(&id, &self.trust_domains) {
            return Err(refused(SvidError::ForeignTrustDomain { id }));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// A cluster's verifier of upstream certificates by SPIFFE ID.
#[derive(Debug)]
pub struct SvidServerVerifier {
    roots: Arc<RootCertStore>,
    identities: Box<[Box<str>]>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl SvidServerVerifier {
    /// Chains to `roots`, then one of `identities`.
    pub fn new(
        roots: Arc<RootCertStore>,
        identities: Box<[Box<str>]>,
        algorithms: WebPkiSupportedAlgorithms,
    ) -> Self {
        Self {
            roots,
            identities,
            algorithms,
        }
    }
}

/// Why an upstream's SVID is refused: its ID is not one expected.
#[derive(Debug, thiserror::Error)]
#[error("the upstream's SPIFFE ID {0:?} is not one of the cluster's identities")]
pub struct UnexpectedIdentity(pub String);

impl ServerCertVerifier for SvidServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        let id = check_svid(end_entity).map_err(refused)?;
        if !self.identities.iter().any(|want| **want == *id) {
            return Err(Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(UnexpectedIdentity(id))),
            )));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A cluster's `verify = false`: the upstream's certificate is taken as it
/// comes; only the handshake's signature is checked.
#[derive(Debug)]
pub struct UncheckedServer {
    algorithms: WebPkiSupportedAlgorithms,
}

impl UncheckedServer {
    /// Checks signatures with `algorithms`, nothing else.
    pub fn new(algorithms: WebPkiSupportedAlgorithms) -> Self {
        Self { algorithms }
    }
}

impl ServerCertVerifier for UncheckedServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
