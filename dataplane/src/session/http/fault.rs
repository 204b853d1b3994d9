//! A route's fault injection on the HTTP path: the decision for one
//! request, the wait of a delayed one, and the answer of an aborted one.
//!
//! An injected abort is a status, never an error: the request gets no
//! [`crate::request::Reason`], so it is not counted in the error
//! families, reaches no upstream, and tells nothing to the health,
//! outlier, load or breaker records of any endpoint, nor to the tally of
//! any route target (no target is picked). The client did get its
//! status, so it is counted in the route's responses by class. The
//! request's outcome names the fault (for the access log and the span),
//! and the route's tally counts it apart.

use super::clock::Clock;
use super::ctx::{After, Conn, Ctx};
use super::parts::Parts;
use super::write::{self, Persist};
use crate::request::answer::{Answer, Body};
use crate::request::{Fault, HeaderFields, Outcome, RequestView};
use crate::rt;
use crate::table::fault::RouteFault;
use crate::table::route::Route;

/// The line an injected abort's body carries (after `ringway: `).
const ABORTED: &str = "fault injected: this route's fault configuration aborted the request";

/// What `route`'s fault, if it has one, decides for the request seen
/// through `view`: nothing for a request without the fault's header
/// (when it names one), else the worker's roll. A decided fault is
/// counted on the route and noted in `outcome`.
pub(super) fn decide<F: HeaderFields>(
    ctx: &Ctx<'_>,
    route: &Route,
    view: &RequestView<'_, F>,
    outcome: &mut Outcome,
) -> Option<Fault> {
    let fault = route.fault.as_deref()?;
    if let Some(name) = &fault.header {
        view.values(name.as_bytes()).next()?;
    }
    let decided = fault.shares.decide(ctx.http.random())?;
    route.tally.worker(ctx.http.worker).fault(decided);
    outcome.fault = Some(decided);
    Some(decided)
}

/// Holds a delayed request for the fault's delay on the ring's timer (the
/// worker serves others meanwhile). The connection's clock has no
/// deadline in the wait, as in an exchange: the request timeout starts
/// after it, so an injected delay never turns into a 504 of its own.
pub(super) async fn delay(clock: &Clock, fault: &RouteFault) {
    clock.enter_exchange();
    if let Some(delay) = fault.delay {
        let _ = rt::time::sleep(delay).await;
    }
}

impl Conn {
    /// Answers an aborted request at once with the fault's status, its
    /// `x-ringway-fault: abort` field and a line saying it was injected;
    /// nothing goes upstream. `close`: the connection closes after it (the
    /// request had a body, or the client does not keep it).
    pub(super) async fn abort(
        &mut self,
        ctx: &Ctx<'_>,
        clock: &Clock,
        parts: &mut Parts,
        fault: &RouteFault,
        close: bool,
        outcome: &mut Outcome,
    ) -> After {
        let req = &parts.req;
        let answer = Answer {
            status: fault.abort_status,
            location: None,
            content_type: Some("text/plain; charset=utf-8"),
            error: None,
            fields: [&fault.abort_fields, &[]],
            retry_after: None,
            body: Body::Explained(ABORTED),
            head_only: req.is_head(self.inbound.head_bytes()),
        };
        outcome.answered(answer.status);
        let persist = Persist::of(close, req.version, req.keep_alive);
        write::answer(parts.out.bytes(), &answer, persist);
        self.send_own(ctx, clock, &mut parts.out, persist.closes(), outcome)
            .await
    }
}
