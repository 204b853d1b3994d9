#!/usr/bin/env bash
# L4 TCP streaming benchmark: ringway vs HAProxy (mode tcp) vs a direct
# connection, side by side in one run, on loopback.
#
# Layout (2-core machine): iperf3 server and client on the load core (0), the
# proxy under test on the proxy core (1): ringway's one worker, and HAProxy
# with `nbthread 1` + `cpu-map`, each process also confined there by taskset.
# Runs are interleaved (direct, ringway, haproxy, ... repeated R times) so that
# drift hits every system alike. For each run it records iperf3's --json
# result, the proxy's utime+stime (/proc/PID/stat, all threads) and the busy
# time of both cores (/proc/stat, softirq included), and prints a Markdown
# table: throughput, proxy CPU seconds per GB and proxy-core busy seconds per
# GB (GB = 1e9 bytes carried one way), medians with min/max, and the
# ringway/HAProxy ratios. It also checks ringway's exit report
# (copied_bytes=0).
#
# Usage: scripts/bench-tcp.sh [options]
#   -t SECONDS    iperf3 duration of each measured run      (default 10)
#   -r N          repetitions of the interleaved round      (default 3)
#   -P N          parallel iperf3 streams                    (default 1)
#   -w SECONDS    warm-up run per system, not measured, 0=none (default 2)
#   --reverse     data flows server -> client (iperf3 -R)
#   --systems 'A B ...'  which of direct ringway haproxy to run (default all)
#   --splice      also measure HAProxy with splice-request/splice-response
#   --no-build    use the existing target/release/ringway
#   --out DIR     where raw results go (default target/bench-tcp/<timestamp>)
#   --load-core N / --proxy-core N   (defaults 0 / 1)
#   --ringway-runtime 'KEY = VALUE'   extra line for ringway's [runtime]
#                 section (repeatable), e.g. 'buffer_count = 16'; default: none
#   --profile     after the measured runs, one more run per proxy under
#                 `perf record -C <proxy core> -g`; reports in the results dir
#   --quiet-pct P before each run wait (up to --quiet-wait S, default 600) until
#                 both cores were under P% busy for a second (default 5): other
#                 work on the machine (builds, tests) would skew every figure
#   --retries N   redo a run during which other work used either core, or the
#                 hypervisor descheduled the proxy core (lost clock ticks), up
#                 to N times (default 4); the discarded runs go to noisy.tsv
# Needs: haproxy, iperf3 (scripts/install-peers.sh), python3, taskset.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=10
REPEATS=3
PARALLEL=1
WARMUP=2
REVERSE=0
SPLICE=0
SYSTEMS_ARG="direct ringway haproxy"
BUILD=1
OUT=""
PROFILE=0
RINGWAY_RUNTIME=()
QUIET_PCT=5
QUIET_WAIT=600
RETRIES=4
LOAD_CORE=0
PROXY_CORE=1
IPERF_PORT=5201
RINGWAY_PORT=15201
HAPROXY_PORT=15202
HAPROXY_SPLICE_PORT=15203

usage() { sed -n '2,38p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        -t) DURATION=$2; shift 2 ;;
        -r) REPEATS=$2; shift 2 ;;
        -P) PARALLEL=$2; shift 2 ;;
        -w) WARMUP=$2; shift 2 ;;
        --reverse) REVERSE=1; shift ;;
        --splice) SPLICE=1; shift ;;
        --systems) SYSTEMS_ARG=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --out) OUT=$2; shift 2 ;;
        --profile) PROFILE=1; shift ;;
        --ringway-runtime) RINGWAY_RUNTIME+=("$2"); shift 2 ;;
        --quiet-pct) QUIET_PCT=$2; shift 2 ;;
        --quiet-wait) QUIET_WAIT=$2; shift 2 ;;
        --retries) RETRIES=$2; shift 2 ;;
        --load-core) LOAD_CORE=$2; shift 2 ;;
        --proxy-core) PROXY_CORE=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-tcp: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

BENCH_NAME=bench-tcp
# log, die, PIDS + cleanup on exit, listening, proc_ticks, core_line,
# wait_quiet, perf_summary
source "$ROOT/scripts/bench/lib.sh"

if [[ $PROFILE == 1 ]]; then
    command -v perf >/dev/null 2>&1 || die "--profile needs perf (linux-perf)"
fi
for cmd in haproxy iperf3 python3 taskset getconf; do
    PATH="$PATH:/usr/sbin" command -v "$cmd" >/dev/null 2>&1 \
        || die "$cmd not found (run scripts/install-peers.sh)"
done
HAPROXY=$(PATH="$PATH:/usr/sbin" command -v haproxy)
ncpu=$(nproc --all)
(( LOAD_CORE < ncpu && PROXY_CORE < ncpu )) || die "cores $LOAD_CORE/$PROXY_CORE: machine has $ncpu"
[[ $LOAD_CORE != "$PROXY_CORE" ]] || die "load and proxy core must differ"
CLK_TCK=$(getconf CLK_TCK)

if [[ $BUILD == 1 ]]; then
    log "building ringway (release)"
    (cd "$ROOT" && cargo build --release -q -p ringway-control)
fi
RINGWAY="$ROOT/target/release/ringway"
[[ -x $RINGWAY ]] || die "$RINGWAY not built"

OUT=${OUT:-"$ROOT/target/bench-tcp/$(date +%Y%m%d-%H%M%S)"}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

read -r -a SYSTEMS <<<"$SYSTEMS_ARG"
for sys in "${SYSTEMS[@]}"; do
    case "$sys" in direct|ringway|haproxy) ;; *) die "unknown system: $sys" ;; esac
done
[[ $SPLICE == 1 ]] && SYSTEMS+=(haproxy-splice)

# --- process bookkeeping: everything started here is stopped on exit (lib.sh) --
RINGWAY_PID="" HAPROXY_PID="" HAPROXY_SPLICE_PID="" IPERF_PID=""

for port in $IPERF_PORT $RINGWAY_PORT $HAPROXY_PORT $HAPROXY_SPLICE_PORT; do
    ! listening "$port" || die "127.0.0.1:$port is already in use"
done

# --- configs --------------------------------------------------------------------
cat >"$OUT/ringway.toml" <<EOF
# ringway for bench-tcp.sh: one worker on core $PROXY_CORE, runtime defaults otherwise.
[runtime]
worker_cores = [$PROXY_CORE]
drain_timeout = "2s"
$(printf '%s\n' "${RINGWAY_RUNTIME[@]}")

[admin]
address = "127.0.0.1:19901"

[[listeners]]
name = "ingress"
address = "127.0.0.1:$RINGWAY_PORT"
protocol = "tcp"
cluster = "app"

[[clusters]]
name = "app"
endpoints = ["127.0.0.1:$IPERF_PORT"]
connect_timeout = "1s"
EOF

haproxy_cfg() { # port splice(0|1)
    cat <<EOF
# HAProxy for bench-tcp.sh: one thread pinned to core $PROXY_CORE, tcp mode, no logs.
global
    nbthread 1
    cpu-map 1/1 $PROXY_CORE
    maxconn 1000
    # no 'log' line: logging off

defaults
    mode tcp
    timeout connect 1s
    timeout client 60s
    timeout server 60s
EOF
    if [[ $2 == 1 ]]; then
        printf '    option splice-request\n    option splice-response\n'
    else
        printf '    # splicing off (HAProxy default: no splice-* option set)\n'
    fi
    cat <<EOF

frontend ingress
    bind 127.0.0.1:$1
    default_backend app

backend app
    server origin 127.0.0.1:$IPERF_PORT
EOF
}
haproxy_cfg $HAPROXY_PORT 0 >"$OUT/haproxy.cfg"
[[ $SPLICE == 1 ]] && haproxy_cfg $HAPROXY_SPLICE_PORT 1 >"$OUT/haproxy-splice.cfg"
"$HAPROXY" -c -q -f "$OUT/haproxy.cfg" || die "haproxy rejects $OUT/haproxy.cfg"

# --- start everything -------------------------------------------------------------
log "results in $OUT"
taskset -c "$LOAD_CORE" iperf3 -s -B 127.0.0.1 -p $IPERF_PORT >"$OUT/iperf3-server.log" 2>&1 &
IPERF_PID=$!; PIDS+=("$IPERF_PID")
wait_listening $IPERF_PORT "$IPERF_PID" "iperf3 server"

taskset -c "$PROXY_CORE" "$RINGWAY" run --config "$OUT/ringway.toml" 2>"$OUT/ringway.log" &
RINGWAY_PID=$!; PIDS+=("$RINGWAY_PID")
for _ in $(seq 100); do
    grep -q '; ready' "$OUT/ringway.log" && break
    kill -0 "$RINGWAY_PID" 2>/dev/null || { cat "$OUT/ringway.log" >&2; die "ringway exited at start"; }
    sleep 0.1
done
grep -q '; ready' "$OUT/ringway.log" || die "ringway not ready after 10s"
wait_listening $RINGWAY_PORT "$RINGWAY_PID" ringway

taskset -c "$PROXY_CORE" "$HAPROXY" -db -f "$OUT/haproxy.cfg" >"$OUT/haproxy.log" 2>&1 &
HAPROXY_PID=$!; PIDS+=("$HAPROXY_PID")
wait_listening $HAPROXY_PORT "$HAPROXY_PID" haproxy
if [[ $SPLICE == 1 ]]; then
    taskset -c "$PROXY_CORE" "$HAPROXY" -db -f "$OUT/haproxy-splice.cfg" >"$OUT/haproxy-splice.log" 2>&1 &
    HAPROXY_SPLICE_PID=$!; PIDS+=("$HAPROXY_SPLICE_PID")
    wait_listening $HAPROXY_SPLICE_PORT "$HAPROXY_SPLICE_PID" haproxy-splice
fi

port_of() {
    case "$1" in
        direct) echo $IPERF_PORT ;; ringway) echo $RINGWAY_PORT ;;
        haproxy) echo $HAPROXY_PORT ;; haproxy-splice) echo $HAPROXY_SPLICE_PORT ;;
    esac
}
pid_of() {
    case "$1" in
        direct) echo "" ;; ringway) echo "$RINGWAY_PID" ;;
        haproxy) echo "$HAPROXY_PID" ;; haproxy-splice) echo "$HAPROXY_SPLICE_PID" ;;
    esac
}
iperf_args=(-c 127.0.0.1 -P "$PARALLEL" --json)
[[ $REVERSE == 1 ]] && iperf_args+=(-R)

run_one() { # system rep duration -> appends one line to runs.tsv (rep 0 = warm-up)
    # A run during which other work used either core (a build, a test), or
    # the hypervisor took the proxy core away, is kept aside in noisy.tsv
    # and redone, up to --retries times.
    local sys=$1 rep=$2 dur=$3 pid port json t0 t1 k0 k1 l0 l1 p0 p1 rc try verdict
    pid=$(pid_of "$sys"); port=$(port_of "$sys")
    for try in $(seq 0 "$RETRIES"); do
        json="$sys-$rep.json"
        [[ $rep == 0 ]] && json="warmup-$sys.json"
        (( try > 0 )) && json="$sys-$rep-retry$try.json"
        [[ -z $pid ]] || kill -0 "$pid" 2>/dev/null || die "$sys is no longer running"
        wait_quiet >/dev/null
        k0=$(proc_ticks "$pid"); l0=$(core_line "$LOAD_CORE"); p0=$(core_line "$PROXY_CORE")
        t0=$(date +%s%N)
        rc=0
        taskset -c "$LOAD_CORE" iperf3 -p "$port" "${iperf_args[@]}" -t "$dur" \
            >"$OUT/$json" 2>>"$OUT/iperf3-client.log" || rc=$?
        t1=$(date +%s%N)
        k1=$(proc_ticks "$pid"); l1=$(core_line "$LOAD_CORE"); p1=$(core_line "$PROXY_CORE")
        [[ $rep == 0 ]] && return 0
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
            "$sys" "$rep" "$json" "$rc" "$((t1 - t0))" "$k0" "$k1" "$l0" "$l1" "$p0" "$p1" \
            >"$OUT/candidate.tsv"
        show_run "$OUT/$json" "$sys" "$rep"
        verdict=0
        python3 "$ROOT/scripts/bench/tcp_report.py" "$OUT" --check candidate.tsv \
            --clk-tck "$CLK_TCK" --proxy-core "$PROXY_CORE" --load-core "$LOAD_CORE" \
            >"$OUT/candidate.why" || verdict=$?
        if [[ $verdict == 3 && $try -lt $RETRIES ]]; then
            log "  run disturbed ($(<"$OUT/candidate.why")): kept aside, redoing it"
            cat "$OUT/candidate.tsv" >>"$OUT/noisy.tsv"
            sleep 5
            continue
        fi
        cat "$OUT/candidate.tsv" >>"$OUT/runs.tsv"
        break
    done
    rm -f "$OUT/candidate.tsv" "$OUT/candidate.why"
}

show_run() { # json system rep -> one progress line on stderr
    python3 - "$@" <<'PY' >&2 || true
import json, sys
path, sysname, rep = sys.argv[1:4]
try:
    d = json.load(open(path))
    if "error" in d:
        print(f"bench-tcp:   {sysname:15s} rep {rep}: ERROR {d['error']}")
    else:
        r = d["end"]["sum_received"]
        print(f"bench-tcp:   {sysname:15s} rep {rep}: {r['bits_per_second']/1e9:6.2f} Gbit/s, {r['bytes']/1e9:6.2f} GB")
except Exception as e:
    print(f"bench-tcp:   {sysname:15s} rep {rep}: unreadable iperf3 output ({e})")
PY
}

: >"$OUT/runs.tsv"
if (( WARMUP > 0 )); then
    log "warm-up: ${WARMUP}s per system (not measured)"
    for sys in "${SYSTEMS[@]}"; do run_one "$sys" 0 "$WARMUP"; sleep 1; done
fi
log "measuring: ${SYSTEMS[*]} x $REPEATS, ${DURATION}s each, -P $PARALLEL$([[ $REVERSE == 1 ]] && echo ', reverse')"
for rep in $(seq "$REPEATS"); do
    for sys in "${SYSTEMS[@]}"; do
        run_one "$sys" "$rep" "$DURATION"
        sleep 1
    done
done

# --- optional profile: one more run per proxy with perf sampling its core ------
if [[ $PROFILE == 1 ]]; then
    prof_secs=$(( DURATION > 4 ? DURATION - 2 : 2 ))
    for sys in "${SYSTEMS[@]}"; do
        [[ $sys == direct ]] && continue
        wait_quiet >/dev/null
        log "profiling $sys: perf record -C $PROXY_CORE -g for ${prof_secs}s of a $((prof_secs + 2))s run"
        taskset -c "$LOAD_CORE" iperf3 -p "$(port_of "$sys")" "${iperf_args[@]}" -t $((prof_secs + 2)) \
            >"$OUT/profile-$sys.json" 2>>"$OUT/iperf3-client.log" &
        client=$!
        sleep 1
        taskset -c "$LOAD_CORE" perf record -q -e cpu-clock -C "$PROXY_CORE" -g -o "$OUT/perf-$sys.data" \
            -- sleep "$prof_secs" >/dev/null 2>>"$OUT/perf.log" || log "perf record failed (see $OUT/perf.log)"
        wait "$client" || true
        perf_summary "$OUT/perf-$sys.data" "$sys" "$PROXY_CORE" >"$OUT/perf-$sys.txt"
    done
fi

# --- stop ringway and read its exit report ---------------------------------------
kill -TERM "$RINGWAY_PID"
ringway_rc=0
wait "$RINGWAY_PID" || ringway_rc=$?
forget_pid "$RINGWAY_PID"
cleanup

{
    echo "# L4 TCP streaming, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    machine_line
    echo "versions: $("$RINGWAY" --version 2>/dev/null | awk 'NR==1'), $("$HAPROXY" -v | awk 'NR==1 {print "HAProxy", $3}'), $(iperf3 --version | awk 'NR==1 {print $1, $2}')"
    tree_line "$ROOT"
    echo "layout: iperf3 client+server on core $LOAD_CORE; proxy on core $PROXY_CORE; ${DURATION}s x $REPEATS interleaved, -P $PARALLEL$([[ $REVERSE == 1 ]] && echo ', reverse (-R)'), CLK_TCK=$CLK_TCK"
    echo "ringway: worker_cores = [$PROXY_CORE], runtime defaults$( ((${#RINGWAY_RUNTIME[@]})) && printf ' except: %s' "$(IFS=';'; echo "${RINGWAY_RUNTIME[*]}")")"
    echo "haproxy: nbthread 1, cpu-map 1/1 $PROXY_CORE, mode tcp, no log, splicing off$([[ $SPLICE == 1 ]] && echo '; haproxy-splice: splice-request + splice-response on')"
    echo
} >"$OUT/report.md"
status=0
systems_arg="${SYSTEMS[*]}"
python3 "$ROOT/scripts/bench/tcp_report.py" "$OUT" --clk-tck "$CLK_TCK" --systems "$systems_arg" \
    --ringway-rc "$ringway_rc" --proxy-core "$PROXY_CORE" --load-core "$LOAD_CORE" \
    >>"$OUT/report.md" || status=$?
cat "$OUT/report.md"
log "raw results and report: $OUT"
exit "$status"
