//! TLS material: a listener's `tls = { cert, key, sni, versions, client_ca,
//! require_client_cert, trust_domains }` and a cluster's `tls = { ca, sni,
//! verify, identities, cert, key }`.
//!
//! Every file is read and checked here, on the control thread, when the
//! configuration is (start, reload): chains parse and their leaf is valid
//! now, keys go with their certificates, anchors parse, SPIFFE IDs and
//! trust domains are well formed. What comes out is the rustls
//! configuration every worker's handshakes use, held in the table.

use std::collections::HashMap;
use std::sync::Arc;

use dataplane::identity::spiffe_id_of;
use dataplane::identity::verify::{SvidClientVerifier, SvidServerVerifier, UncheckedServer};
use dataplane::table::certs::SniCerts;
use dataplane::table::route::{ClientAuth, ClusterTls, ListenerTls, TlsCert};
use dataplane::table::Table;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use toml::Spanned;

use super::Builder;
use crate::config::file::{FileClusterTls, FileTls};

/// The crypto every handshake uses: ring (it builds with the C compiler
/// alone; aws-lc-rs, which adds post-quantum key exchange, needs cmake),
/// its TLS 1.3 suites and X25519 first.
fn provider() -> Arc<CryptoProvider> {
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

const TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12_AND_13: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

impl Builder<'_> {
    /// A listener's `tls` table at key path `prefix` (`listeners[i].tls`);
    /// `http` says whether to offer ALPN `http/1.1`.
    pub(super) fn tls(
        &mut self,
        table: &Spanned<FileTls>,
        prefix: &str,
        http: bool,
    ) -> Option<ListenerTls> {
        let file = table.get_ref();
        let provider = provider();
        let default = self.certified(
            table,
            prefix,
            (&file.cert, &file.key),
            "tls needs a PEM file for both `cert` and `key` (the default certificate)",
            &provider,
        );
        let versions = self.versions(file, prefix);
        let clients = self.client_auth(file, prefix, &provider);
        let mut extra = Some(Vec::new());
        for (i, entry) in file.sni.iter().flat_map(|l| l.get_ref().iter()).enumerate() {
            let at = format!("{prefix}.sni[{i}]");
            let e = entry.get_ref();
            let names = match &e.names {
                None => {
                    self.missing(
                        entry,
                        &at,
                        "names",
                        "each sni entry lists the server names its certificate answers",
                    );
                    None
                }
                Some(names) => self.server_names(names, &at),
            };
            let certified = self.certified(
                entry,
                &at,
                (&e.cert, &e.key),
                "each sni entry needs a PEM file for both `cert` and `key`",
                &provider,
            );
            match (names, certified, extra.as_mut()) {
                (Some(names), Some((key, mut cert)), Some(extra)) => {
                    cert.names = names;
                    extra.push((names_span(e), key, cert));
                }
                _ => extra = None,
            }
        }
        let ((default_key, default_cert), versions, clients, extra) =
            (default?, versions?, clients?, extra?);

        let mut certs = SniCerts::new(default_key);
        let mut listed = vec![default_cert];
        for (span, key, cert) in extra {
            for name in &cert.names {
                if !certs.add(name, &key) {
                    self.report(
                        span.clone(),
                        format!("{prefix}.sni"),
                        format!("the server name {name:?} is listed under two sni entries"),
                    );
                    return None;
                }
            }
            listed.push(cert);
        }
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .map_err(|e| e.to_string());
        let builder = match (builder, &clients) {
            (Err(e), _) => {
                self.report(Some(table.span()), prefix.to_owned(), e);
                return None;
            }
            (Ok(b), None) => b.with_no_client_auth(),
            (Ok(b), Some((_, verifier))) => b.with_client_cert_verifier(Arc::clone(verifier)),
        };
        let mut config = builder.with_cert_resolver(Arc::new(certs));
        // Once a TLS 1.3 handshake is over, rustls hands the traffic
        // secrets to the data plane's own record layer.
        config.enable_secret_extraction = true;
        if http {
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
        }
        Some(ListenerTls {
            config: Arc::new(config),
            certs: listed,
            tls12: versions.len() == 2,
            clients: clients.map(|(auth, _)| auth),
        })
    }

    /// A cluster's `tls` table at key path `prefix` (`clusters[i].tls`).
    pub(super) fn cluster_tls(
        &mut self,
        table: &Spanned<FileClusterTls>,
        prefix: &str,
    ) -> Option<ClusterTls> {
        let file = table.get_ref();
        let provider = provider();
        let verify = file.verify.as_ref().is_none_or(|v| *v.get_ref());
        let roots = match (&file.ca, verify) {
            (Some(ca), _) => self
                .check(ca, format!("{prefix}.ca"), |path| read_roots(path))
                .map(Some),
            (None, true) => {
                self.missing(
                    table,
                    prefix,
                    "ca",
                    "the upstream's certificate is verified against it (verify = false turns verification off, for development only)",
                );
                None
            }
            (None, false) => Some(None),
        };
        let sni = match &file.sni {
            None => Some(None),
            Some(name) => self
                .check(name, format!("{prefix}.sni"), |n| {
                    ServerName::try_from(n.to_ascii_lowercase())
                        .map_err(|_| format!("{n:?} is not a DNS name or IP address"))
                })
                .map(Some),
        };
        let identities = match &file.identities {
            None => Some(Vec::new()),
            Some(list) => {
                let mut ok = true;
                let mut ids = Vec::new();
                for (i, id) in list.get_ref().iter().enumerate() {
                    match dataplane::spiffe::SpiffeId::parse(id.get_ref()) {
                        Ok(_) => ids.push(id.get_ref().as_str().into()),
                        Err(why) => {
                            ok = false;
                            self.report(
                                Some(id.span()),
                                format!("{prefix}.identities[{i}]"),
                                format!("{:?} is not a workload SPIFFE ID: {why}", id.get_ref()),
                            );
                        }
                    }
                }
                if ok && ids.is_empty() {
                    self.report(
                        Some(list.span()),
                        format!("{prefix}.identities"),
                        "identities is empty: list the SPIFFE IDs the upstream may prove, or leave it out to check the name",
                    );
                    ok = false;
                }
                ok.then_some(ids)
            }
        };
        let client = match (&file.cert, &file.key) {
            (None, None) => Some(None),
            _ => self
                .certified(
                    table,
                    prefix,
                    (&file.cert, &file.key),
                    "a client certificate needs a PEM file for both `cert` and `key`",
                    &provider,
                )
                .map(Some),
        };
        if !verify {
            if let Some(ids) = &file.identities {
                self.report(
                    Some(ids.span()),
                    format!("{prefix}.identities"),
                    "identities are checked only when the certificate is verified; remove verify = false",
                );
                return None;
            }
        }
        let (roots, sni, identities, client) = (roots?, sni?, identities?, client?);
        let identities: Box<[Box<str>]> = identities.into();
        let algorithms = provider.signature_verification_algorithms;
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(TLS13_ONLY)
            .map_err(|e| e.to_string());
        let builder = match builder {
            Ok(b) => b,
            Err(e) => {
                self.report(Some(table.span()), prefix.to_owned(), e);
                return None;
            }
        };
        let builder = match (&roots, verify, identities.is_empty()) {
            (Some(roots), true, true) => {
                let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::clone(roots),
                    Arc::clone(&provider),
                )
                .build();
                match verifier {
                    Ok(v) => builder.with_webpki_verifier(v),
                    Err(e) => {
                        self.report(
                            file.ca.as_ref().map(Spanned::span),
                            format!("{prefix}.ca"),
                            format!("the anchors cannot verify: {e}"),
                        );
                        return None;
                    }
                }
            }
            (Some(roots), true, false) => {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(SvidServerVerifier::new(
                        Arc::clone(roots),
                        identities.clone(),
                        algorithms,
                    )))
            }
            _ => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(UncheckedServer::new(algorithms))),
        };
        let (mut config, cert) = match client {
            None => (builder.with_no_client_auth(), None),
            Some((key, cert)) => {
                let resolver = rustls::sign::SingleCertAndKey::from(key);
                (
                    builder.with_client_cert_resolver(Arc::new(resolver)),
                    Some(cert),
                )
            }
        };
        // As on listeners: the data plane protects TLS 1.3 records itself
        // once the handshake is over.
        config.enable_secret_extraction = true;
        // No session resumption upstream: rustls's session cache is one
        // store behind a lock, shared by every worker holding this config;
        // pooled connections make new handshakes rare anyway.
        config.resumption = rustls::client::Resumption::disabled();
        Some(ClusterTls {
            config: Arc::new(config),
            sni,
            ca: file.ca.as_ref().map(|c| c.get_ref().as_str().into()),
            verify,
            identities,
            cert,
        })
    }

    /// A certificate chain and its key, read and checked: the chain parses,
    /// its leaf is valid now, the key is the leaf's.
    fn certified<T>(
        &mut self,
        table: &Spanned<T>,
        prefix: &str,
        (cert, key): (&Option<Spanned<String>>, &Option<Spanned<String>>),
        hint: &str,
        provider: &CryptoProvider,
    ) -> Option<(Arc<CertifiedKey>, TlsCert)> {
        let mut missing = false;
        for (name, present) in [("cert", cert.is_some()), ("key", key.is_some())] {
            if !present {
                self.missing(table, prefix, name, hint);
                missing = true;
            }
        }
        let (Some(cert), Some(key)) = (cert, key) else {
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
        let ((chain, not_after), key_der) = (chain?, key_der?);
        let identity = chain
            .first()
            .and_then(spiffe_id_of)
            .map(Into::<Box<str>>::into);
        if let Some(before) = self.identities.get(cert.get_ref().as_str()) {
            if identity.as_deref() != Some(&**before) {
                let now = identity.as_deref().unwrap_or("no SPIFFE ID");
                let reason = format!(
                    "the certificate in {:?} now names {now}, where the running one names {before}: \
                     a rotation keeps the identity peers authorize by (write the new identity to a \
                     new file and point the configuration at it to change it)",
                    cert.get_ref()
                );
                self.report(Some(cert.span()), format!("{prefix}.cert"), reason);
                return None;
            }
        }
        match CertifiedKey::from_der(chain, key_der, provider) {
            Ok(certified) => Some((
                Arc::new(certified),
                TlsCert {
                    names: Vec::new(),
                    cert: cert.get_ref().as_str().into(),
                    key: key.get_ref().as_str().into(),
                    not_after,
                    identity,
                },
            )),
            Err(e) => {
                self.report(
                    Some(key.span()),
                    format!("{prefix}.key"),
                    format!(
                        "the key in {:?} does not go with the certificate in {:?}: {e}",
                        key.get_ref(),
                        cert.get_ref()
                    ),
                );
                None
            }
        }
    }

    /// `versions`: TLS 1.3 alone unless 1.2 is asked for too.
    fn versions(
        &mut self,
        file: &FileTls,
        prefix: &str,
    ) -> Option<&'static [&'static SupportedProtocolVersion]> {
        let Some(list) = &file.versions else {
            return Some(TLS13_ONLY);
        };
        let (mut v12, mut v13, mut ok) = (false, false, true);
        for (i, v) in list.get_ref().iter().enumerate() {
            match v.get_ref().as_str() {
                "1.2" => v12 = true,
                "1.3" => v13 = true,
                other => {
                    ok = false;
                    self.report(
                        Some(v.span()),
                        format!("{prefix}.versions[{i}]"),
                        format!(
                            "unknown TLS version {other:?}: the versions are \"1.2\" and \"1.3\""
                        ),
                    );
                }
            }
        }
        if !ok {
            return None;
        }
        match (v12, v13) {
            (false, true) => Some(TLS13_ONLY),
            (true, true) => Some(TLS12_AND_13),
            _ => {
                self.report(
                    Some(list.span()),
                    format!("{prefix}.versions"),
                    "versions must include \"1.3\" (\"1.2\" may be added for older clients)",
                );
                None
            }
        }
    }

    /// `client_ca`, `require_client_cert`, `trust_domains`: the verifier of
    /// client certificates, when the listener asks for them.
    #[allow(clippy::type_complexity)]
    fn client_auth(
        &mut self,
        file: &FileTls,
        prefix: &str,
        provider: &Arc<CryptoProvider>,
    ) -> Option<
        Option<(
            ClientAuth,
            Arc<dyn rustls::server::danger::ClientCertVerifier>,
        )>,
    > {
        let Some(ca) = &file.client_ca else {
            for (key, span) in [
                (
                    "require_client_cert",
                    file.require_client_cert.as_ref().map(Spanned::span),
                ),
                (
                    "trust_domains",
                    file.trust_domains.as_ref().map(Spanned::span),
                ),
            ] {
                if let Some(span) = span {
                    self.report(
                        Some(span),
                        format!("{prefix}.{key}"),
                        format!("`{key}` needs `client_ca`, the anchors client certificates are verified against"),
                    );
                    return None;
                }
            }
            return Some(None);
        };
        let required = file
            .require_client_cert
            .as_ref()
            .is_none_or(|r| *r.get_ref());
        let roots = self.check(ca, format!("{prefix}.client_ca"), |path| read_roots(path));
        let mut domains = Some(Vec::new());
        for (i, d) in file
            .trust_domains
            .iter()
            .flat_map(|l| l.get_ref().iter())
            .enumerate()
        {
            match dataplane::spiffe::parse_trust_domain(d.get_ref()) {
                Ok(_) if d.get_ref().starts_with("spiffe://") => {
                    self.report(
                        Some(d.span()),
                        format!("{prefix}.trust_domains[{i}]"),
                        format!("write the trust domain's bare name, not {:?}", d.get_ref()),
                    );
                    domains = None;
                }
                Ok(_) => {
                    if let Some(list) = domains.as_mut() {
                        list.push(d.get_ref().as_str().into());
                    }
                }
                Err(why) => {
                    self.report(
                        Some(d.span()),
                        format!("{prefix}.trust_domains[{i}]"),
                        format!("{:?} is not a trust domain name: {why}", d.get_ref()),
                    );
                    domains = None;
                }
            }
        }
        let (roots, domains) = (roots?, domains?);
        let builder = WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(provider));
        let builder = if required {
            builder
        } else {
            builder.allow_unauthenticated()
        };
        let chain = match builder.build() {
            Ok(v) => v,
            Err(e) => {
                self.report(
                    Some(ca.span()),
                    format!("{prefix}.client_ca"),
                    format!("the anchors cannot verify: {e}"),
                );
                return None;
            }
        };
        let trust_domains: Box<[Box<str>]> = domains.into();
        let verifier = Arc::new(SvidClientVerifier::new(chain, trust_domains.clone()));
        Some(Some((
            ClientAuth {
                ca: ca.get_ref().as_str().into(),
                required,
                trust_domains,
            },
            verifier,
        )))
    }

    /// An sni entry's `names`: DNS names, `*.` allowed as the first label.
    fn server_names(
        &mut self,
        names: &Spanned<Vec<Spanned<String>>>,
        prefix: &str,
    ) -> Option<Vec<Box<str>>> {
        if names.get_ref().is_empty() {
            self.report(
                Some(names.span()),
                format!("{prefix}.names"),
                "names is empty: list the server names this certificate answers",
            );
            return None;
        }
        let mut out = Some(Vec::new());
        for (i, name) in names.get_ref().iter().enumerate() {
            let lower = name.get_ref().to_ascii_lowercase();
            let bare = lower.strip_prefix("*.").unwrap_or(&lower);
            let valid = matches!(ServerName::try_from(bare), Ok(ServerName::DnsName(_)))
                && !bare.contains('*');
            if valid {
                if let Some(out) = out.as_mut() {
                    out.push(lower.into());
                }
            } else {
                self.report(
                    Some(name.span()),
                    format!("{prefix}.names[{i}]"),
                    format!(
                        "{:?} is not a DNS name (a wildcard is `*.` before a name)",
                        name.get_ref()
                    ),
                );
                out = None;
            }
        }
        out
    }
}

/// The SPIFFE ID each certificate file of `table` names (listeners' and
/// clusters'), by the file's path.
pub(super) fn running_identities(table: Option<&Table>) -> HashMap<Box<str>, Box<str>> {
    let Some(table) = table else {
        return HashMap::new();
    };
    let listeners = table
        .listeners
        .iter()
        .flat_map(|l| l.tls().into_iter().flat_map(|t| t.certs.iter()));
    let clusters = table
        .clusters
        .iter()
        .filter_map(|c| c.tls.as_ref()?.cert.as_ref());
    listeners
        .chain(clusters)
        .filter_map(|c| Some((c.cert.clone(), c.identity.clone()?)))
        .collect()
}

/// Where an sni entry's names are written, for a report on them.
fn names_span(entry: &crate::config::file::FileSniCert) -> Option<std::ops::Range<usize>> {
    entry.names.as_ref().map(Spanned::span)
}

/// The certificate chain in the PEM file at `path`, leaf first, the leaf
/// valid now; with the leaf's notAfter (seconds since the epoch).
fn read_chain(path: &str) -> Result<(Vec<CertificateDer<'static>>, i64), String> {
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
    let not_after = validity.not_after.timestamp();
    Ok((chain, not_after))
}

/// The trust anchors in the PEM file at `path`: every certificate in it.
fn read_roots(path: &str) -> Result<Arc<RootCertStore>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from {path:?}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {path:?}"));
    }
    let mut roots = RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            format!(
                "certificate {} in {path:?} is not a usable anchor: {e}",
                i + 1
            )
        })?;
    }
    Ok(Arc::new(roots))
}
