//! A listener's certificates, chosen by the name the client asks for (SNI):
//! exact names first, then one-label wildcards (`*.example.com` answers
//! `api.example.com`, not `example.com` nor `a.b.example.com`), else the
//! default. Built on the control thread; read by rustls in each handshake.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The certificates of one listener.
#[derive(Debug)]
pub struct SniCerts {
    exact: HashMap<Box<str>, Arc<CertifiedKey>>,
    /// By the name after `*.`.
    wildcard: HashMap<Box<str>, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl SniCerts {
    /// `default` for names none of the others claim (and for clients that
    /// send no name).
    pub fn new(default: Arc<CertifiedKey>) -> Self {
        Self {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            default,
        }
    }

    /// Answers `name` (lowercase; `*.` first for a wildcard) with `key`;
    /// `false` if another certificate answers that name already.
    pub fn add(&mut self, name: &str, key: &Arc<CertifiedKey>) -> bool {
        let (map, name) = match name.strip_prefix("*.") {
            Some(rest) => (&mut self.wildcard, rest),
            None => (&mut self.exact, name),
        };
        if map.contains_key(name) {
            return false;
        }
        map.insert(name.into(), Arc::clone(key));
        true
    }

    /// The certificate for the server name `name`.
    pub fn choose(&self, name: Option<&str>) -> &Arc<CertifiedKey> {
        let Some(name) = name else {
            return &self.default;
        };
        if let Some(key) = self.exact.get(name) {
            return key;
        }
        name.split_once('.')
            .and_then(|(_, parent)| self.wildcard.get(parent))
            .unwrap_or(&self.default)
    }
}

impl ResolvesServerCert for SniCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // rustls hands the name over lowercased and checked as a DNS name.
        Some(Arc::clone(self.choose(hello.server_name())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::CertificateDer;

    #[derive(Debug)]
    struct NoKey;

    impl rustls::sign::SigningKey for NoKey {
        fn choose_scheme(
            &self,
            _offered: &[rustls::SignatureScheme],
        ) -> Option<Box<dyn rustls::sign::Signer>> {
            None
        }

        fn algorithm(&self) -> rustls::SignatureAlgorithm {
            rustls::SignatureAlgorithm::ECDSA
        }
    }

    fn key(tag: u8) -> Arc<CertifiedKey> {
        Arc::new(CertifiedKey::new(
            vec![CertificateDer::from(vec![tag])],
            Arc::new(NoKey),
        ))
    }

    fn tag(key: &CertifiedKey) -> u8 {
        key.cert[0][0]
    }

    #[test]
    fn exact_then_wildcard_then_default() {
        let mut certs = SniCerts::new(key(0));
        assert!(certs.add("api.example.com", &key(1)));
        assert!(certs.add("*.example.com", &key(2)));
        assert!(!certs.add("api.example.com", &key(3)));
        assert_eq!(tag(certs.choose(Some("api.example.com"))), 1);
        assert_eq!(tag(certs.choose(Some("www.example.com"))), 2);
        assert_eq!(tag(certs.choose(Some("example.com"))), 0);
        assert_eq!(tag(certs.choose(Some("a.b.example.com"))), 0);
        assert_eq!(tag(certs.choose(Some("other.org"))), 0);
        assert_eq!(tag(certs.choose(None)), 0);
    }
}
