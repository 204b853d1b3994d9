#!/usr/bin/env bash
# Runs ringway's whole test suite: unit tests of every crate and the
# end-to-end tests, which drive the real `ringway` binary over real sockets
# (so the binaries are built first) with real clients, `curl` among them.
set -euo pipefail
cd "$(dirname "$0")/.."
# The HTTP end-to-end tests drive the system `curl` as a real client.
if ! command -v curl >/dev/null 2>&1; then
    echo "test.sh: installing curl (the HTTP tests use it as a client)" >&2
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends curl >/dev/null
fi
# The development CA's end-to-end tests judge its certificates with the
# system `openssl`.
if ! command -v openssl >/dev/null 2>&1; then
    echo "test.sh: installing openssl (the CA tests use it to check certificates)" >&2
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends openssl >/dev/null
fi
# The /metrics format test has `promtool` judge the exposition and a real
# Prometheus scrape it (the script does nothing when both are there).
scripts/install-prometheus.sh
# The span export tests check OTLP against the OpenTelemetry Python SDK, kept in a venv in target/.
scripts/install-otel-python.sh
cargo build --workspace --bins
cargo test --workspace "$@"
# The end-to-end tests a second time on the epoll fallback: the kit runs
# every `ringway run` under `deny-io-uring EPERM` (seccomp refuses io_uring,
# as the default profiles of Docker 25+ and containerd 2.0 do), with the
# configuration left on `auto` (kit/src/launcher/backend.rs).
echo "test.sh: the end-to-end tests again, io_uring refused (RINGWAY_TEST_IO_BACKEND=epoll)" >&2
RINGWAY_TEST_IO_BACKEND=epoll cargo test -p ringway-tests "$@"
# And what must work wherever io_uring answers ENOSYS (Podman, kernels
# without it): HTTP routing, the 256 MiB TCP transfer, hot reloads, the
# smuggling suite and the buffer-starvation attacks.
echo "test.sh: routing, TCP, reload, smuggling and starvation tests, io_uring refused with ENOSYS (RINGWAY_TEST_IO_BACKEND=epoll-enosys)" >&2
RINGWAY_TEST_IO_BACKEND=epoll-enosys cargo test -p ringway-tests \
    --test http_routing --test tcp_proxy --test reload --test http_smuggling --test starvation "$@"
