//! What the exporter is told: where the collector is ([`Endpoint`]) and how
//! to batch, wait and retry ([`OtlpSettings`]), with the defaults the
//! architecture describes and the checks that keep memory bounded.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The path OTLP/HTTP collectors serve traces on.
pub const DEFAULT_PATH: &str = "/v1/traces";

/// Where an OpenTelemetry collector takes OTLP/HTTP traces: a plain
/// `http://host[:port][/path]` URL, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The host as written: a name, an IPv4 address, or an IPv6 address
    /// without its brackets.
    host: String,
    /// The port: as written, or 80.
    port: u16,
    /// The request target: the URL's path (and query), or [`DEFAULT_PATH`]
    /// when the URL names none.
    path: String,
}

impl Endpoint {
    /// Parses `http://host[:port][/path]`. Without a path (or with `/`
    /// alone) the path is [`DEFAULT_PATH`]; without a port, 80.
    pub fn parse(url: &str) -> Result<Self, EndpointError> {
        let bad = |why: &str| EndpointError::Invalid {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("it has no scheme; write http://host:port/path"))?;
        if scheme.eq_ignore_ascii_case("https") {
            return Err(EndpointError::Https {
                url: url.to_owned(),
            });
        }
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(bad("the scheme must be http"));
        }
        if rest.contains('#') {
            return Err(bad("a fragment has no meaning here"));
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(bad("credentials in the URL are not supported"));
        }
        let (host, port) = split_authority(authority).map_err(bad)?;
        let path = match path {
            "" | "/" => DEFAULT_PATH.to_owned(),
            p if p.starts_with('?') => format!("{DEFAULT_PATH}{p}"),
            p => p.to_owned(),
        };
        if path.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(bad(
                "the path must be visible ASCII (percent-encode the rest)",
            ));
        }
        Ok(Self { host, port, path })
    }

    /// The host: a name or an address (an IPv6 address without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request target sent in the request line.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The `Host` header's value: the host, bracketed when it is an IPv6
    /// address, and the port unless it is 80.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl Default for Endpoint {
    /// A collector on this host, on OTLP/HTTP's usual port.
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 4318,
            path: DEFAULT_PATH.to_owned(),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.path)
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Self::parse(url)
    }
}

/// Why a collector URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// An `https://` URL: TLS to the collector is not there yet.
    #[error(
        "collector endpoint `{url}`: https is not supported yet; use an http:// URL \
         (a collector or agent on the same host or network, reached in plain HTTP)"
    )]
    Https {
        /// The URL as given.
        url: String,
    },
    /// Anything else wrong with the URL.
    #[error("collector endpoint `{url}`: {why}")]
    Invalid {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
}

/// Splits `host[:port]` or `[v6][:port]`; the port defaults to 80.
fn split_authority(authority: &str) -> Result<(String, u16), &'static str> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address must end with `]`")?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("the bracketed host is not an IPv6 address");
        }
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or("junk after the IPv6 address")?,
                ),
            ),
        }
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err("it names no host");
        }
        // A name or an IPv4 address; an IPv6 address goes in brackets.
        if !host.starts_with(|c: char| c.is_ascii_alphanumeric())
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            return Err("the host is not a host name or an address");
        }
        (host, port)
    };
    let port = match port {
        None => 80,
        Some(port) => match port.parse::<u16>() {
            Ok(0) | Err(_) => return Err("the port must be a number from 1 to 65535"),
            Ok(port) => port,
        },
    };
    Ok((host.to_owned(), port))
}

/// How the exporter batches, sends and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    /// The collector.
    pub endpoint: Endpoint,
    /// The `service.name` resource attribute of every span.
    pub service_name: String,
    /// The `service.instance.id` resource attribute, when set: what tells
    /// apart the ringways of one service (a node or pod name).
    pub instance_id: Option<String>,
    /// How often the worker queues are drained.
    pub poll_every: Duration,
    /// Most spans in one request to the collector.
    pub batch_spans: usize,
    /// Longest a span waits in a batch that is not full before the batch
    /// is sent.
    pub batch_delay: Duration,
    /// Longest one request to the collector may take, connect included.
    pub timeout: Duration,
    /// Most spans held while the collector is down or slow (the batch
    /// being filled included); past it, the oldest whole batches are
    /// dropped. Bounds the exporter's memory.
    pub max_held_spans: usize,
    /// The first wait before a retry; it doubles after every failure.
    pub backoff_first: Duration,
    /// The longest wait between retries, a collector's `Retry-After`
    /// included.
    pub backoff_max: Duration,
    /// How long [`super::Exporter::stop`] may spend sending what is left.
    pub stop_deadline: Duration,
}

impl OtlpSettings {
    /// The defaults, sending to `endpoint`.
    pub fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            service_name: "ringway".to_owned(),
            instance_id: None,
            poll_every: Duration::from_millis(100),
            batch_spans: 1_000,
            batch_delay: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            max_held_spans: 10_000,
            backoff_first: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            stop_deadline: Duration::from_secs(2),
        }
    }

    /// Checks that the values make sense together.
    pub fn check(&self) -> Result<(), SettingsError> {
        let zero = |name: &'static str, d: Duration| {
            if d.is_zero() {
                Err(SettingsError::Zero(name))
            } else {
                Ok(())
            }
        };
        zero("poll_every", self.poll_every)?;
        zero("batch_delay", self.batch_delay)?;
        zero("timeout", self.timeout)?;
        zero("backoff_first", self.backoff_first)?;
        if self.batch_spans == 0 {
            return Err(SettingsError::EmptyBatch);
        }
        if self.max_held_spans < self.batch_spans {
            return Err(SettingsError::HeldBelowBatch {
                held: self.max_held_spans,
                batch: self.batch_spans,
            });
        }
        if self.backoff_max < self.backoff_first {
            return Err(SettingsError::BackoffOrder {
                first: self.backoff_first,
                max: self.backoff_max,
            });
        }
        if self.service_name.is_empty() {
            return Err(SettingsError::NoServiceName);
        }
        Ok(())
    }
}

impl Default for OtlpSettings {
    fn default() -> Self {
        Self::new(Endpoint::default())
    }
}

/// Why [`OtlpSettings`] were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A duration that must be positive is zero.
    #[error("span export: `{0}` must be longer than zero")]
    Zero(&'static str),
    /// A batch of no spans.
    #[error("span export: a batch must hold at least one span")]
    EmptyBatch,
    /// The spans held could not make up one batch.
    #[error(
        "span export: at most {held} spans held is fewer than one batch of {batch}; \
         hold at least one batch"
    )]
    HeldBelowBatch {
        /// `max_held_spans`.
        held: usize,
        /// `batch_spans`.
        batch: usize,
    },
    /// The longest backoff is shorter than the first.
    #[error("span export: the longest backoff ({max:?}) is shorter than the first ({first:?})")]
    BackoffOrder {
        /// `backoff_first`.
        first: Duration,
        /// `backoff_max`.
        max: Duration,
    },
    /// An empty `service.name`.
    #[error("span export: the service name must not be empty")]
    NoServiceName,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(url: &str) -> (String, u16, String) {
        let e = Endpoint::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        (e.host().to_owned(), e.port(), e.path().to_owned())
    }

    #[test]
    fn parses_plain_http_urls() {
        assert_eq!(
            parsed("http://collector:4318/v1/traces"),
            ("collector".into(), 4318, "/v1/traces".into())
        );
        assert_eq!(
            parsed("http://10.1.2.3:4318"),
            ("10.1.2.3".into(), 4318, DEFAULT_PATH.into())
        );
        assert_eq!(
            parsed("HTTP://otel.example/"),
            ("otel.example".into(), 80, DEFAULT_PATH.into())
        );
        assert_eq!(
            parsed("http://[::1]:4318/otlp/traces?tenant=a"),
            ("::1".into(), 4318, "/otlp/traces?tenant=a".into())
        );
        assert_eq!(
            parsed("http://[fe80::1]"),
            ("fe80::1".into(), 80, DEFAULT_PATH.into())
        );
        assert_eq!(
            parsed("http://c:1?x=1"),
            ("c".into(), 1, "/v1/traces?x=1".into())
        );
    }

    #[test]
    fn the_authority_and_display_round_trip() {
        for url in [
            "http://collector:4318/v1/traces",
            "http://[::1]:4318/v1/traces",
            "http://otel.example/x",
        ] {
            let endpoint = Endpoint::parse(url).expect("valid");
            assert_eq!(endpoint.to_string(), url);
            assert_eq!(endpoint.to_string().parse::<Endpoint>(), Ok(endpoint));
        }
        assert_eq!(
            Endpoint::parse("http://[::1]/").expect("valid").authority(),
            "[::1]"
        );
        assert_eq!(
            Endpoint::default().to_string(),
            "http://127.0.0.1:4318/v1/traces"
        );
    }

    #[test]
    fn refuses_https_saying_it_is_not_there_yet() {
        let err = Endpoint::parse("https://collector:4318/v1/traces").expect_err("https");
        assert!(matches!(err, EndpointError::Https { .. }));
        let message = err.to_string();
        assert!(message.contains("https is not supported yet"), "{message}");
        assert!(
            message.contains("`https://collector:4318/v1/traces`"),
            "{message}"
        );
    }

    #[test]
    fn refuses_what_is_not_a_plain_http_url() {
        for url in [
            "collector:4318",
            "grpc://collector:4317",
            "http://",
            "http:///v1/traces",
            "http://collector:0/",
            "http://collector:65536/",
            "http://collector:43x8/",
            "http://user:pw@collector/",
            "http://collector/v1/traces#frag",
            "http://[::1/",
            "http://[nothost]:4318/",
            "http://[::1]x/",
            "http://coll ector/",
            "http://collector/a b",
        ] {
            let err = Endpoint::parse(url).expect_err(url);
            assert!(matches!(err, EndpointError::Invalid { .. }), "{url}: {err}");
            assert!(err.to_string().contains(url), "{err}");
        }
    }

    #[test]
    fn the_defaults_pass_the_checks() {
        let settings = OtlpSettings::default();
        assert_eq!(settings.check(), Ok(()));
        assert_eq!(settings.batch_spans, 1_000);
        assert_eq!(settings.batch_delay, Duration::from_secs(5));
        assert_eq!(settings.service_name, "ringway");
    }

    #[test]
    fn refuses_settings_that_cannot_work() {
        let base = OtlpSettings::default();
        let cases = [
            OtlpSettings {
                timeout: Duration::ZERO,
                ..base.clone()
            },
            OtlpSettings {
                batch_spans: 0,
                ..base.clone()
            },
            OtlpSettings {
                max_held_spans: 999,
                ..base.clone()
            },
            OtlpSettings {
                backoff_max: Duration::from_millis(100),
                ..base.clone()
            },
            OtlpSettings {
                service_name: String::new(),
                ..base.clone()
            },
        ];
        let errors: Vec<String> = cases
            .iter()
            .map(|s| s.check().expect_err("refused").to_string())
            .collect();
        assert!(errors[0].contains("`timeout`"), "{errors:?}");
        assert!(errors[2].contains("999"), "{errors:?}");
    }
}
