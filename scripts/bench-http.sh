#!/usr/bin/env bash
# HTTP/1.1 keep-alive benchmark: ringway vs nginx vs HAProxy vs a direct
# connection, side by side in one run, on loopback.
#
# Layout (2-core machine): the origin (an nginx answering `200 ok\n` from
# memory) and the load generator (`ringway-bench load`, closed loop, one
# io_uring thread) on the load core (0);
# the proxy under test on the proxy core (1), one worker each: ringway's
# `worker_cores = [1]`, nginx `worker_processes 1` + `worker_cpu_affinity`,
# HAProxy `nbthread 1` + `cpu-map`, each process also confined by taskset.
# Upstream keep-alive on everywhere, no access logs. Every round runs, for
# each system in turn (direct, ringway, nginx, haproxy), a latency run (1
# connection, closed loop) and a throughput run (-c connections, closed
# loop); rounds are repeated R times so that drift hits every system alike.
# Per run it records the generator's JSON (requests, errors, latency
# percentiles), the proxy's utime+stime (/proc/PID/stat, all threads, nginx's
# workers included), the origin's and the generator's CPU, and the busy time
# of both cores (/proc/stat, softirq included), and prints a Markdown table:
# CPU per request (proxy process, and core busy), added latency p50/p99
# (proxied minus direct, same round), medians with min/max, and the ringway
# ratios against each peer.
#
# Usage: scripts/bench-http.sh [options]
#   -t SECONDS    duration of each throughput run               (default 10)
#   -l SECONDS    duration of each latency run                  (default 5)
#   -r N          repetitions of the interleaved round          (default 3)
#   -c N          connections of the throughput runs            (default 32)
#   -w SECONDS    warm-up run per system, not measured          (default 2)
#   --systems 'A B ...'  which of direct ringway nginx haproxy (default all)
#   --ringway PATH   ringway binary (default $CARGO_TARGET_DIR or target/,
#                 release/ringway); --bench PATH: ringway-bench, likewise
#   --baseline PATH  a second ringway binary (say, the tree before a change,
#                 built into another target directory), run as system
#                 `baseline` with the same config on its own port; the report
#                 then gives ringway / baseline ratios
#   --no-build    use the existing release binaries
#   --out DIR     where raw results go (default target/bench-http/<timestamp>)
#   --load-core N / --proxy-core N   (defaults 0 / 1)
#   --profile     after the measured runs, one more throughput run per proxy
#                 under `perf record -C <proxy core> -g`; reports in the
#                 results dir
#   --quiet-pct P before each run wait (up to --quiet-wait S, default 600) until
#                 both cores were under P% busy for a second (default 5)
#   --retries N   redo a run during which other work used either core, or the
#                 hypervisor descheduled the proxy core, up to N times
#                 (default 4); the discarded runs go to noisy.tsv
# Needs: nginx, haproxy (scripts/install-peers.sh), python3, taskset, curl.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=10
LAT_DURATION=5
REPEATS=3
CONNECTIONS=32
WARMUP=2
SYSTEMS_ARG="direct ringway nginx haproxy"
BUILD=1
OUT=""
PROFILE=0
QUIET_PCT=5
QUIET_WAIT=600
RETRIES=4
LOAD_CORE=0
PROXY_CORE=1
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
RINGWAY="$TARGET_DIR/release/ringway"
BENCH="$TARGET_DIR/release/ringway-bench"
ORIGIN_PORT=18000
RINGWAY_PORT=18080
NGINX_PORT=18081
HAPROXY_PORT=18082
BASELINE_PORT=18083
RINGWAY_ADMIN=127.0.0.1:19911
BASELINE_ADMIN=127.0.0.1:19912
BASELINE=""

usage() { sed -n '2,43p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        -t) DURATION=$2; shift 2 ;;
        -l) LAT_DURATION=$2; shift 2 ;;
        -r) REPEATS=$2; shift 2 ;;
        -c) CONNECTIONS=$2; shift 2 ;;
        -w) WARMUP=$2; shift 2 ;;
        --systems) SYSTEMS_ARG=$2; shift 2 ;;
        --ringway) RINGWAY=$2; shift 2 ;;
        --baseline) BASELINE=$2; shift 2 ;;
        --bench) BENCH=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --out) OUT=$2; shift 2 ;;
        --profile) PROFILE=1; shift ;;
        --quiet-pct) QUIET_PCT=$2; shift 2 ;;
        --quiet-wait) QUIET_WAIT=$2; shift 2 ;;
        --retries) RETRIES=$2; shift 2 ;;
        --load-core) LOAD_CORE=$2; shift 2 ;;
        --proxy-core) PROXY_CORE=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-http: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

BENCH_NAME=bench-http
# log, die, PIDS + cleanup on exit, listening, proc_ticks, core_line,
# wait_quiet, perf_summary
source "$ROOT/scripts/bench/lib.sh"

read -r -a SYSTEMS <<<"$SYSTEMS_ARG"
if [[ -n $BASELINE ]]; then
    [[ -x $BASELINE ]] || die "--baseline $BASELINE: not an executable"
    [[ " ${SYSTEMS[*]} " == *" baseline "* ]] || SYSTEMS+=(baseline)
fi
WANT_RINGWAY=0
for sys in "${SYSTEMS[@]}"; do
    case "$sys" in
        direct|nginx|haproxy) ;;
        baseline) [[ -n $BASELINE ]] || die "system baseline needs --baseline PATH" ;;
        ringway) WANT_RINGWAY=1 ;;
        *) die "unknown system: $sys" ;;
    esac
done

if [[ $PROFILE == 1 ]]; then
    command -v perf >/dev/null 2>&1 || die "--profile needs perf (linux-perf)"
fi
for cmd in nginx haproxy python3 taskset getconf curl; do
    PATH="$PATH:/usr/sbin" command -v "$cmd" >/dev/null 2>&1 \
        || die "$cmd not found (run scripts/install-peers.sh)"
done
NGINX=$(PATH="$PATH:/usr/sbin" command -v nginx)
HAPROXY=$(PATH="$PATH:/usr/sbin" command -v haproxy)
ncpu=$(nproc --all)
(( LOAD_CORE < ncpu && PROXY_CORE < ncpu )) || die "cores $LOAD_CORE/$PROXY_CORE: machine has $ncpu"
[[ $LOAD_CORE != "$PROXY_CORE" ]] || die "load and proxy core must differ"
CLK_TCK=$(getconf CLK_TCK)

if [[ $BUILD == 1 ]]; then
    log "building ringway-bench$( ((WANT_RINGWAY)) && echo ' and ringway') (release)"
    pkgs=(-p ringway-bench)
    ((WANT_RINGWAY)) && pkgs+=(-p ringway-control)
    (cd "$ROOT" && cargo build --release -q "${pkgs[@]}")
fi
[[ -x $BENCH ]] || die "$BENCH not built"
if ((WANT_RINGWAY)); then
    [[ -x $RINGWAY ]] || die "$RINGWAY not built"
fi

OUT=${OUT:-"$ROOT/target/bench-http/$(date +%Y%m%d-%H%M%S)"}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

for port in $ORIGIN_PORT $RINGWAY_PORT $NGINX_PORT $HAPROXY_PORT ${RINGWAY_ADMIN##*:}; do
    ! listening "$port" || die "127.0.0.1:$port is already in use"
done

# --- configs ----------------------------------------------------------------------
# Every proxy forwards the same extra headers to the origin: ringway adds
# x-forwarded-for, x-forwarded-proto, x-forwarded-host and x-request-id by
# default, so nginx and HAProxy are configured to add the same four.

nginx_common() { # dir -> the lines every nginx instance here shares
    cat <<EOF
daemon off;
master_process on;
pid $1/nginx.pid;
error_log $1/error.log warn;
worker_rlimit_nofile 16384;
events {
    worker_connections 4096;
}
EOF
}
nginx_temp_paths() { # dir -> temp paths inside the run dir (the packaged ones need root)
    local t
    for t in client_body proxy fastcgi uwsgi scgi; do
        echo "    ${t}_temp_path $1/$t;"
    done
}

mkdir -p "$OUT/origin" "$OUT/nginx"
cat >"$OUT/origin/nginx.conf" <<EOF
# The origin for bench-http.sh: one nginx worker on the load core (taskset),
# a fixed 3-byte answer from memory, keep-alive without limit, no logs.
worker_processes 1;
$(nginx_common "$OUT/origin")
http {
    access_log off;
$(nginx_temp_paths "$OUT/origin")
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    default_type text/plain;
    server {
        listen 127.0.0.1:$ORIGIN_PORT backlog=4096;
        location / {
            return 200 "ok\n";
        }
    }
}
EOF

affinity_mask=1$(printf '0%.0s' $(seq 1 "$PROXY_CORE"))
cat >"$OUT/nginx/nginx.conf" <<EOF
# nginx under test for bench-http.sh: one worker pinned to core $PROXY_CORE,
# upstream keep-alive, no access log.
worker_processes 1;
worker_cpu_affinity $affinity_mask;
$(nginx_common "$OUT/nginx")
http {
    access_log off;
$(nginx_temp_paths "$OUT/nginx")
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    upstream origin {
        server 127.0.0.1:$ORIGIN_PORT;
        keepalive 64;
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=4096;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$http_host;
            proxy_set_header X-Request-ID \$request_id;
        }
    }
}
EOF

cat >"$OUT/haproxy.cfg" <<EOF
# HAProxy under test for bench-http.sh: one thread pinned to core $PROXY_CORE,
# http mode, keep-alive on both sides, server connections always reused, no logs.
global
    nbthread 1
    cpu-map 1/1 $PROXY_CORE
    maxconn 4096
    # no 'log' line: logging off

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 300s

frontend web
    bind 127.0.0.1:$HAPROXY_PORT
    option forwardfor
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    unique-id-format %{+X}o%Ts%rt
    unique-id-header X-Request-ID
    default_backend origin

backend origin
    server origin 127.0.0.1:$ORIGIN_PORT
EOF

cat >"$OUT/ringway.toml" <<EOF
# ringway for bench-http.sh: one worker on core $PROXY_CORE, runtime defaults
# otherwise. No control_core: the whole process runs under taskset -c $PROXY_CORE
# like the peers (ringway refuses a control core outside its affinity), so
# the control agent, idle during the runs, shares core $PROXY_CORE and its CPU
# counts in ringway's.
[runtime]
worker_cores = [$PROXY_CORE]
drain_timeout = "2s"

[admin]
address = "$RINGWAY_ADMIN"

[[listeners]]
name = "web"
address = "127.0.0.1:$RINGWAY_PORT"
protocol = "http"

  [[listeners.routes]]
  name = "all"
  path_prefix = "/"
  cluster = "origin"

[[clusters]]
name = "origin"
endpoints = ["127.0.0.1:$ORIGIN_PORT"]
# Well above the connections of the throughput runs: every one keeps its
# upstream connection.
pool_max_idle = 256
EOF

# The baseline runs the same config on its own port and admin address.
sed -e "s/127.0.0.1:$RINGWAY_PORT/127.0.0.1:$BASELINE_PORT/" -e "s/$RINGWAY_ADMIN/$BASELINE_ADMIN/" \
    "$OUT/ringway.toml" >"$OUT/baseline.toml"

"$NGINX" -t -q -p "$OUT/origin" -c "$OUT/origin/nginx.conf" 2>"$OUT/origin/check.log" \
    || die "nginx rejects $OUT/origin/nginx.conf: $(cat "$OUT/origin/check.log")"
"$NGINX" -t -q -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf" 2>"$OUT/nginx/check.log" \
    || die "nginx rejects $OUT/nginx/nginx.conf: $(cat "$OUT/nginx/check.log")"
"$HAPROXY" -c -q -f "$OUT/haproxy.cfg" || die "haproxy rejects $OUT/haproxy.cfg"
if ((WANT_RINGWAY)); then
    "$RINGWAY" check "$OUT/ringway.toml" >"$OUT/ringway-check.log" 2>&1 \
        || die "ringway ($RINGWAY) rejects $OUT/ringway.toml (does it have the HTTP proxy?): $(cat "$OUT/ringway-check.log")"
fi

# --- start everything -------------------------------------------------------------
log "results in $OUT"
ORIGIN_PID="" RINGWAY_PID="" NGINX_PID="" HAPROXY_PID="" BASELINE_PID=""

taskset -c "$LOAD_CORE" "$NGINX" -p "$OUT/origin" -c "$OUT/origin/nginx.conf" \
    >"$OUT/origin/stdout.log" 2>&1 &
ORIGIN_PID=$!; PIDS+=("$ORIGIN_PID")
wait_listening $ORIGIN_PORT "$ORIGIN_PID" "origin nginx"

start_ringway() { # binary config log admin port name -> sets STARTED_PID
    taskset -c "$PROXY_CORE" "$1" run --config "$2" 2>"$3" &
    STARTED_PID=$!; PIDS+=("$STARTED_PID")
    local ready=0
    for _ in $(seq 100); do
        if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$4/ready" || true) == 200 ]]; then
            ready=1; break
        fi
        kill -0 "$STARTED_PID" 2>/dev/null || { cat "$3" >&2; die "$6 exited at start"; }
        sleep 0.1
    done
    ((ready)) || die "$6 not ready (GET /ready) after 10s"
    wait_listening "$5" "$STARTED_PID" "$6"
}
if ((WANT_RINGWAY)); then
    start_ringway "$RINGWAY" "$OUT/ringway.toml" "$OUT/ringway.log" "$RINGWAY_ADMIN" $RINGWAY_PORT ringway
    RINGWAY_PID=$STARTED_PID
fi
if [[ -n $BASELINE ]]; then
    start_ringway "$BASELINE" "$OUT/baseline.toml" "$OUT/baseline.log" "$BASELINE_ADMIN" $BASELINE_PORT baseline
    BASELINE_PID=$STARTED_PID
fi
if [[ " ${SYSTEMS[*]} " == *" nginx "* ]]; then
    taskset -c "$PROXY_CORE" "$NGINX" -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf" \
        >"$OUT/nginx/stdout.log" 2>&1 &
    NGINX_PID=$!; PIDS+=("$NGINX_PID")
    wait_listening $NGINX_PORT "$NGINX_PID" nginx
fi
if [[ " ${SYSTEMS[*]} " == *" haproxy "* ]]; then
    taskset -c "$PROXY_CORE" "$HAPROXY" -db -f "$OUT/haproxy.cfg" >"$OUT/haproxy.log" 2>&1 &
    HAPROXY_PID=$!; PIDS+=("$HAPROXY_PID")
    wait_listening $HAPROXY_PORT "$HAPROXY_PID" haproxy
fi

port_of() {
    case "$1" in
        direct) echo $ORIGIN_PORT ;; ringway) echo $RINGWAY_PORT ;; baseline) echo $BASELINE_PORT ;;
        nginx) echo $NGINX_PORT ;; haproxy) echo $HAPROXY_PORT ;;
    esac
}
pid_of() {
    case "$1" in
        direct) echo "" ;; ringway) echo "$RINGWAY_PID" ;; baseline) echo "$BASELINE_PID" ;;
        nginx) echo "$NGINX_PID" ;; haproxy) echo "$HAPROXY_PID" ;;
    esac
}
conns_of() { [[ $1 == lat ]] && echo 1 || echo "$CONNECTIONS"; }
as_ms() { # seconds (fractions allowed) -> a `--duration` for `load` (humantime has no fractions)
    awk -v s="$1" 'BEGIN { printf "%dms\n", s * 1000 }'
}
generate() { # port connections seconds -> `ringway-bench load --json` on stdout
    # Closed loop, one generator thread pinned to the load core (--cores);
    # taskset also keeps its main thread, which only gathers the result,
    # off the proxy core. Exit status: 0 clean, 1 errors, 2 bad options.
    taskset -c "$LOAD_CORE" "$BENCH" load --target "127.0.0.1:$1" \
        --connections "$2" --duration "$(as_ms "$3")" --cores "$LOAD_CORE" \
        --json --progress never
}
children_cpu() { # times-output-file -> user+sys seconds of this shell's waited children
    awk 'NR == 2 { t = 0
        for (i = 1; i <= 2; i++) { split($i, p, "m"); sub(/s$/, "", p[2]); t += p[1] * 60 + p[2] }
        printf "%.3f\n", t }' "$1"
}

run_one() { # system kind(lat|tput) rep duration -> appends one line to runs.tsv (rep 0 = warm-up)
    # A run during which other work used either core, or the hypervisor took
    # the proxy core away, is kept aside in noisy.tsv and redone, up to
    # --retries times.
    local sys=$1 kind=$2 rep=$3 dur=$4 pid port json t0 t1 k0 k1 o0 o1 l0 l1 p0 p1 rc try verdict gen
    pid=$(pid_of "$sys"); port=$(port_of "$sys")
    for try in $(seq 0 "$RETRIES"); do
        json="$sys-$kind-$rep.json"
        [[ $rep == 0 ]] && json="warmup-$sys-$kind.json"
        (( try > 0 )) && json="$sys-$kind-$rep-retry$try.json"
        [[ -z $pid ]] || kill -0 "$pid" 2>/dev/null || die "$sys is no longer running"
        wait_quiet >/dev/null
        k0=$(proc_tree_ticks "$pid"); o0=$(proc_tree_ticks "$ORIGIN_PID")
        l0=$(core_line "$LOAD_CORE"); p0=$(core_line "$PROXY_CORE")
        t0=$(date +%s%N)
        # Between the two `times` nothing but the generator runs as a child
        # of this shell, so their difference is the generator's CPU.
        times >"$OUT/.times0"
        rc=0
        generate "$port" "$(conns_of "$kind")" "$dur" \
            >"$OUT/$json" 2>>"$OUT/bench-client.log" || rc=$?
        times >"$OUT/.times1"
        t1=$(date +%s%N)
        k1=$(proc_tree_ticks "$pid"); o1=$(proc_tree_ticks "$ORIGIN_PID")
        l1=$(core_line "$LOAD_CORE"); p1=$(core_line "$PROXY_CORE")
        gen=$(awk -v a="$(children_cpu "$OUT/.times0")" -v b="$(children_cpu "$OUT/.times1")" \
            'BEGIN { printf "%.3f\n", b - a }')
        if [[ $rep == 0 ]]; then
            [[ $rc == 0 ]] || die "warm-up through $sys failed (see $OUT/$json and $OUT/bench-client.log)"
            return 0
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
            "$sys" "$kind" "$rep" "$json" "$rc" "$((t1 - t0))" "$k0" "$k1" "$o0" "$o1" "$gen" \
            "$l0" "$l1" "$p0" "$p1" >"$OUT/candidate.tsv"
        verdict=0
        python3 "$ROOT/scripts/bench/http_report.py" "$OUT" --check candidate.tsv \
            --clk-tck "$CLK_TCK" --proxy-core "$PROXY_CORE" --load-core "$LOAD_CORE" \
            >"$OUT/candidate.why" || verdict=$?
        log "  $sys $kind rep $rep: $(head -1 "$OUT/candidate.why")"
        if [[ $verdict == 3 && $try -lt $RETRIES ]]; then
            log "  run disturbed: kept aside, redoing it"
            cat "$OUT/candidate.tsv" >>"$OUT/noisy.tsv"
            sleep 5
            continue
        fi
        cat "$OUT/candidate.tsv" >>"$OUT/runs.tsv"
        break
    done
    rm -f "$OUT/candidate.tsv" "$OUT/candidate.why" "$OUT/.times0" "$OUT/.times1"
}

: >"$OUT/runs.tsv"
if (( $(awk -v w="$WARMUP" 'BEGIN { print (w > 0) }') )); then
    log "warm-up: ${WARMUP}s per system (not measured)"
    for sys in "${SYSTEMS[@]}"; do run_one "$sys" tput 0 "$WARMUP"; done
fi
log "measuring: ${SYSTEMS[*]} x $REPEATS; latency runs 1 connection ${LAT_DURATION}s, throughput runs $CONNECTIONS connections ${DURATION}s"
for rep in $(seq "$REPEATS"); do
    for sys in "${SYSTEMS[@]}"; do
        run_one "$sys" lat "$rep" "$LAT_DURATION"
        run_one "$sys" tput "$rep" "$DURATION"
    done
done

# --- optional profile: one more throughput run per proxy with perf sampling its core
if [[ $PROFILE == 1 ]]; then
    prof_secs=$(( DURATION > 4 ? DURATION - 2 : 2 ))
    for sys in "${SYSTEMS[@]}"; do
        [[ $sys == direct ]] && continue
        wait_quiet >/dev/null
        log "profiling $sys: perf record -C $PROXY_CORE -g for ${prof_secs}s of a $((prof_secs + 2))s run"
        generate "$(port_of "$sys")" "$CONNECTIONS" $((prof_secs + 2)) \
            >"$OUT/profile-$sys.json" 2>>"$OUT/bench-client.log" &
        client=$!
        sleep 1
        taskset -c "$LOAD_CORE" perf record -q -e cpu-clock -C "$PROXY_CORE" -g -o "$OUT/perf-$sys.data" \
            -- sleep "$prof_secs" >/dev/null 2>>"$OUT/perf.log" || log "perf record failed (see $OUT/perf.log)"
        wait "$client" || true
        perf_summary "$OUT/perf-$sys.data" "$sys" "$PROXY_CORE" >"$OUT/perf-$sys.txt"
    done
fi

# --- stop ringway (its exit status is part of the report), then the rest --------
ringway_rc=""
if [[ -n $RINGWAY_PID ]]; then
    kill -TERM "$RINGWAY_PID"
    # Its drain_timeout is 2 s: give it 10 s in all, then record the hang.
    for _ in $(seq 100); do kill -0 "$RINGWAY_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$RINGWAY_PID" 2>/dev/null; then
        log "ringway still running 10s after SIGTERM: killing it"
        kill -KILL "$RINGWAY_PID"
        wait "$RINGWAY_PID" 2>/dev/null || true
        ringway_rc=-1
    else
        ringway_rc=0
        wait "$RINGWAY_PID" || ringway_rc=$?
    fi
    forget_pid "$RINGWAY_PID"
fi
cleanup

{
    echo "# HTTP/1.1 keep-alive, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    machine_line
    echo "versions: $( ((WANT_RINGWAY)) && "$RINGWAY" --version 2>/dev/null | awk 'NR==1' | sed 's/$/, /')$("$NGINX" -v 2>&1 | awk -F/ 'NR==1 {print "nginx", $2}'), $("$HAPROXY" -v | awk 'NR==1 {print "HAProxy", $3}')"
    tree_line "$ROOT"
    echo "layout: origin (nginx) + ringway-bench load (closed loop) on core $LOAD_CORE; proxy on core $PROXY_CORE; interleaved x $REPEATS: latency runs 1 connection ${LAT_DURATION}s, throughput runs $CONNECTIONS connections ${DURATION}s; CLK_TCK=$CLK_TCK"
    echo "configs: $OUT/{ringway.toml,nginx/nginx.conf,haproxy.cfg,origin/nginx.conf}"
    echo
} >"$OUT/report.md"
status=0
python3 "$ROOT/scripts/bench/http_report.py" "$OUT" --clk-tck "$CLK_TCK" --systems "${SYSTEMS[*]}" \
    ${ringway_rc:+--ringway-rc "$ringway_rc"} --proxy-core "$PROXY_CORE" --load-core "$LOAD_CORE" \
    >>"$OUT/report.md" || status=$?
cat "$OUT/report.md"
log "raw results and report: $OUT"
exit "$status"
