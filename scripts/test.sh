#!/usr/bin/env bash
# Runs ringway's whole test suite: unit tests of every crate and the
# end-to-end tests, which drive the real `ringway` binary over real sockets
# (so the binaries are built first).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --bins
cargo test --workspace "$@"
