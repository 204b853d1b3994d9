//! Choosing a route for a request: conditions checked in route order, first
//! match wins.
//!
//! Everything is compared in place against the request head's bytes (the
//! path in its normal form, which the parser wrote only when the path as
//! sent was not); no string is built per request.

use crate::proto::h1::request::RequestHead;
use crate::table::route::{HeaderMatch, HeaderTest, HostMatch, PathMatch, Route, RouteMatch};

/// The first route of `routes` whose every condition holds for the request
/// `head`, parsed from `buf`, with its index; `None` when none matches.
pub fn find<'t>(routes: &'t [Route], head: &RequestHead, buf: &[u8]) -> Option<(usize, &'t Route)> {
    let host = head.host.as_ref().map(|r| route_host(slice(buf, r)));
    let path = head.normal_path(buf);
    let method = head.method(buf);
    routes
        .iter()
        .enumerate()
        .find(|(_, route)| matches(&route.matcher, host, path, method, head, buf))
}

fn matches(
    m: &RouteMatch,
    host: Option<&[u8]>,
    path: &[u8],
    method: &[u8],
    head: &RequestHead,
    buf: &[u8],
) -> bool {
    if let Some(want) = &m.host {
        match host {
            Some(host) if host_matches(want, host) => {}
            _ => return false,
        }
    }
    if let Some(want) = &m.path {
        let ok = match want {
            PathMatch::Exact(p) => path == p.as_bytes(),
            PathMatch::Prefix(p) => path.starts_with(p.as_bytes()),
        };
        if !ok {
            return false;
        }
    }
    if !m.methods.is_empty() && !m.methods.iter().any(|x| **x == *method) {
        return false;
    }
    m.headers.iter().all(|h| header_matches(h, head, buf))
}

fn host_matches(want: &HostMatch, host: &[u8]) -> bool {
    match want {
        HostMatch::Exact(name) => host.eq_ignore_ascii_case(name.as_bytes()),
        HostMatch::Suffix(suffix) => {
            let suffix = suffix.as_bytes();
            host.len() > suffix.len()
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        }
    }
}

fn header_matches(want: &HeaderMatch, head: &RequestHead, buf: &[u8]) -> bool {
    head.headers.iter().any(|h| {
        h.name(buf).eq_ignore_ascii_case(want.name.as_bytes())
            && match &want.test {
                HeaderTest::Present => true,
                HeaderTest::Exact(v) => h.value(buf) == &**v,
                HeaderTest::Prefix(v) => h.value(buf).starts_with(v),
            }
    })
}

/// The host a route compares: `host[:port]` without the port and without
/// one trailing dot. `admin.example.com.` is the same name as
/// `admin.example.com` in DNS (the dot marks it fully qualified), so it
/// must meet the same routes; a second dot makes no valid name and is
/// left for no route to match.
pub fn route_host(host: &[u8]) -> &[u8] {
    let host = host_without_port(host);
    host.strip_suffix(b".").unwrap_or(host)
}

/// `host[:port]` without the port; an IPv6 literal keeps its brackets.
pub fn host_without_port(host: &[u8]) -> &[u8] {
    if host.first() == Some(&b'[') {
        return match host.iter().position(|&b| b == b']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.iter().rposition(|&b| b == b':') {
        Some(colon) => &host[..colon],
        None => host,
    }
}

fn slice<'b>(buf: &'b [u8], range: &std::ops::Range<u32>) -> &'b [u8] {
    buf.get(range.start as usize..range.end as usize)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_not_part_of_the_host() {
        assert_eq!(host_without_port(b"a.example.com:8080"), b"a.example.com");
        assert_eq!(host_without_port(b"a.example.com"), b"a.example.com");
        assert_eq!(host_without_port(b"[::1]:80"), b"[::1]");
        assert_eq!(host_without_port(b"[::1]"), b"[::1]");
    }

    #[test]
    fn one_trailing_dot_is_not_part_of_the_host() {
        assert_eq!(route_host(b"admin.example.com."), b"admin.example.com");
        assert_eq!(route_host(b"admin.example.com.:8443"), b"admin.example.com");
        assert_eq!(route_host(b"admin.example.com"), b"admin.example.com");
        assert_eq!(route_host(b"admin.example.com.."), b"admin.example.com.");
        assert_eq!(route_host(b"[::1]:80"), b"[::1]");
        assert_eq!(route_host(b"."), b"");
        let exact = HostMatch::Exact("admin.example.com".into());
        assert!(host_matches(&exact, route_host(b"ADMIN.example.com.")));
        let wild = HostMatch::Suffix(".example.com".into());
        assert!(host_matches(&wild, route_host(b"a.example.com.:80")));
        assert!(!host_matches(&wild, route_host(b"example.com.")));
    }

    #[test]
    fn a_suffix_needs_a_label_in_front() {
        let want = HostMatch::Suffix(".example.com".into());
        assert!(host_matches(&want, b"a.example.com"));
        assert!(host_matches(&want, b"A.B.Example.COM"));
        assert!(!host_matches(&want, b"example.com"));
        assert!(!host_matches(&want, b".example.com"));
        assert!(!host_matches(&want, b"aexample.com"));
        let exact = HostMatch::Exact("api.example.com".into());
        assert!(host_matches(&exact, b"API.example.com"));
        assert!(!host_matches(&exact, b"x.api.example.com"));
    }
}
