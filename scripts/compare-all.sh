#!/usr/bin/env bash
# The full side-by-side comparison: builds ringway and ringway-bench
# (release), installs the peers (nginx, HAProxy) when missing, and runs
# `ringway-bench compare` on every scenario in bench/scenarios/ (or on the
# ones named), one after the other. Each writes
# bench/results/<name>-<timestamp>/ (report.md, results.json, plots); the
# report paths are printed at the end.
#
# Usage: scripts/compare-all.sh [--no-install] [scenario.toml ...] [-- compare options]
#   e.g. scripts/compare-all.sh -- --runs 1 --duration 2s
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
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) scenarios+=("$1"); shift ;;
    esac
done
if [[ ${#scenarios[@]} -eq 0 ]]; then
    scenarios=(bench/scenarios/*.toml)
fi
if [[ $install == 1 ]]; then
    scripts/install-peers.sh --no-perf
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
