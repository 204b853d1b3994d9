//! Per-worker counters, written only by the worker that owns them.
//!
//! Each is a [`Counter`](crate::counter::Counter): the owner adds with a
//! plain load and store, and the control agent reads copies
//! ([`WorkerStats`]) whenever it likes, without a lock. No counter on the
//! forwarding path is written by two cores.
//!
//! Every counter is declared once, in the `counters!` list below (and
//! the ring's and buffer pools' in theirs); the views the agent writes
//! read the names from the declaration ([`crate::counter::vocabulary`]).

pub mod shortage;

use crate::counter::counters;
use crate::counter::vocabulary::Cli::{Column, Listed};

counters! {
    /// A copy of one worker's counters at one moment.
    pub struct WorkerStats;
    /// The live counters of one worker.
    pub struct Counters;
    exposed {
        /// Client connections accepted.
        accepted: Counter, "accepted", "ringway_connections_accepted_total", Column("accepted"),
            "Client connections accepted.";
        /// HTTP requests this worker finished (answered, proxied or
        /// failed).
        requests: Counter, "requests", "ringway_worker_requests_total", Column("requests"),
            "HTTP requests this worker finished (answered, proxied or failed).";
        /// Client connections open now.
        active: Gauge, "active", "ringway_connections_active", Column("active"),
            "Client connections open now.";
        /// Bytes received from clients and sent upstream (for HTTP, message
        /// bodies: heads are rewritten, not forwarded).
        bytes_from_clients: Counter, "bytes_from_clients", "ringway_bytes_from_clients_total",
            Column("from_clients"),
            "Bytes received from clients and sent upstream (for HTTP, message bodies; heads are rewritten, not forwarded).";
        /// Bytes received from upstreams and sent to clients (for HTTP,
        /// message bodies).
        bytes_from_upstreams: Counter, "bytes_from_upstreams", "ringway_bytes_from_upstreams_total",
            Column("from_upstreams"),
            "Bytes received from upstreams and sent to clients (for HTTP, message bodies; heads are rewritten, not forwarded).";
        /// Bytes the connection code copied in userspace from one buffer to
        /// another: an HTTP head that arrived in pieces, gathered into one
        /// buffer to be parsed. The TCP path sends from the buffer the
        /// kernel received into, so there it stays 0. (Copies the buffer
        /// rings make when they run low are the buffer pools' `copied_bytes`.)
        copied_bytes: Counter, "copied_bytes", "ringway_copied_bytes_total", Column("copied"),
            "Bytes copied in userspace between buffers (0 on the TCP path).";
        /// Accepts that failed (for example out of file descriptors).
        accept_errors: Counter, "accept_errors", "ringway_accept_errors_total", Listed,
            "Accepts that failed, e.g. out of file descriptors.";
        /// Client connections closed at once on accept because the worker
        /// held its share of `runtime.max_connections`.
        refused: Counter, "refused", "ringway_connections_refused_total", Listed,
            "Client connections closed on accept because the worker held its share of runtime.max_connections.";
        /// Upstream connects refused, unreachable or otherwise failed.
        connect_failures: Counter, "connect_failures", "ringway_upstream_connect_failures_total", Listed,
            "Upstream connects refused or otherwise failed.";
        /// Upstream connects that hit the cluster's connect timeout.
        connect_timeouts: Counter, "connect_timeouts", "ringway_upstream_connect_timeouts_total", Listed,
            "Upstream connects that hit the cluster's connect timeout.";
        /// Upstream connects that failed for want of a local resource (file
        /// descriptors, memory, local ports): not counted against the
        /// endpoint.
        connect_local_failures: Counter, "connect_local_failures",
            "ringway_upstream_connect_local_failures_total", Listed,
            "Upstream connects that failed for want of a local resource (file descriptors, memory, local ports); not counted against the endpoint.";
        /// Idle pooled upstream connections closed because the upstream sent
        /// bytes that no request asked for.
        pool_unsolicited: Counter, "pool_unsolicited", "ringway_upstream_pool_unsolicited_total", Listed,
            "Idle pooled upstream connections closed because the upstream sent bytes no request asked for.";
        /// Client connections closed because no endpoint of the cluster
        /// answered.
        no_upstream: Counter, "no_upstream", "ringway_no_upstream_total", Listed,
            "Client connections reset because no endpoint answered.";
        /// TCP client connections reset because their cluster was at its
        /// `max_connections` (HTTP refusals are counted by reason,
        /// `overflow`).
        overflows: Counter, "overflows", "ringway_tcp_overflows_total", Listed,
            "TCP client connections reset because the cluster was at its max_connections.";
        /// Endpoints this worker ejected after gateway failures in a row.
        ejections: Counter, "ejections", "ringway_worker_ejections_total", Listed,
            "Endpoints ejected after consecutive gateway failures.";
        /// Ejections the cluster's limit (max_ejection_percent, never the
        /// last endpoint) did not allow.
        ejections_spared: Counter, "ejections_spared", "ringway_worker_ejections_spared_total", Listed,
            "Ejections not made because the cluster's ejection limit was reached.";
        /// TLS handshakes completed with clients.
        tls_handshakes: Counter, "tls_handshakes", "ringway_tls_handshakes_total", Listed,
            "TLS handshakes completed with clients on TLS listeners.";
        /// TLS handshakes with clients that failed: not TLS, a protocol
        /// error, a client certificate refused or missing, or the client
        /// left mid-handshake.
        tls_handshake_failures: Counter, "tls_handshake_failures",
            "ringway_tls_handshake_failures_total", Listed,
            "TLS handshakes with clients that failed (not TLS, a protocol error, a client certificate refused or missing, the client left).";
        /// TLS handshakes with clients cut by the listener's header timeout.
        tls_handshake_timeouts: Counter, "tls_handshake_timeouts",
            "ringway_tls_handshake_timeouts_total", Listed,
            "TLS handshakes with clients that did not finish within the listener's header_timeout.";
        /// TLS handshakes with upstreams that failed (the upstream's
        /// certificate refused, a protocol error, no answer in time).
        upstream_tls_failures: Counter, "upstream_tls_failures",
            "ringway_upstream_tls_failures_total", Listed,
            "TLS handshakes with upstreams that failed (certificate refused, protocol error, timeout).";
        /// Resets received on one side and passed on to the other.
        resets: Counter, "resets", "ringway_resets_total", Listed,
            "Resets received on one side and passed on to the other.";
        /// Connections closed by the idle timeout.
        idle_timeouts: Counter, "idle_timeouts", "ringway_idle_timeouts_total", Listed,
            "Connections closed by the idle timeout.";
        /// Connections of a removed listener closed when its drain timeout
        /// ended.
        drain_cuts: Counter, "drain_cuts", "ringway_drain_cuts_total", Listed,
            "Connections of a removed listener closed at its drain timeout.";
        /// Listeners a new table added that this worker could not bind.
        bind_failures: Counter, "bind_failures", "ringway_listener_bind_failures_total", Listed,
            "Listeners of a new table a worker could not bind.";
        /// Requests traced (sampled): each left a server span.
        traced: Counter, "traced", "ringway_trace_requests_total", Listed,
            "HTTP requests traced (sampled) on listeners with tracing.";
        /// Requests that came with a trace header that was not valid (it
        /// was dropped, not forwarded).
        trace_invalid: Counter, "trace_invalid", "ringway_trace_invalid_headers_total", Listed,
            "HTTP requests that came with an invalid trace header (dropped, never forwarded).";
        /// Finished spans dropped because the worker's span queue was full
        /// (the exporter had not caught up).
        spans_dropped: Counter, "spans_dropped", "ringway_trace_spans_dropped_total", Listed,
            "Finished spans dropped because the worker's span queue was full.";
        /// Access log records the worker queued for the writer.
        access_logged: Counter, "access_logged", "ringway_access_log_records_total", Listed,
            "Access log records a worker queued for the writer.";
        /// Access log records dropped because the worker's ring was full
        /// (the writer had not caught up).
        access_log_dropped: Counter, "access_log_dropped", "ringway_access_log_dropped_total", Listed,
            "Access log records dropped because the worker's ring was full.";
        /// Log lines the worker could not queue because its log queue was
        /// full (see [`crate::link::log`]).
        log_dropped: Counter, "log_dropped", "ringway_log_dropped_total", Listed,
            "Worker log lines dropped because the worker's log queue was full.";
    }
    internal {
        /// Shortages of a local resource met, connecting or accepting (see
        /// [`shortage`]; the agent turns them into a rate-limited line).
        shortages;
        /// The last of them: what the worker was doing (high 32 bits, a
        /// [`shortage::Doing`]) and the errno (low 32 bits).
        last_shortage;
    }
}
