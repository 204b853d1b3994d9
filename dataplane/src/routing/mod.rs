//! Choosing a route for a request: the first route, in file order, whose
//! every condition holds.
//!
//! Routing sees a request through its protocol-neutral
//! [`RequestView`]; [`h1::view`] makes one of an HTTP/1 head, and the
//! session adds the connection's verified peer identity to it (for the
//! `peer_identity` condition). A listener's
//! [`RouteIndex`](crate::table::route::RouteIndex) narrows the request to
//! the lists of routes that may match it (by host, then by path); each
//! candidate's every condition is checked, and the lowest index that
//! matches wins, which is the route a scan in file order finds. Small
//! tables are scanned in order. Everything is compared in place; no string
//! is built and nothing is allocated per request.

pub mod h1;
#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod tests;

use crate::request::{HeaderFields, RequestView};
use crate::table::route::{
    HeaderMatch, HeaderTest, HostMatch, PathMatch, Route, RouteMatch, Routes,
};

/// The first route of `routes` whose every condition holds for `req`, with
/// its index; `None` when none matches.
pub fn find<'t, F: HeaderFields>(
    routes: &'t Routes,
    req: &RequestView<'_, F>,
) -> Option<(usize, &'t Route)> {
    let index = routes.index();
    if index.is_linear() {
        return find_linear(routes, req);
    }
    let host = req.authority().map(route_host);
    let mut best = usize::MAX;
    index.candidates(host, req.path(), |ids, host_holds| {
        for &id in ids {
            let id = id as usize;
            // Each list is in file order: past the best so far, nothing
            // in it can win.
            if id >= best {
                break;
            }
            // The index compared the host already for most lists.
            let holds = |m: &RouteMatch| {
                if host_holds {
                    others_hold(m, req)
                } else {
                    matches(m, host, req)
                }
            };
            if routes.get(id).is_some_and(|route| holds(&route.matcher)) {
                best = id;
                break;
            }
        }
    });
    routes.get(best).map(|route| (best, route))
}

/// The first route of `routes` whose every condition holds for `req`,
/// found by trying every route in order: what [`find`] does for a small
/// table, and the definition the index must agree with.
pub fn find_linear<'t, F: HeaderFields>(
    routes: &'t [Route],
    req: &RequestView<'_, F>,
) -> Option<(usize, &'t Route)> {
    let host = req.authority().map(route_host);
    routes
        .iter()
        .enumerate()
        .find(|(_, route)| matches(&route.matcher, host, req))
}

/// Whether every condition of `m` holds for `req`, whose host (as
/// [`route_host`] leaves it) is `host`.
#[inline(always)]
fn matches<F: HeaderFields>(m: &RouteMatch, host: Option<&[u8]>, req: &RequestView<'_, F>) -> bool {
    if let Some(want) = &m.host {
        match host {
            Some(host) if host_matches(want, host) => {}
            _ => return false,
        }
    }
    others_hold(m, req)
}

/// Whether every condition of `m` but its host holds for `req`. The
/// index narrows by host and path only; everything else (the peer
/// identity included) is checked here, on every candidate.
#[inline(always)]
fn others_hold<F: HeaderFields>(m: &RouteMatch, req: &RequestView<'_, F>) -> bool {
    if let Some(want) = &m.peer_identity {
        if req.peer_identity() != Some(&**want) {
            return false;
        }
    }
    if let Some(want) = &m.path {
        let path = req.path();
        let ok = match want {
            PathMatch::Exact(p) => path == p.as_bytes(),
            PathMatch::Prefix(p) => path.starts_with(p.as_bytes()),
        };
        if !ok {
            return false;
        }
    }
    let method = req.method();
    if !m.methods.is_empty() && !m.methods.iter().any(|x| **x == *method) {
        return false;
    }
    m.headers.iter().all(|h| header_matches(h, req))
}

#[inline(always)]
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

/// Whether a field of `req` meets the header condition `want` (one
/// matching field of the name is enough). Authorization rules use it too.
#[inline]
pub(crate) fn header_matches<F: HeaderFields>(
    want: &HeaderMatch,
    req: &RequestView<'_, F>,
) -> bool {
    req.values(want.name.as_bytes())
        .any(|value| match &want.test {
            HeaderTest::Present => true,
            HeaderTest::Exact(v) => value == &**v,
            HeaderTest::Prefix(v) => value.starts_with(v),
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
