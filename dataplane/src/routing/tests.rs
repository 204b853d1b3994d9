//! Routing by hand-picked cases: host normalization, and the index agreeing
//! with file order where buckets overlap.

use std::sync::Arc;

use super::*;
use crate::proto::h1::path::PathRules;
use crate::proto::h1::request::RequestHead;
use crate::proto::h1::{Limits, Status};
use crate::table::route::{DirectResponse, HeaderEdits, RouteAction};
use crate::table::tally::HttpTally;

/// Header fields as a list of name-value pairs, as a test writes them.
#[derive(Debug, Clone, Copy)]
pub(super) struct List<'a>(pub &'a [(&'a [u8], &'a [u8])]);

impl HeaderFields for List<'_> {
    type Values<'s>
        = ListValues<'s>
    where
        Self: 's;

    fn values<'s>(&'s self, name: &'s [u8]) -> ListValues<'s> {
        ListValues {
            fields: self.0.iter(),
            name,
        }
    }
}

/// The values of one name in a [`List`].
#[derive(Debug)]
pub(super) struct ListValues<'s> {
    fields: std::slice::Iter<'s, (&'s [u8], &'s [u8])>,
    name: &'s [u8],
}

impl<'s> Iterator for ListValues<'s> {
    type Item = &'s [u8];

    fn next(&mut self) -> Option<&'s [u8]> {
        let name = self.name;
        self.fields
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// A route with these conditions that answers directly.
pub(super) fn route(matcher: RouteMatch) -> Route {
    Route {
        name: "r".into(),
        matcher,
        action: RouteAction::Direct(DirectResponse {
            status: 200,
            body: Arc::from(&b""[..]),
            content_type: None,
        }),
        request_headers: HeaderEdits::default(),
        response_headers: HeaderEdits::default(),
        tally: Arc::new(HttpTally::new(1)),
        limits: Default::default(),
        fault: None,
        rate_limit: None,
    }
}

/// Index shapes every case is checked under: as built for real, every
/// group indexed by path, and small groups as lists in a scanned-nowhere
/// table.
pub(super) const SHAPES: [(usize, usize); 3] = [(8, 8), (0, 0), (0, 2)];

fn host(h: &str) -> Option<HostMatch> {
    Some(match h.strip_prefix('*') {
        Some(suffix) => HostMatch::Suffix(suffix.into()),
        None => HostMatch::Exact(h.into()),
    })
}

fn exact(p: &str) -> Option<PathMatch> {
    Some(PathMatch::Exact(p.into()))
}

fn prefix(p: &str) -> Option<PathMatch> {
    Some(PathMatch::Prefix(p.into()))
}

fn at(host: Option<HostMatch>, path: Option<PathMatch>) -> RouteMatch {
    RouteMatch {
        host,
        path,
        ..RouteMatch::default()
    }
}

/// Asserts which route a request to `authority` and `path` (GET, no
/// fields) gets, under every index shape and by the scan.
fn check(
    matchers: &[fn() -> RouteMatch],
    authority: Option<&str>,
    path: &str,
    want: Option<usize>,
) {
    let req = RequestView::new(
        b"GET",
        authority.map(str::as_bytes),
        path.as_bytes(),
        List(&[]),
    );
    for (linear_max, few_max) in SHAPES {
        let list = matchers.iter().map(|m| route(m())).collect();
        let routes = Routes::with_limits(list, linear_max, few_max);
        let got = find(&routes, &req).map(|(i, _)| i);
        assert_eq!(
            got, want,
            "{authority:?} {path:?} with linear_max {linear_max}, few_max {few_max}"
        );
        assert_eq!(find_linear(&routes, &req).map(|(i, _)| i), want);
    }
}

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

/// Filler routes that push a table past the scan and its host groups past
/// lists, so that the index is what answers.
fn filler() -> RouteMatch {
    at(host("filler.example.org"), prefix("/filler"))
}

#[test]
fn the_index_normalizes_hosts_as_the_scan_does() {
    let routes: &[fn() -> RouteMatch] = &[
        filler,
        || at(host("admin.example.com"), None),
        || at(host("*.example.com"), None),
        || at(host("[::1]"), None),
        filler,
    ];
    check(routes, Some("admin.example.com"), "/", Some(1));
    check(routes, Some("ADMIN.Example.COM"), "/", Some(1));
    check(routes, Some("admin.example.com."), "/", Some(1));
    check(routes, Some("admin.example.com.:8443"), "/", Some(1));
    check(routes, Some("admin.example.com:80"), "/", Some(1));
    // A second dot makes no valid name: one dot stays, so the host is
    // neither `admin.example.com` nor ends in `.example.com`.
    check(routes, Some("admin.example.com.."), "/", None);
    check(routes, Some("x.admin.example.com"), "/", Some(2));
    check(routes, Some("X.EXAMPLE.COM.:1"), "/", Some(2));
    // The suffix needs a label in front of its dot.
    check(routes, Some("example.com"), "/", None);
    check(routes, Some(".example.com"), "/", None);
    check(routes, Some("aexample.com"), "/", None);
    check(routes, Some("a..example.com"), "/", Some(2));
    check(routes, Some("[::1]:80"), "/", Some(3));
    check(routes, Some("[::1]"), "/", Some(3));
    check(routes, None, "/", None);
    check(routes, Some(""), "/", None);
}

#[test]
fn the_longer_suffix_does_not_win_over_file_order() {
    let routes: &[fn() -> RouteMatch] = &[
        filler,
        || at(host("*.example.com"), prefix("/a")),
        || at(host("*.b.example.com"), None),
        || at(host("*.example.com"), None),
        || at(host("x.b.example.com"), None),
    ];
    check(routes, Some("x.b.example.com"), "/a", Some(1));
    check(routes, Some("x.b.example.com"), "/b", Some(2));
    check(routes, Some("y.example.com"), "/b", Some(3));
    check(routes, Some("b.example.com"), "/b", Some(3));
}

#[test]
fn a_host_less_route_before_host_routes_wins() {
    let routes: &[fn() -> RouteMatch] = &[
        filler,
        || at(None, prefix("/health")),
        || at(host("a.example.com"), None),
        || at(host("*.example.com"), None),
        || at(None, None),
    ];
    check(routes, Some("a.example.com"), "/health", Some(1));
    check(routes, Some("a.example.com"), "/healthz", Some(1));
    check(routes, Some("a.example.com"), "/x", Some(2));
    check(routes, Some("b.example.com"), "/x", Some(3));
    check(routes, Some("b.example.org"), "/x", Some(4));
    check(routes, None, "/x", Some(4));
}

#[test]
fn a_host_route_before_the_host_less_route_wins() {
    let routes: &[fn() -> RouteMatch] = &[
        filler,
        || at(host("a.example.com"), prefix("/")),
        || at(None, prefix("/")),
    ];
    check(routes, Some("a.example.com"), "/x", Some(1));
    check(routes, Some("b.example.com"), "/x", Some(2));
}

#[test]
fn overlapping_prefixes_go_by_file_order_not_length() {
    let group: &[fn() -> RouteMatch] = &[
        || at(host("a.example.com"), prefix("/api/v1/")),
        || at(host("a.example.com"), prefix("/api")),
        || at(host("a.example.com"), prefix("/api/")),
        || at(host("a.example.com"), exact("/api/v1/users")),
        || at(host("a.example.com"), prefix("/")),
        || at(host("a.example.com"), prefix("")),
        || at(host("a.example.com"), exact("/")),
        || at(host("a.example.com"), exact("")),
    ];
    check(group, Some("a.example.com"), "/api/v1/users", Some(0));
    check(group, Some("a.example.com"), "/api/v2", Some(1));
    check(group, Some("a.example.com"), "/apix", Some(1));
    check(group, Some("a.example.com"), "/ap", Some(4));
    check(group, Some("a.example.com"), "/", Some(4));
    check(group, Some("a.example.com"), "", Some(5));
    check(group, Some("b.example.com"), "/", None);
}

#[test]
fn a_catch_all_prefix_meets_every_path() {
    let routes: &[fn() -> RouteMatch] = &[
        filler,
        || at(host("a.example.com"), exact("/exact")),
        || at(host("a.example.com"), prefix("/")),
        || at(host("a.example.com"), exact("/late")),
    ];
    check(routes, Some("a.example.com"), "/exact", Some(1));
    check(routes, Some("a.example.com"), "/late", Some(2));
    check(routes, Some("a.example.com"), "/", Some(2));
    check(routes, Some("a.example.com"), "/x/y/z", Some(2));
    check(routes, Some("a.example.com"), "*", None);
}

#[test]
fn methods_and_headers_are_checked_on_the_candidates() {
    let list = [
        route(RouteMatch {
            host: host("a.example.com"),
            methods: vec![b"POST".to_vec().into()],
            ..RouteMatch::default()
        }),
        route(RouteMatch {
            host: host("a.example.com"),
            headers: vec![HeaderMatch {
                name: "x-canary".into(),
                test: HeaderTest::Exact(b"1".to_vec().into()),
            }],
            ..RouteMatch::default()
        }),
        route(at(host("a.example.com"), None)),
    ];
    let fields: &[(&[u8], &[u8])] = &[(b"X-Canary", b"0"), (b"x-canary", b"1")];
    for (linear_max, few_max) in SHAPES {
        let list = list.iter().map(|r| route(r.matcher.clone())).collect();
        let routes = Routes::with_limits(list, linear_max, few_max);
        let get = |method: &'static [u8], fields| {
            let req = RequestView::new(method, Some(&b"a.example.com"[..]), b"/", List(fields));
            find(&routes, &req).map(|(i, _)| i)
        };
        assert_eq!(get(b"POST", &[]), Some(0));
        assert_eq!(get(b"post", &[]), Some(2));
        // One matching field of several is enough.
        assert_eq!(get(b"GET", fields), Some(1));
        assert_eq!(get(b"GET", &fields[..1]), Some(2));
    }
}

#[test]
fn peer_identity_is_checked_on_every_candidate_and_never_taken_from_a_field() {
    const WEB: &str = "spiffe://example.org/ns/default/sa/web";
    const API: &str = "spiffe://example.org/ns/default/sa/api";
    let with_id = |host_name: &str, id: &str| RouteMatch {
        host: host(host_name),
        path: prefix("/"),
        peer_identity: Some(id.into()),
        ..RouteMatch::default()
    };
    // Enough fillers that the index is built (and the identity routes sit
    // in indexed groups), then two identity routes and a catch-all.
    let mut matchers: Vec<RouteMatch> = (0..12).map(|_| filler()).collect();
    matchers.push(with_id("a.example.com", WEB));
    matchers.push(with_id("a.example.com", API));
    matchers.push(RouteMatch {
        peer_identity: Some(API.into()),
        ..RouteMatch::default()
    });
    matchers.push(at(host("a.example.com"), None));
    // A client that claims an identity in the header ringway writes gets
    // nothing for it.
    let spoofed: &[(&[u8], &[u8])] = &[(b"x-ringway-peer-identity", WEB.as_bytes())];
    for (linear_max, few_max) in SHAPES.into_iter().chain([(100, 100)]) {
        let list = matchers.iter().map(|m| route(m.clone())).collect();
        let routes = Routes::with_limits(list, linear_max, few_max);
        let get = |authority: &'static str, fields, id| {
            let req = RequestView::new(b"GET", Some(authority.as_bytes()), b"/x", List(fields))
                .with_peer_identity(id);
            find(&routes, &req).map(|(i, _)| i)
        };
        assert_eq!(get("a.example.com", &[], Some(WEB)), Some(12));
        assert_eq!(get("a.example.com", &[], Some(API)), Some(13));
        assert_eq!(get("b.example.com", &[], Some(API)), Some(14));
        assert_eq!(get("a.example.com", &[], None), Some(15));
        assert_eq!(get("a.example.com", spoofed, None), Some(15));
        assert_eq!(get("b.example.com", spoofed, None), None);
        // Exact: another workload of the same domain, or a longer ID, is
        // not the one named.
        let longer = "spiffe://example.org/ns/default/sa/web2";
        assert_eq!(get("a.example.com", &[], Some(longer)), Some(15));
    }
}

#[test]
fn an_http1_head_is_seen_in_place() {
    let limits = Limits {
        max_request_line: 8192,
        max_header_bytes: 65536,
        max_headers: 100,
        path_rules: PathRules::DEFAULT,
    };
    let buf = b"GET http://Api.Example.com.:8080//x/../v1/%61?q=1 HTTP/1.1\r\n\
        Host: other.example.com\r\nX-Tag: a\r\nx-tag: b\r\n\r\n";
    let mut head = RequestHead::new();
    assert_eq!(head.parse(buf, &limits).ok(), Some(Status::Complete));
    let req = h1::view(&head, buf);
    assert_eq!(req.method(), b"GET");
    // The authority of an absolute-form target wins over `Host`.
    assert_eq!(req.authority(), Some(&b"Api.Example.com.:8080"[..]));
    assert_eq!(req.path(), b"/v1/a");
    let tags: Vec<&[u8]> = req.values(b"x-tag").collect();
    assert_eq!(tags, [&b"a"[..], b"b"]);
    assert_eq!(req.values(b"x-none").count(), 0);

    let mut list: Vec<Route> = (0..20).map(|_| route(filler())).collect();
    list.push(route(RouteMatch {
        host: host("api.example.com"),
        path: exact("/v1/a"),
        headers: vec![HeaderMatch {
            name: "x-tag".into(),
            test: HeaderTest::Prefix(b"b".to_vec().into()),
        }],
        ..RouteMatch::default()
    }));
    let routes = Routes::new(list);
    assert!(!routes.index().is_linear());
    assert_eq!(find(&routes, &req).map(|(i, _)| i), Some(20));
}
