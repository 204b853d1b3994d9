//! `PUT /tls/listeners/{name}` and `PUT /tls/clusters/{name}`: a new
//! certificate and key for a listener's default certificate or a cluster's
//! client certificate.
//!
//! The body is JSON, `{"cert": "<PEM chain>", "key": "<PEM key>"}`: the two
//! arrive together or not at all, each says which it is, PEM's line breaks
//! travel as `\n`, and `jq --rawfile` or `ringway tls push` build it from
//! the files.
//!
//! The material is checked first ([`material::check`]), then written over
//! the files the configuration names ([`material::install`]), then the
//! running configuration is applied again, which reads them: new
//! handshakes use them, and the certificate survives a restart. A refusal
//! at any step changes nothing: the files are put back when the reload
//! refuses what was written.

use std::rc::Rc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;

use super::{bind_failures, body_text, reload_reply, text, Reply};
use crate::agent::cert_expiry::Owner;
use crate::agent::{Agent, NoCertificate, ReloadError};
use crate::reload::material;

/// The body of a push.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pushed {
    /// The certificate chain, PEM, leaf first.
    cert: String,
    /// Its private key, PEM.
    key: String,
}

/// The owner and name in `/tls/listeners/{name}` or
/// `/tls/clusters/{name}`.
pub(super) fn target(path: &str) -> Option<(Owner, &str)> {
    let rest = path.strip_prefix("/tls/")?;
    let (owner, name) = if let Some(name) = rest.strip_prefix("listeners/") {
        (Owner::Listener, name)
    } else {
        (Owner::Cluster, rest.strip_prefix("clusters/")?)
    };
    (!name.is_empty() && !name.contains('/')).then_some((owner, name))
}

/// Checks, writes and applies the certificate pushed to `path`.
pub(super) async fn push(agent: &Rc<Agent>, path: &str, req: Request<Incoming>) -> Reply {
    let Some((owner, name)) = target(path) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("no such admin path: {path}\n"),
        );
    };
    let what = format!("{} `{name}`", owner.name());
    let body = match body_text(req).await {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let pushed: Pushed = match serde_json::from_str(&body) {
        Ok(pushed) => pushed,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!(
                    "error: the body must be a JSON object {{\"cert\": \"<PEM chain, leaf first>\", \"key\": \"<PEM private key>\"}}: {e}\n"
                ),
            )
        }
    };
    let (running, identity) = match agent.replaceable(owner, name) {
        Ok(found) => found,
        Err(e @ NoCertificate::Unknown(_)) => {
            return text(StatusCode::NOT_FOUND, format!("error: {what}: {e}\n"))
        }
        Err(e @ NoCertificate::None(_)) => {
            return text(StatusCode::CONFLICT, format!("error: {what}: {e}\n"))
        }
    };
    let Some(identity) = identity else {
        return text(
            StatusCode::CONFLICT,
            format!(
                "error: {what}: the certificate in service could not be read back from {} \
                 (the file changed since it was loaded), so the identity a replacement must \
                 keep is unknown; reload first\n",
                running.cert
            ),
        );
    };
    let refused = |e: &dyn std::fmt::Display| {
        text(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "error: {what}: {e}\ncertificate refused; the one in service keeps serving and \
                 {} and {} are unchanged\n",
                running.cert, running.key
            ),
        )
    };
    let checked = match material::check(&pushed.cert, &pushed.key, identity.as_deref()) {
        Ok(checked) => checked,
        Err(e) => return refused(&e),
    };
    let (cert_path, key_path) = (
        std::path::PathBuf::from(&*running.cert),
        std::path::PathBuf::from(&*running.key),
    );
    let previous = match material::install(&cert_path, &key_path, &checked) {
        Ok(previous) => previous,
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("error: {what}: cannot write the certificate: {e}; nothing was changed\n"),
            )
        }
    };
    let before = bind_failures(agent);
    let result = agent.reread_files();
    crate::reload::log(&format!("PUT {path}"), &result);
    match result {
        Err(ReloadError::Refused(errors)) => {
            let restored = match previous.restore() {
                Ok(()) => format!(
                    "{} and {} hold what they held before",
                    running.cert, running.key
                ),
                Err(e) => format!("putting the old files back failed: {e}"),
            };
            let mut body: String = errors
                .errors
                .iter()
                .map(|e| format!("error: {e}\n"))
                .collect();
            body.push_str(&format!(
                "the configuration refused the pushed certificate; the one in service keeps \
                 serving, and {restored}\n"
            ));
            text(StatusCode::UNPROCESSABLE_ENTITY, body)
        }
        Err(ReloadError::ShuttingDown) => {
            let _ = previous.restore();
            reload_reply(agent, Err(ReloadError::ShuttingDown), before).await
        }
        result => reload_reply(agent, result, before).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_a_listener_or_a_cluster_by_name() {
        assert!(matches!(
            target("/tls/listeners/web"),
            Some((Owner::Listener, "web"))
        ));
        assert!(matches!(
            target("/tls/clusters/api"),
            Some((Owner::Cluster, "api"))
        ));
        for path in [
            "/tls/listeners/",
            "/tls/clusters/a/b",
            "/tls/routes/x",
            "/tls",
            "/tls/listeners",
        ] {
            assert!(target(path).is_none(), "{path}");
        }
    }
}
