#!/usr/bin/env bash
# Runs `ringway-bench compare`, the one bench harness, on every scenario in
# bench/scenarios/ (or on the ones named), one after the other: builds
# ringway and ringway-bench (release) and installs the peers (nginx,
# HAProxy; perf too with --profile, --syscalls or a scenario that counts
# system calls) when missing. Each scenario writes
# bench/results/<name>-<timestamp>/ (report.md, results.json, plots); the
# report paths are printed at the end. docs/benchmarks.md describes the
# method and every scenario.
#
# Usage: scripts/compare-all.sh [--no-install] [scenario.toml ...] [-- compare options]
#   e.g. scripts/compare-all.sh -- --runs 1 --duration 2s
#        scripts/compare-all.sh bench/scenarios/small-keepalive.toml -- \
#            --systems direct,ringway --baseline ../before/target/release/ringway --profile
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

install=1
scenarios=()
extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --no-install) install=0; shift ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) scenarios+=("$1"); shift ;;
    esac
done
if [[ ${#scenarios[@]} -eq 0 ]]; then
    scenarios=(bench/scenarios/*.toml)
fi
# perf for `--profile`, `--syscalls` and the scenarios that count system
# calls (a `[syscalls]` section).
want_perf=0
if [[ " ${extra[*]} " == *" --profile "* || " ${extra[*]} " == *" --syscalls "* ]] \
    || grep -qs '^\[syscalls\]' "${scenarios[@]}"; then
    want_perf=1
fi
if [[ $install == 1 ]]; then
    if [[ $want_perf == 1 ]]; then
        scripts/install-peers.sh
    else
        scripts/install-peers.sh --no-perf
    fi
fi
cargo build --release -q -p ringway-bench -p ringway-control
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
reports=()
status=0
for s in "${scenarios[@]}"; do
    echo "== $s" >&2
    if report=$("$TARGET_DIR/release/ringway-bench" compare "$s" \
        --ringway "$TARGET_DIR/release/ringway" "${extra[@]}"); then
        reports+=("$report")
    else
        status=1
        [[ -n ${report:-} ]] && reports+=("$report (with problems)")
    fi
done
printf '%s\n' "${reports[@]}"
exit $status
