#!/usr/bin/env bash
# Routing-table churn benchmark: publish tables at a fixed rate through the
# admin API while TCP traffic flows through ringway, and compare the worker's
# throughput and CPU per request with and without churn, in one run.
#
# Builds ringway and ringway-bench (release), then runs
#   target/release/ringway-bench churn --ringway target/release/ringway \
#       --out target/bench-churn/<timestamp> [ARGS...]
# Every argument is passed through; the defaults are 10,000 clusters (1,000
# distinct endpoint addresses), 100 tables/s, 16 clients, 3 rounds of a quiet
# and a churn phase of 10 s each, ringway's worker on core 1 and its control
# agent, the clients and the origin on core 0 (a 2-core machine; clients and
# origin at nice 19, so that the agent runs first, as on a core of its own).
# `scripts/bench-churn.sh --help` lists every knob of the bench.
#
# Usage: scripts/bench-churn.sh [--no-build] [ringway-bench churn options]
#   --no-build   use the existing release binaries
# Raw results (config, ringway's log, report.md, result.json) land in
# target/bench-churn/<timestamp>/ unless --out is given.
# Exit status: 0 when the run passed (no request error, every PUT applied,
# ringway exited 0), 1 otherwise, 2 for bad options.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=1
ARGS=()
HAVE_OUT=0
for arg in "$@"; do
    case "$arg" in
        --no-build) BUILD=0 ;;
        --out|--out=*) HAVE_OUT=1; ARGS+=("$arg") ;;
        -h|--help)
            sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            echo
            if [[ -x $ROOT/target/release/ringway-bench ]]; then
                "$ROOT/target/release/ringway-bench" churn --help
            fi
            exit 0 ;;
        *) ARGS+=("$arg") ;;
    esac
done

log() { echo "bench-churn: $*" >&2; }

if [[ $BUILD == 1 ]]; then
    log "building ringway and ringway-bench (release)"
    (cd "$ROOT" && cargo build --release -q -p ringway-control -p ringway-bench)
fi
RINGWAY="$ROOT/target/release/ringway"
BENCH="$ROOT/target/release/ringway-bench"
[[ -x $RINGWAY ]] || { log "error: $RINGWAY not built"; exit 1; }
[[ -x $BENCH ]] || { log "error: $BENCH not built"; exit 1; }

if [[ $HAVE_OUT == 0 ]]; then
    ARGS=(--out "$ROOT/target/bench-churn/$(date +%Y%m%d-%H%M%S)" "${ARGS[@]}")
fi

# The report names the command that reproduces it.
shown="scripts/bench-churn.sh"
for arg in "$@"; do shown+=" $(printf '%q' "$arg")"; done
log "tree: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | awk '{f = f " " $2} END {if (f != "") print ", uncommitted changes in:" f}')"

cd "$ROOT"
RINGWAY_BENCH_COMMAND="$shown" exec "$BENCH" churn --ringway "$RINGWAY" "${ARGS[@]}"
