//! A route's rate limit, checked once the route is chosen and the request
//! authorized, before its action: what the request is counted as, and the
//! 429 it gets over the limit.

use std::net::IpAddr;

use super::ctx::Failure;
use crate::request::{HeaderFields, Reason, RequestView};
use crate::rt;
use crate::table::rate::{Key, RateKey};
use crate::table::route::Route;

/// Counts the request of `view` from `peer` on `route`'s limit, if it has
/// one; over the limit, the failure to answer (429 with `retry-after`),
/// which keeps the connection unless `close`.
#[inline]
pub(super) fn check<F: HeaderFields>(
    route: &Route,
    view: &RequestView<'_, F>,
    peer: IpAddr,
    close: bool,
) -> Result<(), Failure> {
    let Some(limit) = &route.rate_limit else {
        return Ok(());
    };
    let key = match &limit.settings.key {
        RateKey::Route => Key::Absent,
        RateKey::ClientAddress => Key::Address(peer),
        // The first field of the name: a client sending it twice is
        // counted by the one it put first, like any other client.
        RateKey::Header(name) => view
            .values(name.as_bytes())
            .next()
            .map_or(Key::Absent, Key::Value),
    };
    limit.check(key, rt::now()).map_err(|limited| {
        let mut failure = Failure::new(
            Reason::RateLimited,
            "the route's rate limit is reached; retry later",
            close,
        );
        failure.retry_after = Some(limited.retry_after);
        failure
    })
}
