//! The X509-SVID rules for a leaf certificate, beyond what chain
//! verification checks: one SPIFFE ID, and a key that cannot sign other
//! certificates.

use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::spiffe::{SpiffeId, SpiffeIdError};

/// Why a leaf certificate is not an X509-SVID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SvidError {
    /// The certificate does not parse.
    #[error("the certificate does not parse")]
    Unparsable,
    /// No URI in the subject alternative names.
    #[error("the certificate has no URI subject alternative name")]
    NoUri,
    /// More than one URI: an SVID names exactly one workload.
    #[error("the certificate has {0} URI subject alternative names; an SVID has exactly one")]
    ManyUris(usize),
    /// The URI is not a workload's SPIFFE ID.
    #[error("the certificate's URI {uri:?} is not a workload SPIFFE ID: {why}")]
    BadId {
        /// The URI as written.
        uri: String,
        /// The rule it breaks.
        why: SpiffeIdError,
    },
    /// `basicConstraints` says CA.
    #[error("the certificate is a CA (basicConstraints CA=true); a leaf SVID must not be")]
    Ca,
    /// No `keyUsage`, or one without `digitalSignature`.
    #[error("the certificate's keyUsage lacks digitalSignature")]
    NoDigitalSignature,
    /// `keyUsage` lets the key sign certificates or revocation lists.
    #[error("the certificate's keyUsage has keyCertSign or cRLSign; a leaf SVID must not")]
    SignsCertificates,
    /// The ID's trust domain is not one this side accepts.
    #[error("the SPIFFE ID {id:?} is outside the accepted trust domains")]
    ForeignTrustDomain {
        /// The peer's ID.
        id: String,
    },
}

/// Checks the leaf `cert` against the X509-SVID rules; returns its SPIFFE ID.
pub fn check_svid(cert: &CertificateDer<'_>) -> Result<String, SvidError> {
    let (_, parsed) = X509Certificate::from_der(cert).map_err(|_| SvidError::Unparsable)?;
    let uris = uris(&parsed)?;
    let uri = match uris.as_slice() {
        [] => return Err(SvidError::NoUri),
        [one] => *one,
        many => return Err(SvidError::ManyUris(many.len())),
    };
    let id = SpiffeId::parse(uri).map_err(|why| SvidError::BadId {
        uri: uri.to_owned(),
        why,
    })?;
    if let Ok(Some(bc)) = parsed.basic_constraints() {
        if bc.value.ca {
            return Err(SvidError::Ca);
        }
    } else if parsed.basic_constraints().is_err() {
        return Err(SvidError::Unparsable);
    }
    match parsed.key_usage() {
        Ok(Some(ku)) => {
            if ku.value.key_cert_sign() || ku.value.crl_sign() {
                return Err(SvidError::SignsCertificates);
            }
            if !ku.value.digital_signature() {
                return Err(SvidError::NoDigitalSignature);
            }
        }
        Ok(None) => return Err(SvidError::NoDigitalSignature),
        Err(_) => return Err(SvidError::Unparsable),
    }
    Ok(id.as_str().to_owned())
}

/// The SPIFFE ID of a certificate already verified as an SVID: its one URI
/// subject alternative name.
pub fn spiffe_id_of(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = X509Certificate::from_der(cert).ok()?;
    match uris(&parsed).ok()?.as_slice() {
        [one] if one.starts_with("spiffe://") => Some((*one).to_owned()),
        _ => None,
    }
}

/// Whether `id` (a checked SPIFFE ID) is in one of `domains`; any domain
/// when `domains` is empty.
pub fn in_trust_domains(id: &str, domains: &[Box<str>]) -> bool {
    if domains.is_empty() {
        return true;
    }
    SpiffeId::parse(id).is_ok_and(|id| domains.iter().any(|d| id.is_member_of(d)))
}

/// The URIs among the certificate's subject alternative names.
fn uris<'a>(parsed: &'a X509Certificate<'_>) -> Result<Vec<&'a str>, SvidError> {
    let san = parsed
        .subject_alternative_name()
        .map_err(|_| SvidError::Unparsable)?;
    Ok(san
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::URI(uri) => Some(*uri),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}
