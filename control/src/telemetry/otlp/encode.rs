//! A worker's [`Span`] record as an OTLP span, and a batch of them as the
//! body of an OTLP/HTTP export request, with `opentelemetry-proto`'s
//! generated types.
//!
//! Names and attributes follow OpenTelemetry's stable HTTP semantic
//! conventions, with these choices made for a proxy:
//! - The span name is the method alone (`GET`), for server and client
//!   spans: the conventions put `{method} {http.route}` only where the
//!   route is a template of paths, and a ringway route is a name, which
//!   goes in `ringway.route` instead. A method outside the known set is
//!   named `HTTP`, its attribute is `_OTHER` and the method as sent goes in
//!   `http.request.method_original`, as the conventions ask.
//! - `server.address`/`server.port` of a server span come from the `host`
//!   the client named; those of a client span are the endpoint dialled
//!   (ringway forwards the client's `host`, so the endpoint is what tells
//!   attempts apart), also given as `network.peer.address`/`.port`.
//! - `error.type` is the `x-ringway-error` reason when there is one (on
//!   every failed request or attempt, the client's own faults included);
//!   otherwise the status code as text when it marks an error for that
//!   kind: 5xx on a server span, 4xx or 5xx on a client span.
//! - The span status is ERROR for a client span that failed or got a 4xx
//!   or 5xx; for a server span that answered 5xx, or failed for a reason
//!   that is not the client's without a 4xx (a body cut short after a 200
//!   head, say). A server span's 4xx
//!   leaves it UNSET even with a reason (a refused or malformed request is
//!   the client's error, not the server's), as the conventions say.

use std::net::SocketAddr;

use dataplane::trace::span::{Span, SpanKind};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value, AnyValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind as ProtoKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span as ProtoSpan, SpanFlags, Status,
};
use prost::Message;

/// The instrumentation scope every span is reported under.
pub const SCOPE_NAME: &str = "ringway";

/// The methods the conventions know by name; any other is `_OTHER`.
const KNOWN_METHODS: [&str; 9] = [
    "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE",
];

/// The trace flags of every span exported: only sampled requests get
/// spans.
const SAMPLED: u32 = 0x01;

/// Encodes batches of spans for one service: the resource and scope are
/// built once.
#[derive(Debug, Clone)]
pub struct Encoder {
    resource: Resource,
    scope: InstrumentationScope,
}

impl Encoder {
    /// An encoder whose spans carry the resource attributes `service.name`,
    /// `service.instance.id` (when given) and `service.version` (this
    /// build's).
    pub fn new(service_name: &str, instance_id: Option<&str>) -> Self {
        let mut attributes = vec![text("service.name", service_name)];
        if let Some(id) = instance_id {
            attributes.push(text("service.instance.id", id));
        }
        attributes.push(text("service.version", env!("CARGO_PKG_VERSION")));
        Self {
            resource: Resource {
                attributes,
                ..Resource::default()
            },
            scope: InstrumentationScope {
                name: SCOPE_NAME.to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                ..InstrumentationScope::default()
            },
        }
    }

    /// The export request carrying `spans`: one resource, one scope.
    pub fn request<'a>(
        &self,
        spans: impl IntoIterator<Item = &'a Span>,
    ) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(self.scope.clone()),
                    spans: spans.into_iter().map(to_proto).collect(),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    /// The protobuf body of an OTLP/HTTP export request carrying `spans`.
    pub fn encode<'a>(&self, spans: impl IntoIterator<Item = &'a Span>) -> Vec<u8> {
        self.request(spans).encode_to_vec()
    }
}

/// One span as OTLP has it.
pub fn to_proto(span: &Span) -> ProtoSpan {
    let server = span.kind == SpanKind::Server;
    let method = span.method.to_string_lossy();
    let known = KNOWN_METHODS.contains(&method.as_str());
    let name = if known {
        method.clone()
    } else {
        "HTTP".to_owned()
    };

    let mut attributes = Vec::with_capacity(16);
    if known {
        attributes.push(text("http.request.method", &method));
    } else if !method.is_empty() {
        attributes.push(text("http.request.method", "_OTHER"));
        attributes.push(text("http.request.method_original", &method));
    }
    let target = span.target.to_string_lossy();
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target.as_str(), None),
    };
    if !path.is_empty() {
        attributes.push(text("url.path", path));
    }
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        attributes.push(text("url.query", query));
    }
    if server {
        attributes.push(text("url.scheme", if span.tls { "https" } else { "http" }));
        let host = span.host.to_string_lossy();
        if let Some((address, port)) = split_host(&host) {
            attributes.push(text("server.address", address));
            if let Some(port) = port {
                attributes.push(int("server.port", i64::from(port)));
            }
        }
    } else if let Some(endpoint) = span.endpoint {
        push_endpoint(&mut attributes, "server", endpoint);
        push_endpoint(&mut attributes, "network.peer", endpoint);
    }
    attributes.push(text("client.address", &span.client.to_string()));
    if let Some(status) = span.status {
        attributes.push(int("http.response.status_code", i64::from(status)));
    }
    if let Some(error) = error_type(span) {
        attributes.push(text("error.type", &error));
    }
    if !server && span.attempt > 1 {
        attributes.push(int(
            "http.request.resend_count",
            i64::from(span.attempt - 1),
        ));
    }
    attributes.push(text("ringway.listener", &span.listener));
    if let Some(route) = &span.route {
        attributes.push(text("ringway.route", route));
    }
    if let Some(cluster) = &span.cluster {
        attributes.push(text("ringway.cluster", cluster));
    }
    if server {
        if let Some(endpoint) = span.endpoint {
            attributes.push(text("ringway.upstream", &endpoint.to_string()));
        }
        if let Some(fault) = span.fault {
            attributes.push(text("ringway.fault", fault.name()));
        }
    }

    // A server span's parent is the caller's (remote); a client span's is
    // ringway's own server span.
    let remote_parent = server && span.parent_id.is_some();
    let mut flags = SAMPLED | SpanFlags::ContextHasIsRemoteMask as u32;
    if remote_parent {
        flags |= SpanFlags::ContextIsRemoteMask as u32;
    }
    ProtoSpan {
        trace_id: span.trace_id.to_vec(),
        span_id: span.span_id.to_vec(),
        parent_span_id: span.parent_id.map(|id| id.to_vec()).unwrap_or_default(),
        flags,
        name,
        kind: if server {
            ProtoKind::Server
        } else {
            ProtoKind::Client
        } as i32,
        start_time_unix_nano: span.start_unix_ns,
        end_time_unix_nano: span.end_unix_ns,
        attributes,
        status: Some(Status {
            message: String::new(),
            code: if failed(span) {
                StatusCode::Error
            } else {
                StatusCode::Unset
            } as i32,
        }),
        ..ProtoSpan::default()
    }
}

/// `error.type`: the reason, else the status code when it marks an error
/// for this kind of span.
fn error_type(span: &Span) -> Option<String> {
    if let Some(reason) = span.error {
        return Some(reason.name().to_owned());
    }
    let floor = match span.kind {
        SpanKind::Server => 500,
        SpanKind::Client => 400,
    };
    span.status
        .filter(|&status| status >= floor)
        .map(|status| status.to_string())
}

/// Whether the span's status is ERROR (see the module's notes).
fn failed(span: &Span) -> bool {
    match span.kind {
        SpanKind::Client => span.error.is_some() || span.status.is_some_and(|s| s >= 400),
        SpanKind::Server => {
            let client_error = span.status.is_some_and(|s| (400..500).contains(&s));
            span.status.is_some_and(|s| s >= 500)
                || (!client_error && span.error.is_some_and(|r| !r.is_clients()))
        }
    }
}

/// `{prefix}.address` and `{prefix}.port` of `endpoint`.
fn push_endpoint(attributes: &mut Vec<KeyValue>, prefix: &str, endpoint: SocketAddr) {
    attributes.push(text(
        &format!("{prefix}.address"),
        &endpoint.ip().to_string(),
    ));
    attributes.push(int(&format!("{prefix}.port"), i64::from(endpoint.port())));
}

/// A `host` header's host and port: `name`, `name:port`, `1.2.3.4:port`,
/// `[v6]:port` (the brackets dropped). `None` when empty or unreadable.
fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    if host.is_empty() {
        return None;
    }
    if let Some(rest) = host.strip_prefix('[') {
        let (address, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?.parse().ok()?),
        };
        return Some((address, port));
    }
    match host.rsplit_once(':') {
        Some((address, port)) if !address.is_empty() => Some((address, Some(port.parse().ok()?))),
        Some(_) => None,
        None => Some((host, None)),
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    attribute(key, Value::StringValue(value.to_owned()))
}

fn int(key: &str, value: i64) -> KeyValue {
    attribute(key, Value::IntValue(value))
}

fn attribute(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::IpAddr;
    use std::sync::Arc;

    use dataplane::request::Reason;
    use dataplane::trace::span::Text;

    use super::*;

    /// A finished server span with every field set.
    pub(crate) fn server_span() -> Span {
        Span {
            trace_id: [0x4b; 16],
            span_id: [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08],
            parent_id: Some([0xa0; 8]),
            kind: SpanKind::Server,
            start_unix_ns: 1_700_000_000_000_000_000,
            end_unix_ns: 1_700_000_000_002_500_000,
            method: Text::new(b"GET"),
            target: Text::new(b"/items/42?color=red&size=m"),
            host: Text::new(b"shop.example:8080"),
            tls: true,
            status: Some(200),
            error: None,
            listener: Arc::from("ingress"),
            route: Some(Arc::from("items")),
            cluster: Some(Arc::from("catalog")),
            endpoint: Some("10.0.0.7:9000".parse().expect("an address")),
            client: IpAddr::from([192, 0, 2, 10]),
            attempt: 2,
            fault: None,
        }
    }

    /// The client span of the second attempt under [`server_span`].
    pub(crate) fn client_span() -> Span {
        Span {
            span_id: [0x11; 8],
            parent_id: Some(server_span().span_id),
            kind: SpanKind::Client,
            start_unix_ns: 1_700_000_000_001_000_000,
            end_unix_ns: 1_700_000_000_002_000_000,
            tls: false,
            ..server_span()
        }
    }

    fn attributes(span: &ProtoSpan) -> Vec<(String, String)> {
        span.attributes
            .iter()
            .map(|kv| {
                let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(Value::StringValue(s)) => format!("{s:?}"),
                    Some(Value::IntValue(i)) => i.to_string(),
                    other => panic!("unexpected value {other:?}"),
                };
                (kv.key.clone(), value)
            })
            .collect()
    }

    fn attr(span: &ProtoSpan, key: &str) -> Option<String> {
        attributes(span)
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    #[test]
    fn a_server_span_names_the_injected_fault_and_a_client_span_never_does() {
        let server = Span {
            fault: Some(dataplane::request::Fault::Abort),
            ..server_span()
        };
        assert_eq!(
            attr(&to_proto(&server), "ringway.fault").as_deref(),
            Some("\"abort\"")
        );
        assert_eq!(attr(&to_proto(&server_span()), "ringway.fault"), None);
        let client = Span {
            fault: Some(dataplane::request::Fault::Delay),
            ..client_span()
        };
        assert_eq!(attr(&to_proto(&client), "ringway.fault"), None);
    }

    fn span_status(span: &ProtoSpan) -> StatusCode {
        let code = span.status.as_ref().expect("a status").code;
        StatusCode::try_from(code).expect("a known status code")
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_server_span_carries_every_attribute() {
        let span = to_proto(&server_span());
        assert_eq!(span.name, "GET");
        assert_eq!(span.kind, ProtoKind::Server as i32);
        assert_eq!(span.trace_id, vec![0x4b; 16]);
        assert_eq!(span.span_id, vec![1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(span.parent_span_id, vec![0xa0; 8]);
        assert_eq!(span.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_700_000_000_002_500_000);
        assert_eq!(
            attributes(&span),
            pairs(&[
                ("http.request.method", "\"GET\""),
                ("url.path", "\"/items/42\""),
                ("url.query", "\"color=red&size=m\""),
                ("url.scheme", "\"https\""),
                ("server.address", "\"shop.example\""),
                ("server.port", "8080"),
                ("client.address", "\"192.0.2.10\""),
                ("http.response.status_code", "200"),
                ("ringway.listener", "\"ingress\""),
                ("ringway.route", "\"items\""),
                ("ringway.cluster", "\"catalog\""),
                ("ringway.upstream", "\"10.0.0.7:9000\""),
            ])
        );
        assert_eq!(span_status(&span), StatusCode::Unset);
        assert!(span.events.is_empty() && span.links.is_empty());
    }

    #[test]
    fn a_client_span_names_its_endpoint_and_its_resends() {
        let span = to_proto(&client_span());
        assert_eq!(span.name, "GET");
        assert_eq!(span.kind, ProtoKind::Client as i32);
        assert_eq!(span.parent_span_id, vec![1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            attributes(&span),
            pairs(&[
                ("http.request.method", "\"GET\""),
                ("url.path", "\"/items/42\""),
                ("url.query", "\"color=red&size=m\""),
                ("server.address", "\"10.0.0.7\""),
                ("server.port", "9000"),
                ("network.peer.address", "\"10.0.0.7\""),
                ("network.peer.port", "9000"),
                ("client.address", "\"192.0.2.10\""),
                ("http.response.status_code", "200"),
                ("http.request.resend_count", "1"),
                ("ringway.listener", "\"ingress\""),
                ("ringway.route", "\"items\""),
                ("ringway.cluster", "\"catalog\""),
            ])
        );
        let first = to_proto(&Span {
            attempt: 1,
            fault: None,
            ..client_span()
        });
        assert_eq!(attr(&first, "http.request.resend_count"), None);
    }

    #[test]
    fn flags_say_sampled_and_whether_the_parent_is_remote() {
        let remote = SAMPLED | 0x100 | 0x200;
        assert_eq!(to_proto(&server_span()).flags, remote);
        let root = to_proto(&Span {
            parent_id: None,
            ..server_span()
        });
        assert_eq!(root.flags, SAMPLED | 0x100);
        assert!(root.parent_span_id.is_empty(), "no parent: empty bytes");
        assert_eq!(to_proto(&client_span()).flags, SAMPLED | 0x100);
    }

    #[test]
    fn optional_fields_are_left_out_when_absent() {
        let span = to_proto(&Span {
            target: Text::new(b"/health?"),
            host: Text::EMPTY,
            tls: false,
            status: None,
            route: None,
            cluster: None,
            endpoint: None,
            ..server_span()
        });
        assert_eq!(
            attributes(&span),
            pairs(&[
                ("http.request.method", "\"GET\""),
                ("url.path", "\"/health\""),
                ("url.scheme", "\"http\""),
                ("client.address", "\"192.0.2.10\""),
                ("ringway.listener", "\"ingress\""),
            ])
        );
    }

    #[test]
    fn unknown_and_missing_methods_follow_the_conventions() {
        let odd = to_proto(&Span {
            method: Text::new(b"PURGE"),
            ..server_span()
        });
        assert_eq!(odd.name, "HTTP");
        assert_eq!(
            attr(&odd, "http.request.method").as_deref(),
            Some("\"_OTHER\"")
        );
        assert_eq!(
            attr(&odd, "http.request.method_original").as_deref(),
            Some("\"PURGE\"")
        );
        // Methods are case-sensitive.
        let lower = to_proto(&Span {
            method: Text::new(b"get"),
            ..server_span()
        });
        assert_eq!(lower.name, "HTTP");
        // A request refused before its method was read.
        let none = to_proto(&Span {
            method: Text::EMPTY,
            target: Text::EMPTY,
            status: Some(400),
            error: Some(Reason::BadRequest),
            ..server_span()
        });
        assert_eq!(none.name, "HTTP");
        assert_eq!(attr(&none, "http.request.method"), None);
        assert_eq!(attr(&none, "url.path"), None);
    }

    #[test]
    fn host_headers_split_into_address_and_port() {
        assert_eq!(split_host("example.com"), Some(("example.com", None)));
        assert_eq!(
            split_host("example.com:81"),
            Some(("example.com", Some(81)))
        );
        assert_eq!(split_host("10.0.0.1:8080"), Some(("10.0.0.1", Some(8080))));
        assert_eq!(split_host("[::1]:8443"), Some(("::1", Some(8443))));
        assert_eq!(split_host("[2001:db8::1]"), Some(("2001:db8::1", None)));
        assert_eq!(split_host(""), None);
        assert_eq!(split_host(":80"), None);
        assert_eq!(split_host("example.com:http"), None);
        assert_eq!(split_host("[::1"), None);
    }

    #[test]
    fn server_span_errors_and_status() {
        let case = |status: Option<u16>, error: Option<Reason>| {
            let span = to_proto(&Span {
                status,
                error,
                ..server_span()
            });
            (attr(&span, "error.type"), span_status(&span))
        };
        let error = |s: &str| Some(format!("{s:?}"));
        // Success and the client's 4xx: no error.
        assert_eq!(case(Some(200), None), (None, StatusCode::Unset));
        assert_eq!(case(Some(404), None), (None, StatusCode::Unset));
        // A 5xx from upstream passed on: the code is the error type.
        assert_eq!(case(Some(500), None), (error("500"), StatusCode::Error));
        // ringway's own answers name their reason.
        assert_eq!(
            case(Some(503), Some(Reason::NoEndpoint)),
            (error("no_endpoint"), StatusCode::Error)
        );
        assert_eq!(
            case(Some(504), Some(Reason::UpstreamTimeout)),
            (error("upstream_timeout"), StatusCode::Error)
        );
        // A refused request is the client's error: named, not a failure of
        // the server.
        assert_eq!(
            case(Some(404), Some(Reason::NoRoute)),
            (error("no_route"), StatusCode::Unset)
        );
        // Broken off after the head: the upstream's fault is an error, the
        // client's is not.
        assert_eq!(
            case(None, Some(Reason::UpstreamAbortedBody)),
            (error("upstream_aborted_body"), StatusCode::Error)
        );
        assert_eq!(
            case(Some(200), Some(Reason::UpstreamAbortedBody)),
            (error("upstream_aborted_body"), StatusCode::Error)
        );
        assert_eq!(
            case(None, Some(Reason::ClientSendTimeout)),
            (error("client_send_timeout"), StatusCode::Unset)
        );
        assert_eq!(
            case(Some(408), Some(Reason::HeaderTimeout)),
            (error("header_timeout"), StatusCode::Unset)
        );
    }

    #[test]
    fn client_span_errors_and_status() {
        let case = |status: Option<u16>, error: Option<Reason>| {
            let span = to_proto(&Span {
                status,
                error,
                ..client_span()
            });
            (attr(&span, "error.type"), span_status(&span))
        };
        let error = |s: &str| Some(format!("{s:?}"));
        assert_eq!(case(Some(204), None), (None, StatusCode::Unset));
        assert_eq!(case(Some(302), None), (None, StatusCode::Unset));
        assert_eq!(case(Some(404), None), (error("404"), StatusCode::Error));
        assert_eq!(case(Some(503), None), (error("503"), StatusCode::Error));
        assert_eq!(
            case(None, Some(Reason::UpstreamRefused)),
            (error("upstream_refused"), StatusCode::Error)
        );
    }

    #[test]
    fn a_batch_is_one_resource_and_one_scope_and_decodes_back() {
        let encoder = Encoder::new("edge", Some("node-3"));
        let spans = [server_span(), client_span()];
        let body = encoder.encode(&spans);
        let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("valid protobuf");
        assert_eq!(request, encoder.request(&spans));
        let [resource_spans] = request.resource_spans.as_slice() else {
            panic!("one resource: {request:?}");
        };
        let resource = resource_spans.resource.as_ref().expect("a resource");
        let resource_attributes: Vec<(String, String)> = resource
            .attributes
            .iter()
            .map(
                |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(Value::StringValue(s)) => (kv.key.clone(), s.clone()),
                    other => panic!("unexpected value {other:?}"),
                },
            )
            .collect();
        assert_eq!(
            resource_attributes,
            pairs(&[
                ("service.name", "edge"),
                ("service.instance.id", "node-3"),
                ("service.version", env!("CARGO_PKG_VERSION")),
            ])
        );
        let [scope_spans] = resource_spans.scope_spans.as_slice() else {
            panic!("one scope: {resource_spans:?}");
        };
        assert_eq!(scope_spans.scope.as_ref().expect("a scope").name, "ringway");
        assert_eq!(
            scope_spans.spans,
            vec![to_proto(&spans[0]), to_proto(&spans[1])]
        );

        let anonymous = Encoder::new("ringway", None);
        let request = anonymous.request(&spans[..1]);
        let keys: Vec<&str> = request.resource_spans[0]
            .resource
            .as_ref()
            .expect("a resource")
            .attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect();
        assert_eq!(keys, ["service.name", "service.version"]);
    }
}
