//! The development CA behind `ringway ca`: a local certificate authority
//! for one SPIFFE trust domain, and the X509-SVID leaf certificates it
//! signs, enough to try mTLS between ringways without other tooling.
//!
//! `init` writes `ca.pem` and `ca-key.pem` into a directory; the trust
//! domain is kept in the CA certificate itself (its `spiffe://` URI SAN),
//! so there is no second file to fall out of step. `issue` reads that
//! directory, checks the SPIFFE ID (the rules of [`dataplane::spiffe`],
//! the same ones peers are held to) and that it is in the CA's trust
//! domain, and writes `cert.pem`, `key.pem` and `ca.pem` into another.
//!
//! It is a development tool: the CA key sits unencrypted in a file (mode
//! 0600), nothing is revoked, and a production mesh gets its identities
//! from its own CA (SPIRE, cert-manager, a corporate PKI).

pub mod mint;
pub mod store;

use std::path::PathBuf;

use dataplane::spiffe::SpiffeIdError;
use time::OffsetDateTime;

pub use self::store::{init, issue, Init, Initialized, Issue, Issued};

/// Where `init` writes and `issue` reads the CA unless told.
pub const DEFAULT_DIR: &str = "ringway-ca";
/// The CA certificate, in the CA directory and beside every issued leaf.
pub const CA_CERT: &str = "ca.pem";
/// The CA's private key, in the CA directory.
pub const CA_KEY: &str = "ca-key.pem";
/// An issued leaf certificate.
pub const LEAF_CERT: &str = "cert.pem";
/// An issued leaf's private key.
pub const LEAF_KEY: &str = "key.pem";

/// Why `ringway ca` could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The SPIFFE ID to issue for breaks a rule of the standard.
    #[error("invalid SPIFFE ID {id:?}: {source}")]
    InvalidId {
        /// The ID as given.
        id: String,
        /// The rule it breaks.
        source: SpiffeIdError,
    },
    /// The trust domain for a new CA is not a valid one.
    #[error("invalid trust domain {given:?}: {source}")]
    InvalidTrustDomain {
        /// The trust domain as given.
        given: String,
        /// The rule it breaks.
        source: SpiffeIdError,
    },
    /// The SPIFFE ID is valid but the CA signs for another trust domain.
    #[error(
        "{id} is in trust domain {id_domain:?}, but this CA signs identities in {ca_domain:?} only"
    )]
    OutsideTrustDomain {
        /// The ID as given.
        id: String,
        /// Its trust domain.
        id_domain: String,
        /// The CA's.
        ca_domain: String,
    },
    /// A `--dns` name that is not a host name.
    #[error("invalid DNS name {name:?}: {reason}")]
    InvalidDnsName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `init` would replace an existing CA.
    #[error(
        "a CA already exists in {dir:?} ({file} is there); pass --force to replace it \
         (certificates it issued will stop verifying against the new one)"
    )]
    Exists {
        /// The CA directory.
        dir: PathBuf,
        /// The file found there.
        file: &'static str,
    },
    /// `issue` found no CA to sign with.
    #[error(
        "no CA in {dir:?}: cannot read {file}: {source} \
         (make one with `ringway ca init --trust-domain <name> --dir {}`, or point --ca-dir at it)",
        dir.display()
    )]
    NoCa {
        /// The CA directory.
        dir: PathBuf,
        /// The file that could not be read.
        file: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The CA files are there but cannot be used.
    #[error("the CA in {what} cannot be used: {reason}")]
    BadCa {
        /// The CA directory (or a name for the CA).
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA is past its validity.
    #[error(
        "the CA in {what} expired at {}; make a new one with `ringway ca init --force` \
         and issue again",
        rfc3339(*not_after)
    )]
    Expired {
        /// The CA directory (or a name for the CA).
        what: String,
        /// The end of its validity.
        not_after: OffsetDateTime,
    },
    /// Reading or writing a file failed.
    #[error("cannot {action} {path:?}: {source}")]
    Io {
        /// What was being done (`write`, `create the directory`).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// rcgen could not make the certificate (not expected with valid input).
    #[error("cannot make the certificate: {0}")]
    Mint(rcgen::Error),
}

/// A certificate time as people and `openssl x509` read it, to the second
/// (what X.509 keeps): `2026-01-31T12:00:00Z`.
pub fn rfc3339(at: OffsetDateTime) -> String {
    humantime::format_rfc3339_seconds(at.into()).to_string()
}

impl CaError {
    /// Whether the command's input was wrong (exit status 2), rather than
    /// the files or the system (exit status 1).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::InvalidId { .. }
                | Self::InvalidTrustDomain { .. }
                | Self::OutsideTrustDomain { .. }
                | Self::InvalidDnsName { .. }
        )
    }
}
