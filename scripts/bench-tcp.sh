#!/usr/bin/env bash
# L4 streaming, CPU per GB through ringway, nginx and HAProxy against a
# direct baseline: `ringway-bench compare` on bench/scenarios/tcp-stream.toml
# (options pass through, e.g. `--systems direct,ringway,haproxy,haproxy-splice`
# or `--baseline PATH --profile`; see docs/benchmarks.md).
exec "$(dirname "${BASH_SOURCE[0]}")/compare-all.sh" bench/scenarios/tcp-stream.toml -- "$@"
