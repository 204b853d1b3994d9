#!/usr/bin/env bash
# Installs, from Debian packages, the peers and tools that ringway's benchmark
# (`ringway-bench compare`) and end-to-end tests compare against or drive:
# HAProxy, nginx (with its stream module, for the TCP comparison), taskset,
# and (optional, best effort) linux-perf for `compare --profile` and the
# system-call counts (`[syscalls]`, `compare --syscalls`).
#
# Idempotent and quiet when everything is already there. Runs as root on a
# fresh Debian machine; `apt-get update` runs only when something is missing.
# The packaged nginx/haproxy services are never left running: the benchmarks
# start their own instances with their own configs and pinned cores.
#
# Usage: scripts/install-peers.sh [--no-perf]
set -euo pipefail

want_perf=1
for arg in "$@"; do
    case "$arg" in
        --no-perf) want_perf=0 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "install-peers: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

# package -> command it provides, or (starting with /) file it installs;
# checked, so a half-removed package is redone. Debian builds nginx with
# `--with-stream=dynamic`: TCP proxying needs the module from
# libnginx-mod-stream, which `ringway-bench compare` loads by absolute path.
required=(haproxy:haproxy nginx:nginx libnginx-mod-stream:/usr/lib/nginx/modules/ngx_stream_module.so
    procps:ps util-linux:taskset)

# Whether what `entry` (package:command or package:/file) provides is there.
provided() {
    local what=${1#*:}
    if [[ $what == /* ]]; then
        [[ -e $what ]]
    else
        PATH="$PATH:/usr/sbin:/sbin" command -v "$what" >/dev/null 2>&1
    fi
}

missing=()
for entry in "${required[@]}"; do
    pkg=${entry%%:*}
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
        || ! provided "$entry"; then
        missing+=("$pkg")
    fi
done

perf_missing=0
if [[ $want_perf == 1 ]] && ! command -v perf >/dev/null 2>&1; then
    perf_missing=1
fi

if [[ ${#missing[@]} -eq 0 && $perf_missing -eq 0 ]]; then
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "install-peers: missing packages (${missing[*]:-linux-perf}); run as root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Keep maintainer scripts from starting the services: a policy-rc.d that
# denies every start, removed again on exit if we put it there.
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

echo "install-peers: installing ${missing[*]:-} $([[ $perf_missing == 1 ]] && echo linux-perf)" >&2
# apt's chatter goes to a log that is shown only when a step fails.
apt_quiet() {
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        return 1
    fi
}
apt_quiet apt-get update -qq
if [[ ${#missing[@]} -gt 0 ]]; then
    apt_quiet apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [[ $perf_missing == 1 ]]; then
    # Optional: profiling only. Never fail the install for it.
    apt_quiet apt-get install -y -qq --no-install-recommends linux-perf \
        || echo "install-peers: linux-perf not installed (optional)" >&2
fi

# If a service manager started them anyway, stop and disable them.
for svc in nginx haproxy; do
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        systemctl stop "$svc" >/dev/null 2>&1 || true
        systemctl disable "$svc" >/dev/null 2>&1 || true
    elif command -v service >/dev/null 2>&1; then
        service "$svc" stop >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null 2>&1; then
        update-rc.d "$svc" disable >/dev/null 2>&1 || true
    fi
done

for entry in "${required[@]}"; do
    provided "$entry" \
        || { echo "install-peers: ${entry#*:} (package ${entry%%:*}) still missing after install" >&2; exit 1; }
done
echo "install-peers: done ($(haproxy -v 2>/dev/null | head -1 | awk '{print "haproxy", $3}'), $(nginx -v 2>&1 | sed 's|.*/||;s|^|nginx |'))" >&2
