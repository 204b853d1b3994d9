#!/usr/bin/env bash
# Installs the OpenTelemetry Python SDK and its OTLP/HTTP exporter into a
# virtual environment, for the end-to-end tests that check ringway's OTLP
# side against the reference SDK (tests/tests/otlp_export.rs): the SDK sends
# spans to the tests' OTLP receiver, and its protobuf classes read what
# ringway's exporter encodes.
#
# The venv is `otel-venv` in cargo's target directory (${CARGO_TARGET_DIR},
# else target/), where the tests look for it beside their own binaries.
# Idempotent and quiet when the pinned versions are already there. Installs
# python3-venv from Debian's packages when it is missing (as root), and uses
# Debian's python3, which that package completes.
#
# Usage: scripts/install-otel-python.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# One release of the SDK and its exporter: the exporter requires its SDK's
# exact version.
otel_version=1.45.2
python=/usr/bin/python3
target=${CARGO_TARGET_DIR:-target}
venv="$target/otel-venv"
stamp="$venv/.installed-$otel_version"

if [[ -x $venv/bin/python && -e $stamp ]]; then
    exit 0
fi

# Debian's python3 has `venv` but not `ensurepip` until python3-venv is in.
if [[ ! -x $python ]] || ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "install-otel-python: python3-venv is missing; run as root to install it" >&2
        exit 1
    fi
    echo "install-otel-python: installing python3-venv" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi

echo "install-otel-python: creating $venv with opentelemetry-sdk $otel_version" >&2
rm -rf "$venv"
mkdir -p "$target"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    "opentelemetry-sdk==$otel_version" \
    "opentelemetry-exporter-otlp-proto-http==$otel_version"
touch "$stamp"
