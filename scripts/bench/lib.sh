# Shared by the comparison scripts (bench-tcp.sh, bench-http.sh): process
# bookkeeping, CPU accounting from /proc, the quiet-machine wait and the perf
# summary. Source it after setting:
#   BENCH_NAME   prefix of log lines, e.g. bench-tcp
#   OUT          results directory (once it exists)
#   LOAD_CORE, PROXY_CORE, QUIET_PCT, QUIET_WAIT   (wait_quiet)
# Every process started in the background is added to PIDS; cleanup (run on
# exit) stops them, TERM first, KILL after 5 s.

log() { echo "$BENCH_NAME: $*" >&2; }
die() { log "error: $*"; exit 1; }

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

forget_pid() { # pid -> drops it from PIDS (after the caller stopped it)
    local rest=() p
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || rest+=("$p"); done
    PIDS=("${rest[@]}")
}

listening() { # port -> true once something listens on 127.0.0.1:port
    local hex
    hex=$(printf '0100007F:%04X' "$1")
    grep -q " $hex 00000000:0000 0A " /proc/net/tcp
}
wait_listening() { # port pid what
    for _ in $(seq 100); do
        listening "$1" && return 0
        kill -0 "$2" 2>/dev/null || die "$3 exited at start (see $OUT)"
        sleep 0.1
    done
    die "$3 not listening on 127.0.0.1:$1 after 10s"
}

proc_ticks() { # pid -> utime+stime of the whole thread group, in clock ticks
    [[ -n $1 ]] || { echo NA; return; }
    local rest
    rest=$(<"/proc/$1/stat")
    rest=${rest##*) }          # drop "pid (comm) "; field 1 is now the state
    awk '{ print $12 + $13 }' <<<"$rest"
}
proc_tree_ticks() { # pid -> proc_ticks of pid plus its live children (nginx's workers)
    [[ -n $1 ]] || { echo NA; return; }
    local sum child
    sum=$(proc_ticks "$1")
    for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        sum=$((sum + $(proc_ticks "$child" 2>/dev/null || echo 0)))
    done
    echo "$sum"
}
core_line() { # core -> its /proc/stat counters, comma-separated
    awk -v c="cpu$1" '$1 == c { $1 = ""; sub(/^ /, ""); gsub(/ /, ","); print; exit }' /proc/stat
}

busy_pct() { # before after (core_line outputs) -> busy percent, integer
    awk -v a="$1" -v b="$2" 'BEGIN {
        n = split(a, x, ","); split(b, y, ",")
        for (i = 1; i <= 8 && i <= n; i++) { d[i] = y[i] - x[i]; t += d[i] }
        busy = d[1] + d[2] + d[3] + d[6] + d[7]
        printf "%d\n", (t > 0 ? 100 * busy / t : 0)
    }'
}
wait_quiet() { # waits until both cores idle; prints the seconds waited
    local waited=0 l0 p0 l1 p1 lb pb
    while :; do
        l0=$(core_line "$LOAD_CORE"); p0=$(core_line "$PROXY_CORE")
        sleep 1
        l1=$(core_line "$LOAD_CORE"); p1=$(core_line "$PROXY_CORE")
        lb=$(busy_pct "$l0" "$l1"); pb=$(busy_pct "$p0" "$p1")
        if (( lb < QUIET_PCT && pb < QUIET_PCT )); then break; fi
        if (( waited == 0 )); then
            log "  machine busy (core $LOAD_CORE ${lb}%, core $PROXY_CORE ${pb}%): waiting for quiet"
        fi
        waited=$((waited + 1))
        if (( waited >= QUIET_WAIT )); then
            log "  still busy after ${QUIET_WAIT}s, running anyway (figures may be skewed)"
            break
        fi
    done
    echo "$waited"
}

perf_summary() { # perf.data system core -> a text summary on stdout
    local data=$1 sys=$2 core=$3
    perf_top() { # lines perf-report-args... (head closing the pipe is fine)
        local n=$1; shift
        perf report -i "$data" --stdio "$@" 2>/dev/null \
            | grep -v '^#' | grep '%' | awk -v n="$n" 'NR <= n' || true
    }
    echo "## $sys: core $core by thread"
    perf_top 10 --no-children --sort comm -g none
    echo
    echo "## $sys: flat profile of core $core (self time)"
    perf_top 50 --no-children --sort dso,sym -g none
    echo
    echo "## $sys: inclusive (children) time, top entries"
    perf_top 60 --children --sort sym -g none
}

machine_line() { # one line describing the machine, for report headers
    echo "machine: $(nproc) cores, kernel $(uname -r), $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
}
tree_line() { # root -> the commit measured, and uncommitted changes if any
    echo "tree: $(git -C "$1" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$1" status --porcelain --untracked-files=no 2>/dev/null | awk '{f = f " " $2} END {if (f != "") print ", uncommitted changes in:" f}')"
}
