"""The tables of bench/ab.sh's results: medians of the rounds, before and after, in Markdown.

    python3 bench/ab_summary.py [/tmp/artemis-ab]
"""
import collections
import json
import statistics
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.startswith("{")]


def by_key(runs, *fields):
    groups = collections.defaultdict(list)
    for run in runs:
        if "error" in run:
            print("failed run:", run)
            continue
        groups[tuple(run[f] for f in fields)].append(run)
    return groups


def cpu_per_request(run):
    """The server's CPU time across the run (warm-up included) over the requests of that time."""
    return run["cpu_s"] * 1e6 / (run["rate"] * run["wall"])


def saturation(runs):
    groups = by_key(runs, "layout", "scen", "side", "kind")
    print("| layout | scenario | no-op before | registry before | ratio | no-op after | registry after | ratio "
          "| registry after / before | registry p99 before → after | registry CPU per request before → after |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for layout in ("shared", "own"):
        for scen in ("heartbeat", "discover", "reregister"):
            rate, p99, cost = {}, {}, {}
            for side in ("before", "after"):
                for kind in ("noop", "reg"):
                    rs = groups[(layout, scen, side, kind)]
                    rate[side, kind] = statistics.median(r["rate"] for r in rs)
                    p99[side, kind] = statistics.median(r["p99"] for r in rs)
                    cost[side, kind] = statistics.median(cpu_per_request(r) for r in rs)
            print(f"| {layout} | {scen} "
                  f"| {rate['before', 'noop'] / 1e3:.1f} k | {rate['before', 'reg'] / 1e3:.1f} k "
                  f"| {rate['before', 'reg'] / rate['before', 'noop']:.0%} "
                  f"| {rate['after', 'noop'] / 1e3:.1f} k | {rate['after', 'reg'] / 1e3:.1f} k "
                  f"| {rate['after', 'reg'] / rate['after', 'noop']:.0%} "
                  f"| {rate['after', 'reg'] / rate['before', 'reg']:.2f} "
                  f"| {p99['before', 'reg'] / 1e3:.2f} → {p99['after', 'reg'] / 1e3:.2f} ms "
                  f"| {cost['before', 'reg']:.1f} → {cost['after', 'reg']:.1f} µs |")
    steal = [r["steal"] for r in runs if "steal" in r]
    print(f"\nsteal per run: median {100 * statistics.median(steal):.1f} %, most {100 * max(steal):.1f} %")


def low_rate(runs):
    groups = by_key(runs, "layout", "kind", "side")
    print("| layout | server | build | CPU µs per request (rounds) | median | p50 | p99 (rounds) | steal, most |")
    print("|---|---|---|---|--:|--:|---|--:|")
    for layout in ("shared", "own", "own-busy"):
        for kind in ("noop", "reg"):
            for side in ("before", "after"):
                rs = groups.get((layout, kind, side))
                if not rs:  # a run from before the layout existed
                    continue
                cost = [cpu_per_request(r) for r in rs]
                p99 = " / ".join(f"{r['p99'] / 1e3:.2f}" for r in rs)
                print(f"| {layout} | {kind} | {side} | {' / '.join(f'{c:.0f}' for c in cost)} "
                      f"| {statistics.median(cost):.0f} | {statistics.median(r['p50'] for r in rs):.0f} µs "
                      f"| {p99} ms "
                      f"| {100 * max(r['steal'] for r in rs):.0f} % |")


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/artemis-ab"
    saturation(load(out + "/sat.jsonl"))
    print()
    low_rate(load(out + "/low.jsonl"))
