//! HTTP tallies and their carry-over from one table to the next.
//!
//! Every HTTP listener, route and route target counts into its own
//! [`HttpTally`], and every authorization rule (and default) into its own
//! [`AuthzTally`]. Counters are cumulative, so a reload must not reset them:
//! a table built as the successor of a running one takes over the running
//! tally of every label set that is still there, matched by name (listener;
//! listener and route; listener, route and cluster; a route's mirror by
//! listener, route and mirror cluster). A label set that is new
//! (a renamed route, a cluster added to a split) starts from zero, and one
//! that is gone is dropped with the old table.
//!
//! Rate limits are carried the same way (by listener and route name, or by
//! listener name for a connection limit), their buckets only while the
//! settings stay the same: a limit changed starts with full buckets.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use dataplane::table::access::LogOutput;
use dataplane::table::rate::{ConnectionLimit, LimitedTally, RateLimit, RateSettings};

use dataplane::table::mirror::MirrorTally;
use dataplane::table::rollout::WatchTally;
use dataplane::table::route::RouteAction;
use dataplane::table::tally::{AuthzTally, ConnectionTally, FaultTally, HttpTally};
use dataplane::table::{Service, Table};

/// A route's label set: listener and route name.
type RouteKey = (Arc<str>, Arc<str>);
/// A route target's label set: listener, route and cluster name.
type TargetKey = (Arc<str>, Arc<str>, Arc<str>);
/// An authorization rule's label set: listener and rule name (`None` for
/// the listener's default).
type AuthzKey = (Arc<str>, Option<Arc<str>>);

/// Where the builder gets its tallies: the running table's, where the names
/// match, otherwise fresh ones.
#[derive(Debug, Default)]
pub(crate) struct Tallies {
    /// Workers each fresh tally has a block for.
    workers: usize,
    listeners: HashMap<Arc<str>, Arc<HttpTally>>,
    routes: HashMap<RouteKey, Arc<HttpTally>>,
    targets: HashMap<TargetKey, Arc<HttpTally>>,
    /// Route mirrors, by listener, route and mirror cluster.
    mirrors: HashMap<TargetKey, Arc<MirrorTally>>,
    /// Rollout figures of route targets, by the target's label set.
    watches: HashMap<TargetKey, Arc<WatchTally>>,
    authz: HashMap<AuthzKey, Arc<AuthzTally>>,
    connections: HashMap<Arc<str>, Arc<ConnectionTally>>,
    /// The fault counts of TCP listeners, by listener name.
    tcp_faults: HashMap<Arc<str>, Arc<FaultTally>>,
    rate_limits: HashMap<RouteKey, RateLimit>,
    connection_limits: HashMap<Arc<str>, ConnectionLimit>,
    /// The number of each access log output: the running table's, and
    /// those given to new outputs while this table is built (so that two
    /// listeners naming one output share its number).
    outputs: RefCell<HashMap<LogOutput, u32>>,
}

impl Tallies {
    /// Indexes the tallies of `previous` (the running table, `None` for a
    /// fresh start) for a table run by `workers` workers.
    ///
    /// The running tallies have blocks for the running worker count; an
    /// update that changes it is refused (`runtime.worker_cores` is fixed),
    /// so a carried tally always fits.
    pub(crate) fn new(previous: Option<&Table>, workers: usize) -> Self {
        let mut tallies = Self {
            workers,
            ..Self::default()
        };
        let Some(table) = previous else {
            return tallies;
        };
        for listener in &table.listeners {
            tallies.connections.insert(
                Arc::clone(&listener.name),
                Arc::clone(&listener.connections),
            );
            if let Some(limit) = &listener.connection_rate_limit {
                tallies
                    .connection_limits
                    .insert(Arc::clone(&listener.name), limit.clone());
            }
            if let Some(authz) = &listener.authorization {
                let name = &listener.name;
                let default = (Arc::clone(name), None);
                tallies
                    .authz
                    .insert(default, Arc::clone(&authz.default_tally));
                for rule in authz.rules.iter() {
                    let key = (Arc::clone(name), Some(Arc::clone(&rule.name)));
                    tallies.authz.insert(key, Arc::clone(&rule.tally));
                }
            }
            let http = match &listener.service {
                Service::Http(http) => http,
                Service::Tcp { fault, .. } => {
                    if let Some(fault) = fault {
                        let name = Arc::clone(&listener.name);
                        tallies.tcp_faults.insert(name, Arc::clone(&fault.tally));
                    }
                    continue;
                }
            };
            let name = &listener.name;
            tallies
                .listeners
                .insert(Arc::clone(name), Arc::clone(&http.tally));
            for route in &http.routes {
                let route_key = (Arc::clone(name), Arc::clone(&route.name));
                if let Some(limit) = &route.rate_limit {
                    tallies.rate_limits.insert(route_key.clone(), limit.clone());
                }
                tallies.routes.insert(route_key, Arc::clone(&route.tally));
                let RouteAction::Forward(forward) = &route.action else {
                    continue;
                };
                if let Some(mirror) = &forward.mirror {
                    let cluster = &table.cluster(mirror.cluster).name;
                    tallies.mirrors.insert(
                        (
                            Arc::clone(name),
                            Arc::clone(&route.name),
                            Arc::clone(cluster),
                        ),
                        Arc::clone(&mirror.tally),
                    );
                }
                for target in &forward.targets {
                    let cluster = &table.cluster(target.cluster).name;
                    let key = (
                        Arc::clone(name),
                        Arc::clone(&route.name),
                        Arc::clone(cluster),
                    );
                    if let Some(watch) = &target.watch {
                        tallies.watches.insert(key.clone(), Arc::clone(watch));
                    }
                    tallies.targets.insert(key, Arc::clone(&target.tally));
                }
            }
        }
        tallies
    }

    /// The tally of HTTP listener `listener`.
    pub(crate) fn listener(&self, listener: &Arc<str>) -> Arc<HttpTally> {
        self.listeners
            .get(listener)
            .map_or_else(|| self.fresh(), Arc::clone)
    }

    /// The tally of route `route` of listener `listener`.
    pub(crate) fn route(&self, listener: &Arc<str>, route: &Arc<str>) -> Arc<HttpTally> {
        self.routes
            .get(&(Arc::clone(listener), Arc::clone(route)))
            .map_or_else(|| self.fresh(), Arc::clone)
    }

    /// The tally of the requests route `route` of listener `listener` sends
    /// to cluster `cluster`.
    pub(crate) fn target(
        &self,
        listener: &Arc<str>,
        route: &Arc<str>,
        cluster: &Arc<str>,
    ) -> Arc<HttpTally> {
        let key = (Arc::clone(listener), Arc::clone(route), Arc::clone(cluster));
        self.targets
            .get(&key)
            .map_or_else(|| self.fresh(), Arc::clone)
    }

    /// The mirror outcomes of route `route` of listener `listener`, which
    /// mirrors to cluster `cluster`.
    pub(crate) fn mirror(
        &self,
        listener: &Arc<str>,
        route: &Arc<str>,
        cluster: &Arc<str>,
    ) -> Arc<MirrorTally> {
        let key = (Arc::clone(listener), Arc::clone(route), Arc::clone(cluster));
        self.mirrors
            .get(&key)
            .map_or_else(|| Arc::new(MirrorTally::new(self.workers)), Arc::clone)
    }

    /// The rollout figures of the requests route `route` of listener
    /// `listener` sends to cluster `cluster`.
    pub(crate) fn watch(
        &self,
        listener: &Arc<str>,
        route: &Arc<str>,
        cluster: &Arc<str>,
    ) -> Arc<WatchTally> {
        let key = (Arc::clone(listener), Arc::clone(route), Arc::clone(cluster));
        self.watches
            .get(&key)
            .map_or_else(|| Arc::new(WatchTally::new(self.workers)), Arc::clone)
    }

    /// The tally of authorization rule `rule` of listener `listener`
    /// (`None`: the listener's default).
    pub(crate) fn authz(&self, listener: &Arc<str>, rule: Option<&Arc<str>>) -> Arc<AuthzTally> {
        let key = (Arc::clone(listener), rule.map(Arc::clone));
        self.authz
            .get(&key)
            .map_or_else(|| Arc::new(AuthzTally::new(self.workers)), Arc::clone)
    }

    /// The connection durations of listener `listener` (of either
    /// protocol).
    pub(crate) fn connections(&self, listener: &Arc<str>) -> Arc<ConnectionTally> {
        self.connections
            .get(listener)
            .map_or_else(|| Arc::new(ConnectionTally::new(self.workers)), Arc::clone)
    }

    /// The fault counts of TCP listener `listener`.
    pub(crate) fn tcp_faults(&self, listener: &Arc<str>) -> Arc<FaultTally> {
        self.tcp_faults
            .get(listener)
            .map_or_else(|| Arc::new(FaultTally::new(self.workers)), Arc::clone)
    }

    /// The rate limit of route `route` of listener `listener` with
    /// `settings`: the running one's buckets if it had the same settings.
    pub(crate) fn rate_limit(
        &self,
        listener: &Arc<str>,
        route: &Arc<str>,
        settings: RateSettings,
    ) -> RateLimit {
        let key = (Arc::clone(listener), Arc::clone(route));
        RateLimit::new(settings, self.rate_limits.get(&key))
    }

    /// The connection limit of listener `listener` with `settings`: the
    /// running one's bucket if it had the same settings, and its count of
    /// connections turned away in any case.
    pub(crate) fn connection_limit(
        &self,
        listener: &Arc<str>,
        settings: RateSettings,
    ) -> ConnectionLimit {
        let running = self.connection_limits.get(listener);
        ConnectionLimit {
            limit: RateLimit::new(settings, running.map(|c| &c.limit)),
            limited: running.map_or_else(
                || Arc::new(LimitedTally::new(self.workers)),
                |c| Arc::clone(&c.limited),
            ),
        }
    }

    /// The number of access log output `output`: the running table's, or a
    /// new one never given before.
    pub(crate) fn output_id(&self, output: &LogOutput) -> u32 {
        *self
            .outputs
            .borrow_mut()
            .entry(output.clone())
            .or_insert_with(super::compile::new_output_id)
    }

    fn fresh(&self) -> Arc<HttpTally> {
        Arc::new(HttpTally::new(self.workers))
    }
}
