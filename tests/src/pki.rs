//! Certificates made fresh by each TLS test (rcgen): a CA, server leaves by
//! DNS name or address, and X509-SVID leaves by SPIFFE ID, with knobs to
//! break each SVID rule on purpose. Files go under the test's own
//! directory; nothing is shared between tests.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

/// A certificate authority whose certificate is at [`Ca::pem`].
pub struct Ca {
    cert: Certificate,
    key: KeyPair,
    /// The CA certificate's PEM file (the anchor clients trust).
    pub pem: PathBuf,
    dir: PathBuf,
}

/// A leaf's files.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The certificate's PEM file.
    pub cert: PathBuf,
    /// The private key's PEM file.
    pub key: PathBuf,
}

impl Leaf {
    /// The certificate's path as text.
    pub fn cert_str(&self) -> String {
        self.cert.to_string_lossy().into_owned()
    }

    /// The key's path as text.
    pub fn key_str(&self) -> String {
        self.key.to_string_lossy().into_owned()
    }
}

/// How an SVID leaf is made: the rules a good one keeps, each one
/// switchable to break it.
#[derive(Debug, Clone)]
pub struct Svid {
    /// The URIs in its subject alternative names (one, for a good SVID).
    pub uris: Vec<String>,
    /// `basicConstraints` CA=true.
    pub ca: bool,
    /// The key usages (digitalSignature alone, for a good SVID).
    pub key_usages: Vec<KeyUsagePurpose>,
}

impl Svid {
    /// A good SVID for `id`.
    pub fn good(id: &str) -> Self {
        Self {
            uris: vec![id.to_owned()],
            ca: false,
            key_usages: vec![KeyUsagePurpose::DigitalSignature],
        }
    }
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("pem", &self.pem)
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// A new CA writing its files under `dir` as `NAME-ca.pem` etc.
    pub fn new(dir: &Path, name: &str) -> Self {
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("ringway test CA {name}"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("the CA certificate");
        let pem = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&pem, cert.pem()).expect("the CA file");
        Self {
            cert,
            key,
            pem,
            dir: dir.to_owned(),
        }
    }

    /// The CA file's path as text.
    pub fn pem_str(&self) -> String {
        self.pem.to_string_lossy().into_owned()
    }

    /// A server leaf for `names` (DNS names or IP addresses), written as
    /// `FILE.pem` / `FILE-key.pem`.
    pub fn server(&self, file: &str, names: &[&str]) -> Leaf {
        let names = names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let mut params = CertificateParams::new(names).expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, file.to_owned());
        self.sign(file, params)
    }

    /// An SVID leaf made as `svid` says (usable by clients and servers).
    pub fn svid(&self, file: &str, svid: &Svid) -> Leaf {
        let mut params = CertificateParams::new(Vec::new()).expect("SVID params");
        params.subject_alt_names = svid
            .uris
            .iter()
            .map(|u| SanType::URI(u.as_str().try_into().expect("an IA5 URI")))
            .collect();
        params.is_ca = if svid.ca {
            IsCa::Ca(BasicConstraints::Unconstrained)
        } else {
            IsCa::ExplicitNoCa
        };
        params.key_usages = svid.key_usages.clone();
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.sign(file, params)
    }

    /// A good SVID leaf for `id`.
    pub fn workload(&self, file: &str, id: &str) -> Leaf {
        self.svid(file, &Svid::good(id))
    }

    fn sign(&self, file: &str, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().expect("a leaf key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("the leaf");
        let leaf = Leaf {
            cert: self.dir.join(format!("{file}.pem")),
            key: self.dir.join(format!("{file}-key.pem")),
        };
        std::fs::write(&leaf.cert, cert.pem()).expect("the leaf file");
        std::fs::write(&leaf.key, key.serialize_pem()).expect("the key file");
        leaf
    }
}
