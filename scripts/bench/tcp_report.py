#!/usr/bin/env python3
"""Turns the raw samples of scripts/bench-tcp.sh into Markdown tables.

Input: the results directory written by bench-tcp.sh, holding
  runs.tsv        one line per measured run (see COLUMNS below)
  <system>-<rep>.json   iperf3 --json output of that run
  ringway.log     ringway's stderr (its exit report is checked)

Output (stdout): a summary table (medians and min/max per system, and
ringway/haproxy ratios), the ringway exit-report check, and a per-run table.
Exit status 1 when a check fails (ringway copied bytes in userspace, exited
non-zero, or an iperf3 run failed).

Only the standard library is used.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys

COLUMNS = [
    "system",      # direct | ringway | haproxy | haproxy-splice
    "rep",         # 1..R
    "json",        # iperf3 --json output file (relative to the results dir)
    "rc",          # iperf3 exit status
    "wall_ns",     # wall-clock time of the iperf3 client run
    "ticks0",      # proxy utime+stime (clock ticks) before the run, or NA
    "ticks1",      # ... after the run
    "load_cpu0",   # /proc/stat line of the load core before (comma-separated)
    "load_cpu1",   # ... after
    "proxy_cpu0",  # /proc/stat line of the proxy core before
    "proxy_cpu1",  # ... after
]
# A run is "noisy" when its proxy core did work that was not the proxy's, or
# its load core work that was not iperf3's (see NOISE_PCT).

# /proc/stat cpuN fields: user nice system idle iowait irq softirq steal guest guest_nice
# A run whose proxy core was busier than the proxy by more than this share of
# the wall time is flagged: something else ran there.
NOISE_PCT = 10.0
# A run whose proxy core lost more than this share of its clock ticks was
# descheduled by the hypervisor (see load_runs): flagged too.
LOST_PCT = 5.0

USER, NICE, SYSTEM, IDLE, IOWAIT, IRQ, SOFTIRQ, STEAL = range(8)


def cpu_delta(before: str, after: str) -> list[int]:
    a = [int(x) for x in before.split(",")]
    b = [int(x) for x in after.split(",")]
    return [y - x for x, y in zip(a, b)]


def busy(d: list[int]) -> int:
    """Jiffies the core spent doing anything: user, nice, system, irq, softirq.

    guest time is already counted in user; idle, iowait and steal (time the
    hypervisor gave to someone else) are not busy time of this guest."""
    return d[USER] + d[NICE] + d[SYSTEM] + d[IRQ] + d[SOFTIRQ]


def total(d: list[int]) -> int:
    return sum(d[:8])


def load_runs(results: str, clk_tck: int, tsv: str = "runs.tsv") -> list[dict]:
    runs = []
    with open(os.path.join(results, tsv)) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            row = dict(zip(COLUMNS, line.split("\t")))
            run = {"system": row["system"], "rep": int(row["rep"]), "rc": int(row["rc"])}
            run["wall_s"] = int(row["wall_ns"]) / 1e9
            run["error"] = None
            try:
                with open(os.path.join(results, row["json"])) as jf:
                    doc = json.load(jf)
            except (OSError, ValueError) as e:
                doc = {"error": f"unreadable iperf3 output: {e}"}
            if "error" in doc or run["rc"] != 0:
                run["error"] = doc.get("error", f"iperf3 exited {run['rc']}")
                runs.append(run)
                continue
            end = doc["end"]
            recv = end["sum_received"]
            sent = end["sum_sent"]
            run["bytes"] = int(recv["bytes"])
            run["gbit"] = recv["bits_per_second"] / 1e9
            run["retransmits"] = sent.get("retransmits")
            gb = run["bytes"] / 1e9
            if row["ticks0"] != "NA":
                ticks = int(row["ticks1"]) - int(row["ticks0"])
                run["proc_cpu_s"] = ticks / clk_tck
                run["proc_s_per_gb"] = run["proc_cpu_s"] / gb
            else:
                run["proc_cpu_s"] = None
                run["proc_s_per_gb"] = None
            pd = cpu_delta(row["proxy_cpu0"], row["proxy_cpu1"])
            ld = cpu_delta(row["load_cpu0"], row["load_cpu1"])
            run["core_busy_s"] = busy(pd) / clk_tck
            run["core_s_per_gb"] = run["core_busy_s"] / gb
            run["core_softirq_s_per_gb"] = pd[SOFTIRQ] / clk_tck / gb
            run["core_busy_pct"] = 100.0 * busy(pd) / max(total(pd), 1)
            run["load_busy_pct"] = 100.0 * busy(ld) / max(total(ld), 1)
            # Work on the proxy core that is not the proxy's: other processes
            # (a build, a test) would skew every figure of the run.
            foreign = run["core_busy_s"] - (run["proc_cpu_s"] or 0.0)
            run["foreign_pct"] = 100.0 * foreign / max(run["wall_s"], 1e-9)
            # Same on the load core, against iperf3's own CPU figures.
            cpu = end.get("cpu_utilization_percent", {})
            iperf_pct = cpu.get("host_total", 0.0) + cpu.get("remote_total", 0.0)
            run["load_foreign_pct"] = run["load_busy_pct"] - iperf_pct
            # Hidden steal: a busy vCPU that the host deschedules gets no
            # tick, and this guest reports no steal time, so the jiffies of
            # the window fall short of its wall time. The proxy's own CPU
            # time (from the scheduler clock) still counts those gaps.
            wall_ticks = run["wall_s"] * clk_tck
            run["proxy_lost_pct"] = 100.0 * (1 - total(pd) / wall_ticks)
            run["load_lost_pct"] = 100.0 * (1 - total(ld) / wall_ticks)
            run["noisy"] = (run["foreign_pct"] > NOISE_PCT or run["load_foreign_pct"] > NOISE_PCT
                            or run["proxy_lost_pct"] > LOST_PCT)
            runs.append(run)
    return runs


def fmt(v, digits=2):
    if v is None:
        return "–"
    return f"{v:.{digits}f}"


def stat(values: list, digits=2) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "–"
    med = statistics.median(vals)
    if len(vals) == 1:
        return fmt(med, digits)
    return f"{fmt(med, digits)} ({fmt(min(vals), digits)}–{fmt(max(vals), digits)})"


def median(values: list):
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def ringway_report(path: str) -> tuple[list[str], dict]:
    """The per-worker exit lines and their counters summed."""
    lines, sums = [], {}
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return lines, sums
    for line in text.splitlines():
        if re.match(r"ringway: worker \d+ ", line):
            lines.append(line)
            for key, val in re.findall(r"(\w+)=(\d+)\b", line):
                if key in ("core",):
                    continue
                sums[key] = sums.get(key, 0) + int(val)
    return lines, sums


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", help="results directory written by bench-tcp.sh")
    ap.add_argument("--clk-tck", type=int, default=os.sysconf("SC_CLK_TCK"))
    ap.add_argument("--systems", default="direct ringway haproxy",
                    help="order of the rows (space-separated)")
    ap.add_argument("--ringway-rc", type=int, default=None,
                    help="exit status of ringway after SIGTERM")
    ap.add_argument("--proxy-core", default="1")
    ap.add_argument("--load-core", default="0")
    ap.add_argument("--check", metavar="TSV",
                    help="only judge the runs in this file (in the results dir): "
                         "exit 3 if one is noisy, 4 if one failed, else 0")
    args = ap.parse_args()

    if args.check:
        checked = load_runs(args.results, args.clk_tck, args.check)
        if any(r["error"] for r in checked):
            return 4
        for r in checked:
            if r["noisy"]:
                print(f"core {args.proxy_core} not proxy {r['foreign_pct']:.0f}%, "
                      f"core {args.load_core} not iperf3 {r['load_foreign_pct']:.0f}%, "
                      f"core {args.proxy_core} ticks lost {r['proxy_lost_pct']:.0f}%")
                return 3
        return 0

    runs = load_runs(args.results, args.clk_tck)
    order = args.systems.split()
    failed = [r for r in runs if r["error"]]
    ok = [r for r in runs if not r["error"]]
    by_sys = {s: [r for r in ok if r["system"] == s] for s in order}

    pc, lc = args.proxy_core, args.load_core
    out = []
    out.append(
        f"| system | runs | throughput Gbit/s | GB per run | proxy CPU s/GB | "
        f"core {pc} busy s/GB | of which softirq s/GB | core {pc} busy % | core {lc} busy % |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|")
    for s in order:
        rs = by_sys[s]
        out.append(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                s,
                len(rs),
                stat([r["gbit"] for r in rs]),
                stat([r["bytes"] / 1e9 for r in rs], 1),
                stat([r["proc_s_per_gb"] for r in rs], 3),
                stat([r["core_s_per_gb"] for r in rs], 3),
                stat([r["core_softirq_s_per_gb"] for r in rs], 3),
                stat([r["core_busy_pct"] for r in rs], 0),
                stat([r["load_busy_pct"] for r in rs], 0),
            )
        )
    # Ratios of medians, ringway against each HAProxy variant measured.
    for peer in [s for s in order if s.startswith("haproxy")]:
        a, b = by_sys.get("ringway", []), by_sys.get(peer, [])
        if not a or not b:
            continue

        def ratio(key):
            x, y = median([r[key] for r in a]), median([r[key] for r in b])
            if x is None or not y:
                return "–"
            return f"{x / y:.2f}x"

        out.append(
            f"| ringway / {peer} | | {ratio('gbit')} | | **{ratio('proc_s_per_gb')}** | "
            f"**{ratio('core_s_per_gb')}** | {ratio('core_softirq_s_per_gb')} | | |"
        )
    print("\n".join(out))
    print()
    print("Medians, with (min–max) over the runs. GB = 1e9 bytes carried one way "
          "through the proxy (iperf3's received bytes). Ratio rows: ratio of the medians.")

    # Paired ratios: ringway against HAProxy within the same round, which
    # cancels drift slower than one round.
    for peer in [s for s in order if s.startswith("haproxy")]:
        pairs = {}
        for r in ok:
            if r["system"] in ("ringway", peer):
                pairs.setdefault(r["rep"], {})[r["system"]] = r
        rounds = [p for _, p in sorted(pairs.items()) if len(p) == 2]
        if not rounds:
            continue
        def per_round(key):
            vals = [p["ringway"][key] / p[peer][key] for p in rounds
                    if p["ringway"][key] is not None and p[peer][key]]
            return stat(vals) + "x" if vals else "–"
        print()
        print(f"Per-round ratios ringway / {peer} over {len(rounds)} rounds, median (min–max): "
              f"throughput {per_round('gbit')}, proxy CPU per GB {per_round('proc_s_per_gb')}, "
              f"core busy per GB {per_round('core_s_per_gb')}.")

    status = 0
    if os.path.exists(os.path.join(args.results, "noisy.tsv")):
        redone = load_runs(args.results, args.clk_tck, "noisy.tsv")
        print()
        print(f"{len(redone)} run(s) were discarded and redone because other work used a core "
              "meanwhile or the hypervisor took the proxy core away: " + ", ".join(f"{r['system']} rep {r['rep']}" for r in redone) + ".")
    noisy = [r for r in ok if r["noisy"]]
    if noisy:
        print()
        print(f"WARNING: {len(noisy)} run(s) kept although disturbed (other work on a core "
              f"above {NOISE_PCT:.0f}% of the run, or the proxy core lost more than "
              f"{LOST_PCT:.0f}% of its ticks to the hypervisor): "
              + ", ".join(f"{r['system']} rep {r['rep']} ({r['foreign_pct']:.0f}% / "
                          f"{r['load_foreign_pct']:.0f}% / {r['proxy_lost_pct']:.0f}%)" for r in noisy)
              + ". Rerun on a quieter machine.")
    print()
    if failed:
        status = 1
        print(f"FAILED runs: {len(failed)}")
        for r in failed:
            print(f"- {r['system']} rep {r['rep']}: {r['error']}")
        print()

    if "ringway" in order:
        lines, sums = ringway_report(os.path.join(args.results, "ringway.log"))
        through = sum(r["bytes"] for r in by_sys.get("ringway", []))
        print("ringway exit report:")
        print()
        if not lines:
            status = 1
            print("- no per-worker exit line found in ringway.log")
        for line in lines:
            print(f"    {line}")
        if lines:
            copied = sums.get("copied_bytes")
            verdict = "OK" if copied == 0 else "FAIL"
            if copied != 0:
                status = 1
            print()
            print(f"- copied_bytes={copied}: {verdict}")
            moved = sums.get("bytes_from_clients", 0) + sums.get("bytes_from_upstreams", 0)
            print(f"- bytes_from_clients={sums.get('bytes_from_clients')} "
                  f"bytes_from_upstreams={sums.get('bytes_from_upstreams')} "
                  f"(iperf3 payload through ringway in measured runs: {through}; "
                  f"the rest is warm-up, discarded and profile runs, and iperf3's control connections)")
            for key in ("resets", "connect_failures", "connect_timeouts", "accept_errors",
                        "enobufs", "cut_at_drain"):
                if sums.get(key):
                    print(f"- note: {key}={sums[key]}")
            if moved < through:
                status = 1
                print("- FAIL: ringway counted fewer bytes than iperf3 received through it")
        if args.ringway_rc is not None:
            print(f"- ringway exit status after SIGTERM: {args.ringway_rc}"
                  + ("" if args.ringway_rc == 0 else " (FAIL)"))
            if args.ringway_rc != 0:
                status = 1
        print()

    print("Per run:")
    print()
    print(f"| system | rep | Gbit/s | GB | retransmits | proxy CPU s | proxy CPU s/GB | "
          f"core {pc} busy s | core {pc} busy s/GB | core {pc} busy % | core {lc} busy % | "
          f"core {pc} not proxy % | core {lc} not iperf3 % | ticks lost core {pc} / {lc} % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in sorted(ok, key=lambda r: (r["rep"], order.index(r["system"])
                                       if r["system"] in order else 99)):
        print("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {}{} |".format(
            r["system"], r["rep"], fmt(r["gbit"]), fmt(r["bytes"] / 1e9, 2),
            r["retransmits"] if r["retransmits"] is not None else "–",
            fmt(r["proc_cpu_s"]), fmt(r["proc_s_per_gb"], 3),
            fmt(r["core_busy_s"]), fmt(r["core_s_per_gb"], 3),
            fmt(r["core_busy_pct"], 0), fmt(r["load_busy_pct"], 0),
            fmt(r["foreign_pct"], 0), fmt(r["load_foreign_pct"], 0),
            fmt(r["proxy_lost_pct"], 0), fmt(r["load_lost_pct"], 0),
            " (noisy)" if r["noisy"] else ""))
    return status


if __name__ == "__main__":
    sys.exit(main())
