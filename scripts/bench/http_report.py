#!/usr/bin/env python3
"""Turns the raw samples of scripts/bench-http.sh into Markdown tables.

Input: the results directory written by bench-http.sh, holding
  runs.tsv        one line per measured run (see COLUMNS below)
  <system>-<kind>-<rep>.json   `ringway-bench load --json` output of that run
  ringway.log     ringway's stderr (its exit report lines are shown)

Output (stdout): the throughput table (CPU per request, medians and min/max
per system, ringway/peer ratios against the 0.9x bar), the latency table
(p50/p99 with one connection, added latency against direct in the same
round), notes on discarded, disturbed or failed runs, and a per-run table.
Exit status 1 when a run failed (an error response, a generator failure) or
ringway did not exit 0.

The CPU arithmetic and the noise guards are the L4 benchmark's
(tcp_report.py); only the standard library is used.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from tcp_report import (LOST_PCT, NOISE_PCT, SOFTIRQ, busy, cpu_delta, fmt, median,
                        ringway_report, stat, total)

COLUMNS = [
    "system",      # direct | ringway | nginx | haproxy
    "kind",        # lat (1 connection) | tput (-c connections)
    "rep",         # 1..R
    "json",        # ringway-bench load --json output (relative to the results dir)
    "rc",          # its exit status
    "wall_ns",     # wall-clock time of the generator run
    "ticks0",      # proxy utime+stime (clock ticks, nginx workers included) before, or NA
    "ticks1",      # ... after
    "origin0",     # origin nginx utime+stime (clock ticks, workers included) before
    "origin1",     # ... after
    "gen_cpu_s",   # the generator's user+sys CPU seconds over the run
    "load_cpu0",   # /proc/stat line of the load core before (comma-separated)
    "load_cpu1",   # ... after
    "proxy_cpu0",  # /proc/stat line of the proxy core before
    "proxy_cpu1",  # ... after
]

# The bar of the product brief: ringway's CPU per request at most this share
# of each peer's.
BAR = 0.9
PEERS = ("nginx", "haproxy")
# A change may cost at most this share of CPU per request against the tree
# before it (system `baseline`, from `bench-http.sh --baseline`).
BASELINE_BAR = 1.02


def load_runs(results: str, clk_tck: int, tsv: str = "runs.tsv") -> list[dict]:
    runs = []
    with open(os.path.join(results, tsv)) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            row = dict(zip(COLUMNS, line.split("\t")))
            run = {"system": row["system"], "kind": row["kind"], "rep": int(row["rep"]),
                   "rc": int(row["rc"]), "wall_s": int(row["wall_ns"]) / 1e9, "error": None}
            try:
                with open(os.path.join(results, row["json"])) as jf:
                    doc = json.load(jf)
            except (OSError, ValueError) as e:
                doc = {"error": f"unreadable generator output: {e}"}
            if "error" in doc:
                run["error"] = doc["error"]
                runs.append(run)
                continue
            try:
                reqs = int(doc["requests"]["ok"])
                outside = int(doc["requests"]["outside"])
                errors = dict(doc["errors"])
                error_total = int(errors.pop("total"))
            except (KeyError, TypeError, ValueError) as e:
                run["error"] = f"not `ringway-bench load --json` output: {e!r}"
                runs.append(run)
                continue
            run["requests"] = reqs
            run["errors"] = error_total
            if run["rc"] != 0 or run["errors"] or reqs == 0 or doc.get("fatal"):
                kinds = {k: v for k, v in errors.items() if v}
                run["error"] = (f"generator exited {run['rc']}, {run['errors']} errors {kinds}, "
                                f"{reqs} requests; could not run: {doc.get('fatal')}; "
                                f"first: {doc.get('first_errors')}")
                runs.append(run)
                continue
            run["rps"] = float(doc["requests"]["per_second"])
            lat = doc["latency_us"]
            run["p50"], run["p99"], run["p999"] = lat["p50"], lat["p99"], lat["p99_9"]
            # The CPU figures cover the generator's whole life: connecting
            # before the window, the window, and the requests in flight when
            # it closed, which `load` lets finish but counts as `outside`
            # (answered or not), not `ok`: at most one per connection. The
            # proxy served those within the CPU measured, so they are in the
            # divisor with the others; the rate stays `ok` over the window.
            per_req = 1e6 / (reqs + outside)  # seconds -> µs per request
            if row["ticks0"] != "NA":
                run["proc_cpu_s"] = (int(row["ticks1"]) - int(row["ticks0"])) / clk_tck
                run["proc_us"] = run["proc_cpu_s"] * per_req
            else:
                run["proc_cpu_s"] = None
                run["proc_us"] = None
            run["origin_cpu_s"] = (int(row["origin1"]) - int(row["origin0"])) / clk_tck
            run["origin_us"] = run["origin_cpu_s"] * per_req
            run["gen_cpu_s"] = float(row["gen_cpu_s"])
            run["gen_us"] = run["gen_cpu_s"] * per_req
            pd = cpu_delta(row["proxy_cpu0"], row["proxy_cpu1"])
            ld = cpu_delta(row["load_cpu0"], row["load_cpu1"])
            run["core_busy_s"] = busy(pd) / clk_tck
            run["core_us"] = run["core_busy_s"] * per_req
            run["softirq_us"] = pd[SOFTIRQ] / clk_tck * per_req
            run["core_busy_pct"] = 100.0 * busy(pd) / max(total(pd), 1)
            run["load_busy_pct"] = 100.0 * busy(ld) / max(total(ld), 1)
            wall = max(run["wall_s"], 1e-9)
            # Work on the proxy core that is not the proxy's, and on the load
            # core that is neither the origin's nor the generator's: other
            # processes (a build, a test) would skew every figure of the run.
            run["foreign_pct"] = 100.0 * (run["core_busy_s"] - (run["proc_cpu_s"] or 0.0)) / wall
            load_own = run["origin_cpu_s"] + run["gen_cpu_s"]
            run["load_foreign_pct"] = 100.0 * (busy(ld) / clk_tck - load_own) / wall
            # Hidden steal (see tcp_report.py): jiffies short of the wall time.
            # Judged on throughput runs only: in a latency run both cores
            # are idle most of the time, and an idle vCPU that the host
            # parks between requests also misses ticks, with no harm to the
            # figures (latency is measured by the clock, not by ticks).
            wall_ticks = run["wall_s"] * clk_tck
            run["proxy_lost_pct"] = 100.0 * (1 - total(pd) / wall_ticks)
            run["load_lost_pct"] = 100.0 * (1 - total(ld) / wall_ticks)
            run["noisy"] = (run["foreign_pct"] > NOISE_PCT or run["load_foreign_pct"] > NOISE_PCT
                            or (run["kind"] == "tput" and run["proxy_lost_pct"] > LOST_PCT))
            runs.append(run)
    return runs


def ratio_of_medians(a: list[dict], b: list[dict], key: str) -> float | None:
    x, y = median([r[key] for r in a]), median([r[key] for r in b])
    if x is None or not y:
        return None
    return x / y


def paired(ok: list[dict], kind: str, sys_a: str, sys_b: str, fn) -> list[float]:
    """fn(run_a, run_b) for each round where both systems have a good run."""
    rounds = {}
    for r in ok:
        if r["kind"] == kind and r["system"] in (sys_a, sys_b):
            rounds.setdefault(r["rep"], {})[r["system"]] = r
    vals = []
    for _, p in sorted(rounds.items()):
        if len(p) == 2:
            v = fn(p[sys_a], p[sys_b])
            if v is not None:
                vals.append(v)
    return vals


def div(key):
    def f(a, b):
        return a[key] / b[key] if a[key] is not None and b[key] else None
    return f


def diff(key):
    def f(a, b):
        return a[key] - b[key] if a[key] is not None and b[key] is not None else None
    return f


def describe(r: dict) -> str:
    return (f"rps {r['rps']:.0f}, p50 {r['p50']} µs, p99 {r['p99']} µs, "
            f"proxy CPU {fmt(r['proc_us'])} µs/req, core busy {fmt(r['core_us'])} µs/req; "
            f"core not proxy {r['foreign_pct']:.0f}%, load core not origin/generator "
            f"{r['load_foreign_pct']:.0f}%, ticks lost {r['proxy_lost_pct']:.0f}%")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", help="results directory written by bench-http.sh")
    ap.add_argument("--clk-tck", type=int, default=os.sysconf("SC_CLK_TCK"))
    ap.add_argument("--systems", default="direct ringway nginx haproxy",
                    help="order of the rows (space-separated)")
    ap.add_argument("--ringway-rc", type=int, default=None,
                    help="exit status of ringway after SIGTERM (-1: it did not exit)")
    ap.add_argument("--proxy-core", default="1")
    ap.add_argument("--load-core", default="0")
    ap.add_argument("--check", metavar="TSV",
                    help="only judge the runs in this file (in the results dir) and print a "
                         "line about each: exit 3 if one is noisy, 4 if one failed, else 0")
    args = ap.parse_args()

    if args.check:
        checked = load_runs(args.results, args.clk_tck, args.check)
        status = 0
        for r in checked:
            if r["error"]:
                print(f"FAILED: {r['error']}")
                status = 4
            else:
                print(describe(r) + (" (disturbed)" if r["noisy"] else ""))
                if r["noisy"] and status == 0:
                    status = 3
        return status

    runs = load_runs(args.results, args.clk_tck)
    order = args.systems.split()
    failed = [r for r in runs if r["error"]]
    ok = [r for r in runs if not r["error"]]
    tput = {s: [r for r in ok if r["system"] == s and r["kind"] == "tput"] for s in order}
    lat = {s: [r for r in ok if r["system"] == s and r["kind"] == "lat"] for s in order}
    pc, lc = args.proxy_core, args.load_core
    peers = [p for p in PEERS if p in order]
    ratio_peers = peers + (["baseline"] if "baseline" in order else [])

    print("### CPU per request (throughput runs)")
    print()
    print(f"| system | runs | requests/s | proxy CPU µs/req | core {pc} busy µs/req | "
          f"of which softirq µs/req | core {pc} busy % | core {lc} busy % | "
          f"origin CPU µs/req | generator CPU µs/req | p50 µs | p99 µs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in order:
        rs = tput[s]
        print("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            s, len(rs), stat([r["rps"] for r in rs], 0), stat([r["proc_us"] for r in rs]),
            stat([r["core_us"] for r in rs]), stat([r["softirq_us"] for r in rs]),
            stat([r["core_busy_pct"] for r in rs], 0), stat([r["load_busy_pct"] for r in rs], 0),
            stat([r["origin_us"] for r in rs]), stat([r["gen_us"] for r in rs]),
            stat([r["p50"] for r in rs], 0), stat([r["p99"] for r in rs], 0)))
    if "ringway" in order:
        for peer in ratio_peers:
            a, b = tput["ringway"], tput[peer]
            if not a or not b:
                continue

            def r_(key):
                v = ratio_of_medians(a, b, key)
                return "–" if v is None else f"{v:.2f}x"
            print(f"| **ringway / {peer}** | | {r_('rps')} | **{r_('proc_us')}** | "
                  f"**{r_('core_us')}** | {r_('softirq_us')} | | | | | | |")
    print()
    print("Medians, with (min–max) over the runs. CPU per request = CPU seconds over the run / "
          "requests answered (those in flight when the window closed included). "
          "Ratio rows: ratio of the medians.")

    status = 0
    if "ringway" in order:
        print()
        for peer in peers:
            if not tput["ringway"] or not tput[peer]:
                continue
            proc = ratio_of_medians(tput["ringway"], tput[peer], "proc_us")
            core = ratio_of_medians(tput["ringway"], tput[peer], "core_us")
            pp = paired(ok, "tput", "ringway", peer, div("proc_us"))
            pcore = paired(ok, "tput", "ringway", peer, div("core_us"))
            verdict = "met" if proc is not None and core is not None and max(proc, core) <= BAR \
                else "NOT met"
            print(f"- ringway / {peer}, CPU per request: proxy process {fmt(proc)}x, core "
                  f"{pc} busy {fmt(core)}x by medians; per round {stat(pp)}x and {stat(pcore)}x "
                  f"over {len(pp)} rounds. Bar (≤ {BAR}x on both): **{verdict}**.")
        if tput["ringway"] and tput.get("baseline"):
            proc = ratio_of_medians(tput["ringway"], tput["baseline"], "proc_us")
            core = ratio_of_medians(tput["ringway"], tput["baseline"], "core_us")
            pp = paired(ok, "tput", "ringway", "baseline", div("proc_us"))
            pcore = paired(ok, "tput", "ringway", "baseline", div("core_us"))
            verdict = "met" if proc is not None and core is not None \
                and max(proc, core) <= BASELINE_BAR else "NOT met"
            print(f"- ringway / baseline (the tree before), CPU per request: proxy process "
                  f"{fmt(proc)}x, core {pc} busy {fmt(core)}x by medians; per round {stat(pp)}x "
                  f"and {stat(pcore)}x over {len(pp)} rounds. Bar (≤ {BASELINE_BAR}x on both): "
                  f"**{verdict}**.")

    print()
    print("### Latency, 1 connection (latency runs)")
    print()
    print("| system | runs | requests/s | p50 µs | p99 µs | p99.9 µs | added p50 µs | "
          "added p99 µs | proxy CPU µs/req |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in order:
        rs = lat[s]
        if s == "direct":
            add50 = add99 = "–"
        else:
            add50 = stat(paired(ok, "lat", s, "direct", diff("p50")), 0)
            add99 = stat(paired(ok, "lat", s, "direct", diff("p99")), 0)
        print("| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            s, len(rs), stat([r["rps"] for r in rs], 0), stat([r["p50"] for r in rs], 0),
            stat([r["p99"] for r in rs], 0), stat([r["p999"] for r in rs], 0), add50, add99,
            stat([r["proc_us"] for r in rs])))
    print()
    print("Added latency = the proxied percentile minus direct's in the same round; median "
          "(min–max) over the rounds.")

    if os.path.exists(os.path.join(args.results, "noisy.tsv")):
        redone = load_runs(args.results, args.clk_tck, "noisy.tsv")
        print()
        print(f"{len(redone)} run(s) were discarded and redone because other work used a core "
              "meanwhile or the hypervisor took the proxy core away: "
              + ", ".join(f"{r['system']} {r['kind']} rep {r['rep']}" for r in redone) + ".")
    noisy = [r for r in ok if r["noisy"]]
    if noisy:
        print()
        print(f"WARNING: {len(noisy)} run(s) kept although disturbed (other work on a core above "
              f"{NOISE_PCT:.0f}% of the run, or the proxy core lost more than {LOST_PCT:.0f}% "
              "of its ticks): "
              + ", ".join(f"{r['system']} {r['kind']} rep {r['rep']}" for r in noisy)
              + ". Rerun on a quieter machine.")
    if failed:
        status = 1
        print()
        print(f"FAILED runs: {len(failed)}")
        for r in failed:
            print(f"- {r['system']} {r['kind']} rep {r['rep']}: {r['error']}")

    if "ringway" in order:
        lines, _ = ringway_report(os.path.join(args.results, "ringway.log"))
        print()
        print("ringway exit report:")
        print()
        for line in lines:
            print(f"    {line}")
        if not lines:
            print("- no per-worker exit line found in ringway.log")
        if args.ringway_rc is not None:
            rc = ("none: still running 10 s after SIGTERM, killed" if args.ringway_rc == -1
                  else args.ringway_rc)
            print(f"- ringway exit status after SIGTERM: {rc}"
                  + ("" if args.ringway_rc == 0 else " (FAIL)"))
            if args.ringway_rc != 0:
                status = 1

    print()
    print("Per run:")
    print()
    print(f"| system | kind | rep | requests | requests/s | p50 µs | p99 µs | proxy CPU µs/req | "
          f"core {pc} busy µs/req | origin µs/req | generator µs/req | core {pc} busy % | "
          f"core {lc} busy % | core {pc} not proxy % | core {lc} not origin/generator % | "
          f"ticks lost core {pc} / {lc} % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    kinds = ("lat", "tput")
    for r in sorted(ok, key=lambda r: (r["rep"], order.index(r["system"])
                                       if r["system"] in order else 99,
                                       kinds.index(r["kind"]) if r["kind"] in kinds else 9)):
        print("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | "
              "{} / {}{} |".format(
                  r["system"], r["kind"], r["rep"], r["requests"], fmt(r["rps"], 0), r["p50"],
                  r["p99"], fmt(r["proc_us"]), fmt(r["core_us"]), fmt(r["origin_us"]),
                  fmt(r["gen_us"]), fmt(r["core_busy_pct"], 0), fmt(r["load_busy_pct"], 0),
                  fmt(r["foreign_pct"], 0), fmt(r["load_foreign_pct"], 0),
                  fmt(r["proxy_lost_pct"], 0), fmt(r["load_lost_pct"], 0),
                  " (noisy)" if r["noisy"] else ""))
    return status


if __name__ == "__main__":
    sys.exit(main())
