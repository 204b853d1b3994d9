#!/usr/bin/env bash
# Small HTTP/1.1 keep-alive requests through ringway, nginx and HAProxy
# against a direct baseline: `ringway-bench compare` on
# bench/scenarios/small-keepalive.toml (options pass through, e.g.
# `--baseline PATH --profile --runs 8`; see docs/benchmarks.md).
exec "$(dirname "${BASH_SOURCE[0]}")/compare-all.sh" bench/scenarios/small-keepalive.toml -- "$@"
