#!/usr/bin/env python3
"""Scaling past two cores: `artemis-bench` with 1, 2, 4 and 8 server cores, the load generator
on cores of its own, then one table of saturation per core count and scenario.

The servers (registry and no-op, alternating as the benchmark does) get the first N online
cores, the load generator as many of the next ones (a load generator core drives about one
server core), and 16 connections per server core. A count whose cores the machine does not have
is skipped and said. Each count's full report is kept as JSON beside the table's.

    python3 bench/scaling.py                       # 1,2,4,8 server cores, 100 000 instances
    python3 bench/scaling.py --counts 1,2 --populations 1000

What the curve should look like and why: docs/benchmarks.md, "Scaling past two cores".
"""

import argparse
import datetime
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def online_cores():
    return sorted(os.sched_getaffinity(0))


def span(cores):
    return f"{cores[0]}-{cores[-1]}" if len(cores) > 1 else str(cores[0])


def run_count(args, cores, n):
    server, loadgen = cores[:n], cores[n:2 * n]
    out = os.path.join(args.out, f"scaling-{n}.json")
    argv = [args.bench, "--server-cores", span(server), "--loadgen-cores", span(loadgen),
            "--populations", args.populations, "--io", "uring", "--cost-batches", "0",
            "--connections", str(16 * n), "--rounds", str(args.rounds), "--json", out]
    print(f"== {n} server core(s) {span(server)}, load generator {span(loadgen)}: "
          f"{' '.join(argv)}", flush=True)
    subprocess.run(argv, check=True)
    with open(out) as f:
        return {"server_cores": server, "loadgen_cores": loadgen, "argv": argv,
                "report": json.load(f)}


def rows(runs):
    """(cores, instances, scenario, no-op rate, registry rate) of every saturation point."""
    for run in runs:
        for transport in run["report"]["transports"]:
            for population in transport["populations"]:
                for point in population["points"]:
                    yield (len(run["server_cores"]), population["instances"], point["scenario"],
                           point["noop"]["rate"], point["registry"]["rate"])


def table(runs):
    points = list(rows(runs))
    one = {(i, s): r for n, i, s, _, r in points if n == 1}
    lines = ["| server cores | instances | scenario | no-op | registry | registry / no-op "
             "| registry / (cores × its 1-core rate) |", "|--:|--:|---|--:|--:|--:|--:|"]
    for n, instances, scenario, noop, registry in points:
        base = one.get((instances, scenario))
        linear = f"{registry / (n * base):.0%}" if base else "-"
        lines.append(f"| {n} | {instances:,} | {scenario} | {noop / 1000:.1f} k/s | "
                     f"{registry / 1000:.1f} k/s | {registry / noop:.0%} | {linear} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", default=os.path.join(ROOT, "target/release/artemis-bench"))
    parser.add_argument("--counts", default="1,2,4,8", help="server core counts (%(default)s)")
    parser.add_argument("--populations", default="100000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    cores = online_cores()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    runs = []
    for n in (int(c) for c in args.counts.split(",")):
        if 2 * n > len(cores):
            print(f"== {n} server core(s): skipped, {len(cores)} online cores hold no "
                  f"{n} for the servers and {n} for the load generator", flush=True)
            continue
        runs.append(run_count(args, cores, n))
    if not runs:
        sys.exit("no core count fits this machine")
    print(f"\nstarted {started}, {len(cores)} online cores, populations {args.populations}\n")
    print(table(runs))
    summary = os.path.join(args.out, "scaling.json")
    with open(summary, "w") as f:
        json.dump({"started": started, "online_cores": cores, "runs": runs}, f, indent=1)
    print(f"\nfigures in {summary}")


if __name__ == "__main__":
    main()
