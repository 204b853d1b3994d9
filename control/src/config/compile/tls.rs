//! A listener's `tls = { cert, key }`: the certificate chain and private
//! key read from their PEM files and checked here, on the control thread
//! (they parse, the key is the certificate's, the certificate is valid
//! now), into the `ServerConfig` every worker's handshakes use.

use std::sync::Arc;

use dataplane::table::route::ListenerTls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use toml::Spanned;

use super::Builder;
use crate::config::file::FileTls;

impl Builder<'_> {
    /// The listener's `tls` table at key path `prefix` (`listeners[i].tls`).
    pub(super) fn tls(&mut self, table: &Spanned<FileTls>, prefix: &str) -> Option<ListenerTls> {
        let file = table.get_ref();
        let mut missing = false;
        for (key, present) in [("cert", file.cert.is_some()), ("key", file.key.is_some())] {
            if !present {
                self.missing(
                    table,
                    prefix,
                    key,
                    "tls needs a PEM file for both `cert` and `key`",
                );
                missing = true;
            }
        }
        let (Some(cert), Some(key)) = (&file.cert, &file.key) else {
            return None;
        };
        if missing {
            return None;
        }
        let chain = self.check(cert, format!("{prefix}.cert"), |path| read_chain(path));
        let key_der = self.check(key, format!("{prefix}.key"), |path| {
            PrivateKeyDer::from_pem_file(path)
                .map_err(|e| format!("cannot read a private key from {path:?}: {e}"))
        });
        let (chain, key_der) = (chain?, key_der?);
        // The ring provider builds with the C compiler alone (aws-lc-rs,
        // which adds post-quantum key exchange, needs cmake).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let built = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| e.to_string())
            .and_then(|b| {
                b.with_no_client_auth()
                    .with_single_cert(chain, key_der)
                    .map_err(|e| {
                        format!(
                            "the key in {:?} does not go with the certificate in {:?}: {e}",
                            key.get_ref(),
                            cert.get_ref()
                        )
                    })
            });
        match built {
            Ok(mut config) => {
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Some(ListenerTls {
                    config: Arc::new(config),
                    cert: cert.get_ref().as_str().into(),
                    key: key.get_ref().as_str().into(),
                })
            }
            Err(reason) => {
                self.report(Some(key.span()), format!("{prefix}.key"), reason);
                None
            }
        }
    }
}

/// The certificate chain in the PEM file at `path`, leaf first, the leaf
/// valid now.
fn read_chain(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from {path:?}: {e}"))?;
    let Some(leaf) = chain.first() else {
        return Err(format!("no certificate in {path:?}"));
    };
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| format!("the first certificate in {path:?} does not parse: {e}"))?;
    let validity = parsed.validity();
    if !validity.is_valid() {
        return Err(format!(
            "the certificate in {path:?} is not valid now: valid from {} to {}",
            validity.not_before, validity.not_after
        ));
    }
    Ok(chain)
}
