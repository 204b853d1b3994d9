//! The trace context a request carries: W3C `traceparent`/`tracestate`
//! and B3, read strictly and written back with ringway's span as the
//! parent.
