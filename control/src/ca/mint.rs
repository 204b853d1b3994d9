//! Minting: the CA certificate and the X509-SVID leaves it signs, as PEM
//! text. Nothing here touches the file system.

use std::net::IpAddr;

use dataplane::spiffe::{self, SpiffeId};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;

use super::CaError;

/// How far back a certificate's validity starts: a peer whose clock is a
/// few minutes behind ours still accepts a certificate made just now.
const BACKDATE: Duration = Duration::minutes(5);

/// A certificate and its new private key, in PEM.
#[derive(Debug)]
pub struct Minted {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8, ECDSA P-256).
    pub key_pem: String,
    /// The end of its validity.
    pub not_after: OffsetDateTime,
}

/// Makes a self-signed CA for `trust_domain` (a bare, valid name), valid
/// for `days` from `now`.
///
/// The CA may sign leaves but no other CA (path length 0), and its only
/// name beyond the subject is a URI SAN with the trust domain's own ID
/// (`spiffe://example.org`), which is where [`Authority::from_pem`] finds
/// the trust domain again. It carries no URI name constraint, although
/// RFC 5280 has one: rustls's verifier (webpki) refuses every URI under
/// a URI constraint, so such a CA could not be used by ringway itself.
pub fn mint_ca(trust_domain: &str, days: u32, now: OffsetDateTime) -> Result<Minted, CaError> {
    let key = KeyPair::generate().map_err(CaError::Mint)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "ringway");
    params.distinguished_name.push(
        DnType::CommonName,
        format!("ringway development CA for {trust_domain}"),
    );
    params.subject_alt_names = vec![SanType::URI(
        format!("{}{trust_domain}", spiffe::SCHEME_PREFIX)
            .try_into()
            .map_err(CaError::Mint)?,
    )];
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - BACKDATE;
    params.not_after = now + Duration::days(i64::from(days));
    let not_after = params.not_after;
    let cert = params.self_signed(&key).map_err(CaError::Mint)?;
    Ok(Minted {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_after,
    })
}

/// A CA read back from its PEM files, ready to sign.
pub struct Authority {
    /// The CA certificate as read: what issued leaves chain to.
    cert_pem: String,
    /// The same subject and key identifier, re-signed in memory: rcgen
    /// signs with a `Certificate`, and needs only those two from it.
    issuer: Certificate,
    key: KeyPair,
    trust_domain: String,
    not_after: OffsetDateTime,
}

/// What a leaf is for: its identity and the extra names it carries.
#[derive(Debug)]
pub struct LeafRequest<'a> {
    /// The workload's SPIFFE ID (its one URI SAN).
    pub id: SpiffeId<'a>,
    /// DNS names, for peers that check a host name.
    pub dns: &'a [String],
    /// IP addresses, for peers that check the address they dialled.
    pub ips: &'a [IpAddr],
    /// Validity in days, cut to the CA's own end.
    pub days: u32,
}

impl Authority {
    /// Reads a CA from its certificate and key: the certificate must be a
    /// CA valid at `now`, name a SPIFFE trust domain in a URI SAN, and go
    /// with the key. `what` names the files in errors.
    pub fn from_pem(
        cert_pem: &str,
        key_pem: &str,
        now: OffsetDateTime,
        what: &str,
    ) -> Result<Self, CaError> {
        let bad = |reason: String| CaError::BadCa {
            what: what.to_owned(),
            reason,
        };
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| bad(format!("the certificate is not PEM: {e}")))?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| bad(format!("the certificate does not parse: {e}")))?;
        let is_ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
        if !is_ca {
            return Err(bad(
                "the certificate is not a CA (basicConstraints CA:TRUE)".into(),
            ));
        }
        let trust_domain = trust_domain_of(&cert).map_err(bad)?;
        let not_after = cert.validity().not_after.to_datetime();
        if not_after <= now {
            return Err(CaError::Expired {
                what: what.to_owned(),
                not_after,
            });
        }
        let key = KeyPair::from_pem(key_pem)
            .map_err(|e| bad(format!("the private key does not parse: {e}")))?;
        if key.public_key_der() != cert.tbs_certificate.subject_pki.raw {
            return Err(bad("the private key is not the certificate's".into()));
        }
        let issuer = CertificateParams::from_ca_cert_der(&der)
            .and_then(|params| params.self_signed(&key))
            .map_err(|e| bad(format!("cannot sign with it: {e}")))?;
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            issuer,
            key,
            trust_domain,
            not_after,
        })
    }

    /// The trust domain the CA signs identities in.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The CA certificate as read (the trust bundle to hand to peers).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The end of the CA's validity, which no leaf outlives.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// Mints an X509-SVID leaf for `request` at `now`: a new P-256 key,
    /// exactly one URI SAN (the SPIFFE ID) plus any DNS and IP names,
    /// CA:FALSE, key usage digitalSignature only, extended key usage
    /// serverAuth and clientAuth (one certificate for both ends of mTLS).
    pub fn issue(&self, request: &LeafRequest<'_>, now: OffsetDateTime) -> Result<Minted, CaError> {
        let id = request.id;
        if !id.is_member_of(&self.trust_domain) {
            return Err(CaError::OutsideTrustDomain {
                id: id.as_str().to_owned(),
                id_domain: id.trust_domain().to_owned(),
                ca_domain: self.trust_domain.clone(),
            });
        }
        let mut names = Vec::with_capacity(1 + request.dns.len() + request.ips.len());
        names.push(SanType::URI(id.as_str().try_into().map_err(CaError::Mint)?));
        for name in request.dns {
            check_dns_name(name).map_err(|reason| CaError::InvalidDnsName {
                name: name.clone(),
                reason,
            })?;
            names.push(SanType::DnsName(
                name.as_str().try_into().map_err(CaError::Mint)?,
            ));
        }
        names.extend(request.ips.iter().map(|ip| SanType::IpAddress(*ip)));

        let key = KeyPair::generate().map_err(CaError::Mint)?;
        let mut params = CertificateParams::default();
        // The identity is the URI SAN; the subject only helps a person
        // reading the certificate tell where it came from.
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "ringway");
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, id.trust_domain());
        params.subject_alt_names = names;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - BACKDATE;
        params.not_after = (now + Duration::days(i64::from(request.days))).min(self.not_after);
        let not_after = params.not_after;
        let cert = params
            .signed_by(&key, &self.issuer, &self.key)
            .map_err(CaError::Mint)?;
        Ok(Minted {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_after,
        })
    }
}

impl std::fmt::Debug for Authority {
    // Without the key, which has no business in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("trust_domain", &self.trust_domain)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// The trust domain named by the CA's `spiffe://` URI SAN (exactly one).
fn trust_domain_of(cert: &x509_parser::certificate::X509Certificate<'_>) -> Result<String, String> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("its subjectAltName does not parse: {e}"))?;
    let mut uris = san.iter().flat_map(|san| {
        san.value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::URI(uri) if uri.starts_with(spiffe::SCHEME_PREFIX) => Some(*uri),
                _ => None,
            })
    });
    let (Some(uri), None) = (uris.next(), uris.next()) else {
        return Err(
            "it does not name exactly one trust domain (a spiffe:// URI SAN); \
             was it made by `ringway ca init`?"
                .into(),
        );
    };
    spiffe::parse_trust_domain(uri)
        .map(str::to_owned)
        .map_err(|e| format!("its trust domain {uri:?} is not valid: {e}"))
}

/// Checks a DNS name for a certificate: labels of letters, digits and
/// `-` (not at either end), at most 63 bytes each and 253 in all, the
/// first label `*` for a wildcard.
pub fn check_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > 253 {
        return Err(format!("it is {} bytes long, more than 253", name.len()));
    }
    let labels = name.strip_prefix("*.").unwrap_or(name);
    for label in labels.split('.') {
        if label.is_empty() {
            return Err("it has an empty label (a leading, doubled or trailing '.')".into());
        }
        if label.len() > 63 {
            return Err(format!("the label {label:?} is more than 63 bytes long"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "the label {label:?} has {c:?}: only letters, digits and '-' are allowed"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("the label {label:?} starts or ends with '-'"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use x509_parser::certificate::X509Certificate;
    use x509_parser::extensions::ParsedExtension;
    use x509_parser::oid_registry;

    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn with_der<T>(pem: &str, f: impl FnOnce(&X509Certificate<'_>) -> T) -> T {
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("a PEM certificate");
        let (rest, cert) = x509_parser::parse_x509_certificate(&der).expect("a certificate");
        assert!(rest.is_empty());
        f(&cert)
    }

    fn authority(domain: &str) -> Authority {
        let ca = mint_ca(domain, 365, now()).expect("a CA");
        Authority::from_pem(&ca.cert_pem, &ca.key_pem, now(), "test CA").expect("read back")
    }

    fn leaf(ca: &Authority, id: &str, dns: &[String], ips: &[IpAddr], days: u32) -> Minted {
        let request = LeafRequest {
            id: SpiffeId::parse(id).expect("a valid ID"),
            dns,
            ips,
            days,
        };
        ca.issue(&request, now()).expect("a leaf")
    }

    #[test]
    fn the_ca_is_a_pathlen_0_signing_ca_naming_its_trust_domain() {
        let at = now();
        let ca = mint_ca("example.org", 365, at).expect("a CA");
        with_der(&ca.cert_pem, |cert| {
            assert_eq!(cert.subject().to_string(), cert.issuer().to_string());
            let bc = cert.basic_constraints().expect("parses").expect("present");
            assert!(bc.critical && bc.value.ca);
            assert_eq!(bc.value.path_len_constraint, Some(0));
            let ku = cert.key_usage().expect("parses").expect("present");
            assert!(ku.critical);
            assert!(ku.value.key_cert_sign() && ku.value.crl_sign());
            assert!(!ku.value.digital_signature());
            assert_eq!(trust_domain_of(cert).as_deref(), Ok("example.org"));
            let validity = cert.validity();
            // X.509 keeps whole seconds.
            assert_eq!(
                validity.not_after.timestamp(),
                (at + Duration::days(365)).unix_timestamp()
            );
            assert!(validity.not_before.to_datetime() < at);
            assert_eq!(
                cert.public_key().algorithm.algorithm,
                oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY
            );
        });
        assert!(ca.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn a_leaf_is_an_x509_svid_chained_to_the_ca() {
        let ca = authority("example.org");
        let dns = ["web.default.svc".to_owned()];
        let ips = ["127.0.0.1".parse().expect("an address")];
        let minted = leaf(
            &ca,
            "spiffe://example.org/ns/default/sa/web",
            &dns,
            &ips,
            30,
        );
        let (ca_subject, ca_ski) = with_der(ca.cert_pem(), |ca| {
            let ski = ca
                .iter_extensions()
                .find_map(|e| match e.parsed_extension() {
                    ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                    _ => None,
                });
            (
                ca.subject().as_raw().to_vec(),
                ski.expect("the CA has an SKI"),
            )
        });
        with_der(&minted.cert_pem, |cert| {
            // webpki chains by the issuer's raw bytes, openssl by the key ID.
            assert_eq!(cert.issuer().as_raw(), ca_subject.as_slice());
            let aki = cert
                .iter_extensions()
                .find_map(|e| match e.parsed_extension() {
                    ParsedExtension::AuthorityKeyIdentifier(aki) => {
                        aki.key_identifier.as_ref().map(|k| k.0.to_vec())
                    }
                    _ => None,
                });
            assert_eq!(aki, Some(ca_ski));
            let san = cert
                .subject_alternative_name()
                .expect("parses")
                .expect("present");
            let uris: Vec<_> = san
                .value
                .general_names
                .iter()
                .filter(|n| matches!(n, GeneralName::URI(_)))
                .collect();
            assert_eq!(
                uris,
                [&GeneralName::URI("spiffe://example.org/ns/default/sa/web")]
            );
            assert!(san
                .value
                .general_names
                .contains(&GeneralName::DNSName("web.default.svc")));
            assert!(san
                .value
                .general_names
                .contains(&GeneralName::IPAddress(&[127, 0, 0, 1])));
            let bc = cert.basic_constraints().expect("parses").expect("present");
            assert!(!bc.value.ca);
            let ku = cert.key_usage().expect("parses").expect("present");
            assert!(ku.critical);
            assert_eq!(ku.value.flags, 1, "digitalSignature alone");
            let eku = cert.extended_key_usage().expect("parses").expect("present");
            assert!(eku.value.server_auth && eku.value.client_auth);
            assert!(eku.value.other.is_empty() && !eku.value.any);
            let days = (cert.validity().not_after.to_datetime() - now()).whole_days();
            assert!((29..=30).contains(&days), "{days}");
        });
    }

    #[test]
    fn a_leaf_never_outlives_its_ca() {
        let ca = mint_ca("example.org", 2, now()).expect("a CA");
        let ca = Authority::from_pem(&ca.cert_pem, &ca.key_pem, now(), "test CA").expect("read");
        let minted = leaf(&ca, "spiffe://example.org/a", &[], &[], 30);
        // X.509 keeps whole seconds.
        assert_eq!(
            minted.not_after.unix_timestamp(),
            ca.not_after().unix_timestamp()
        );
    }

    #[test]
    fn an_id_of_another_trust_domain_is_refused() {
        let ca = authority("example.org");
        let request = LeafRequest {
            id: SpiffeId::parse("spiffe://example.com/ns/a").expect("valid"),
            dns: &[],
            ips: &[],
            days: 1,
        };
        let e = ca.issue(&request, now()).expect_err("refused");
        assert!(matches!(e, CaError::OutsideTrustDomain { .. }), "{e}");
        assert!(e.to_string().contains("example.com"), "{e}");
        assert!(e.to_string().contains("example.org"), "{e}");
    }

    #[test]
    fn a_bad_dns_name_is_refused_before_minting() {
        let ca = authority("example.org");
        let request = LeafRequest {
            id: SpiffeId::parse("spiffe://example.org/a").expect("valid"),
            dns: &["bad_name.example".to_owned()],
            ips: &[],
            days: 1,
        };
        let e = ca.issue(&request, now()).expect_err("refused");
        assert!(e.to_string().contains("bad_name.example"), "{e}");
    }

    #[test]
    fn a_ca_is_read_only_when_it_is_usable() {
        let ca = mint_ca("example.org", 365, now()).expect("a CA");
        let other = mint_ca("example.org", 365, now()).expect("another CA");
        let e =
            Authority::from_pem(&ca.cert_pem, &other.key_pem, now(), "x").expect_err("mismatch");
        assert!(e.to_string().contains("not the certificate's"), "{e}");
        let e = Authority::from_pem("junk", &ca.key_pem, now(), "x").expect_err("junk");
        assert!(e.to_string().contains("not PEM"), "{e}");
        let e = Authority::from_pem(&ca.cert_pem, "junk", now(), "x").expect_err("junk key");
        assert!(e.to_string().contains("private key"), "{e}");
        // Past its end.
        let later = now() + Duration::days(366);
        let e = Authority::from_pem(&ca.cert_pem, &ca.key_pem, later, "x").expect_err("expired");
        assert!(matches!(e, CaError::Expired { .. }), "{e}");
        // A leaf is no CA.
        let read = Authority::from_pem(&ca.cert_pem, &ca.key_pem, now(), "x").expect("read");
        let minted = leaf(&read, "spiffe://example.org/a", &[], &[], 1);
        let e = Authority::from_pem(&minted.cert_pem, &minted.key_pem, now(), "x")
            .expect_err("not a CA");
        assert!(e.to_string().contains("not a CA"), "{e}");
        // A CA made elsewhere, without a trust domain.
        let key = KeyPair::generate().expect("a key");
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let foreign = params.self_signed(&key).expect("a CA");
        let e = Authority::from_pem(&foreign.pem(), &key.serialize_pem(), now(), "x")
            .expect_err("no trust domain");
        assert!(e.to_string().contains("trust domain"), "{e}");
    }

    #[test]
    fn dns_names_are_host_names_or_wildcards() {
        for good in [
            "localhost",
            "web.default.svc",
            "*.example.com",
            "a-b.c9",
            "X.Y",
        ] {
            assert_eq!(check_dns_name(good), Ok(()), "{good}");
        }
        let long_label = format!("{}.com", "a".repeat(64));
        let long_name = ["a"; 127].join(".") + ".com";
        for bad in [
            "",
            ".example.com",
            "example.com.",
            "a..b",
            "a_b.com",
            "-a.com",
            "a-.com",
            "a.*.com",
            "*",
            "exa mple.com",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert!(check_dns_name(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
