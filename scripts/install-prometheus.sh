#!/usr/bin/env bash
# Installs Debian's `prometheus` package, which provides `/usr/bin/promtool`
# and `/usr/bin/prometheus`: the end-to-end test of the `/metrics` format
# (tests/tests/metrics_format.rs) has promtool judge the exposition and a
# real Prometheus scrape it.
#
# Idempotent and quiet when both programs are already there. Runs as root on
# a Debian machine; `apt-get update` runs only when something is missing.
# The packaged Prometheus service is never left running: it would bind
# 9090 and scrape on its own, and the test starts its own server, with its
# own config, port and storage.
#
# Usage: scripts/install-prometheus.sh
set -euo pipefail

case "${1:-}" in
    "") ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install-prometheus: unknown argument: $1" >&2; exit 2 ;;
esac

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "install-prometheus: promtool or prometheus is missing; run as root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Keep the maintainer scripts from starting the service: a policy-rc.d that
# denies every start (invoke-rc.d and deb-systemd-invoke both ask it),
# removed again on exit if we put it there. One already there (container
# images ship one that denies everything) is left alone.
policy=/usr/sbin/policy-rc.d
our_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    our_policy=1
fi
log=$(mktemp)
cleanup() {
    if [[ $our_policy == 1 ]]; then rm -f "$policy"; fi
    rm -f "$log"
}
trap cleanup EXIT

# apt's chatter goes to a log that is shown only when a step fails.
apt_quiet() {
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        return 1
    fi
}

echo "install-prometheus: installing prometheus (promtool and prometheus for the /metrics tests)" >&2
apt_quiet apt-get update -qq
apt_quiet apt-get install -y -qq --no-install-recommends prometheus

# If a service manager started it anyway, stop it and keep it from
# starting at boot.
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    systemctl stop prometheus >/dev/null 2>&1 || true
    systemctl disable prometheus >/dev/null 2>&1 || true
elif command -v service >/dev/null 2>&1; then
    service prometheus stop >/dev/null 2>&1 || true
fi
if command -v update-rc.d >/dev/null 2>&1; then
    update-rc.d prometheus disable >/dev/null 2>&1 || true
fi

for program in promtool prometheus; do
    command -v "$program" >/dev/null 2>&1 \
        || { echo "install-prometheus: $program still missing after install" >&2; exit 1; }
done
echo "install-prometheus: done ($(prometheus --version 2>&1 | head -1))" >&2
