#!/usr/bin/env bash
# Routing-table churn while requests flow, both modes (endpoints replaced,
# whole route tables posted): `ringway-bench compare` on
# bench/scenarios/churn-endpoints.toml and churn-routes.toml (options pass
# through; see docs/benchmarks.md).
exec "$(dirname "${BASH_SOURCE[0]}")/compare-all.sh" bench/scenarios/churn-endpoints.toml bench/scenarios/churn-routes.toml -- "$@"
