#!/usr/bin/env python3
"""Measures the cluster: how long a register takes to reach a subscriber on another node, what
replicating to two peers costs a node's saturation, and how long a healed partition takes to
converge.

Three measurements, each a subcommand (`all` runs the three in turn):

lag          A 3-node cluster on loopback (every node on --node-cores, default CPU 1, one shard
             each). The load generator prefills --hb-population (3 000) instances spread over
             the three nodes; then, for each rate of --rates (500, 2000 registers/s) and once
             at --try-rate (10 000), on a fresh cluster: background heartbeats over all three
             nodes (`artemis-loadgen --targets A,B,C --scenario heartbeat --prefilled 3000
             --rate 1000/s`, --hb-rate) and meanwhile `artemis-loadgen --targets A,B
             --scenario replication --rate R --duration 10s` (registers on A of --instances
             (10 000) instances beyond the heartbeat population, each timed until its `new`
             change reaches a WebSocket subscriber on B). Reported: register → push on B
             p50/p99/p99.9/max, missing pushes (none within the load generator's 2 s), the
             achieved register and heartbeat rates, and what A's replication dropped.
saturation   One node under test on --server-cores (CPU 1) alone, against the same node
             replicating to two stand-in peers (threads of this script that take every batch
             with Java's success reply and do nothing with it: peers on hosts of their own, as
             far as the node can tell), and to two real peers on --peer-cores (CPU 0),
             alternating, --rounds (3) each, every round on fresh processes: a prefill of 10 000
             instances, then `artemis-loadgen --scenario heartbeat --max --prefilled 10000` and
             `--scenario reregister --max --prefilled 10000`, 5 s after 1 s of warm-up, against
             the node under test only, the load generator on --loadgen-cores (CPU 0). Reported
             per scenario: median replies/s and p99 of each mode, the replicating ones' ratio to
             alone (and each round's), and, from the node's /metrics after each replicating run
             (once its queues are empty, at most 10 s), the instances sent to and dropped for
             the two peers. On two cores, real peers apply every write as well and take the CPU
             the load generator needs: the stand-ins measure the node's own cost.
partition    Two nodes on --node-cores, each reaching the other only through a TCP proxy of
             this script's own (one per node, a thread per direction of each connection, which
             passes bytes or swallows them with the connection left open), --digest-interval
             10s. --partition-repeats (3) times, the k-th after a wait of (k-1)/repeats of
             the digest interval (so the heals fall at different phases of B's comparisons,
             which a repeat would otherwise lock onto): the proxies swallow; 1 000 instances of a
             service of their own are registered on A (directly); B is checked not to list
             them; the partition holds until --hold (8 s) after the last register (beyond the
             5 s replication task TTL and its 1 s request timeout, so replication gives up on
             them and only anti-entropy can carry them); then the proxies pass again and B's
             `POST /api/discovery/service.json` is polled every 50 ms on a keep-alive
             connection until it lists all 1 000. Reported: each convergence time from the
             heal, and what carried the instances (B's anti-entropy counters, A's drops).

    cargo build --release -p artemis -p artemis-loadgen
    python3 bench/cluster.py all
    python3 bench/cluster.py lag --rates 500,2000 --try-rate 0
    python3 bench/cluster.py saturation --rounds 5
    python3 bench/cluster.py partition --partition-repeats 5

The machine is a shared VM: the hypervisor may steal CPU time, and other people's builds and
tests may run beside. Each lag and saturation run first waits (at most --quiet-wait, 300 s) for
a second in which the machine is below --quiet-below (15 %) of a core busy, and records where the
CPU time went during it: each CPU's stolen share (/proc/stat) and the CPU time of the nodes, of
the load generator and of every other process, in percent of one core. A run (for saturation, a
round of one mode) in which other processes took more than --max-others (20 %) of a core, or
the hypervisor stole more than --max-steal (10 %) of a CPU, is redone, at most --redo (3) times;
the discarded runs are kept in the JSON and counted in the output, and a run kept disturbed
after the last redo is said so.

Every server runs with `--region SHA --zone SHAJQ --lease-ttl 1h --rate-limit false` and a
fresh `--data-dir` (removed afterwards), on a free loopback port; a clustered node also gets
`--node-url http://127.0.0.1:PORT/ --cluster-nodes <every node's URL as it reaches them>` and
is waited for until its `cluster/up-registry-nodes.json` lists every node. The script pins
itself (and the partition proxy's threads) to the load generator's cores and each server
process to its cores. It prints one table per measurement and writes the figures, with the
configuration, as JSON to bench/results/cluster/ (not committed), beside the servers' logs and
the load generator's reports.

Python 3.11 standard library only (the raw-socket HTTP client comes from bench/hostile.py, the
tables and a few helpers from bench/management.py); loopback only; every loop is bounded in
count and time, and every server and proxy started is stopped in a finally.
"""

import argparse
import http.server
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # importing hostile.py leaves no bench/__pycache__ behind
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile import Conn, Process, dumps, free_port, health  # noqa: E402
from management import (check_success, core_set, discovery, fmt_ms, fmt_rate,  # noqa: E402
                        print_table, run_measurements, seconds)

REGION, ZONE = "SHA", "SHAJQ"
SERVER_FLAGS = ["--region", REGION, "--zone", ZONE, "--lease-ttl", "1h", "--rate-limit", "false"]
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "cluster")

REGISTER_PATH = "/api/registry/register.json"
UP_NODES_PATH = "/api/cluster/up-registry-nodes.json"
NODE_STATUS_PATH = "/api/status/node.json"

START_S = 60.0            # longest wait for a cluster to be up, each node seeing every node up
SETTLE_S = 10.0           # longest wait for a node's replication queues to empty
LOADGEN_SLACK_S = 180     # beyond --warmup + --duration: the prefill and the start
HB_MARGIN_S = 8           # the background heartbeats run this much longer than a lag run
HB_LEAD_S = 2.0           # ... and start this long before it (their warm-up is 1 s)
POLL_S = 0.05             # partition: B is polled every 50 ms
CONVERGE_S = 60.0         # partition: longest wait for B to list every instance
PARTITION_INSTANCES = 1000
REGISTER_BATCH = 100


# ---------------------------------------------------------------- servers

def url_of(port):
    return f"http://127.0.0.1:{port}/"


class ClusterNode(Process):
    """An `artemis server` on `port` (chosen before any node starts, since every node lists every
    other), pinned to `cores`, with a fresh data directory; `cluster` is the list of node URLs as
    this node reaches them (its own first-class URL among them), or None for a node alone."""

    def __init__(self, args, tag, port, cores, cluster=None, flags=()):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.node_url = url_of(port)
        self.expected = len(cluster) if cluster else 1
        self.data_dir = tempfile.mkdtemp(prefix=f"artemis-{tag}-")
        self.log_path = os.path.join(args.out, f"{tag}.log")
        argv = [args.bin, "server", "--addr", f"127.0.0.1:{port}", *SERVER_FLAGS,
                "--cores", cores, "--data-dir", self.data_dir]
        if cluster:
            argv += ["--node-url", self.node_url, "--cluster-nodes", ",".join(cluster)]
        argv += list(flags)
        self.command = " ".join(argv)
        cpus = core_set(cores)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         preexec_fn=lambda: os.sched_setaffinity(0, cpus))

    def check_alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.url} exited {self.proc.returncode}: {self.log_tail()}")

    def ready(self):
        """Whether the node answers /health, says `up`, and lists every node up."""
        if health(self.port, timeout=1.0)[1] != 200:
            return False
        try:
            conn = Conn(self.port, timeout=2.0)
            try:
                status = conn.request("POST", NODE_STATUS_PATH, "{}").json() or {}
                if (status.get("nodeStatus") or {}).get("status") != "up":
                    return False
                return len(up_nodes(conn)) >= self.expected
            finally:
                conn.close()
        except (OSError, EOFError, ValueError):
            return False

    def stop(self):
        super().stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def up_nodes(conn):
    body = dumps({"regionId": REGION, "zoneId": ZONE})
    reply = conn.request("POST", UP_NODES_PATH, body).json() or {}
    return [n.get("url") for n in reply.get("nodes") or []]


def await_ready(nodes):
    """Until every node is up and sees every node up; fails after START_S."""
    deadline = time.monotonic() + START_S
    pending = list(nodes)
    while pending:
        for node in pending:
            node.check_alive()
        pending = [n for n in pending if not n.ready()]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"not up, seeing every node up, within {START_S:.0f} s: "
                               f"{', '.join(n.url for n in pending)} ({pending[0].log_tail()})")
        time.sleep(0.2)


class Nodes:
    """Nodes started together and stopped together on leaving the `with`."""

    def __init__(self):
        self.nodes = []

    def add(self, node):
        self.nodes.append(node)
        return node

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for node in self.nodes:
            node.stop()


def start_cluster(args, nodes, tag, cores_of, flags=()):
    """Len(cores_of) nodes listing each other (direct links); returns them once ready."""
    ports = [free_port() for _ in cores_of]
    urls = [url_of(p) for p in ports]
    started = [nodes.add(ClusterNode(args, f"{tag}-{'ABCDEFGH'[i]}", port, cores, urls, flags))
               for i, (port, cores) in enumerate(zip(ports, cores_of))]
    await_ready(started)
    return started


class PeerSink:
    """A stand-in for a peer on a host of its own: it answers `status/node.json` `up`, gives an
    empty registry to the join copy (and 404 to the digest, as a Java node does), and takes every
    replication batch with Java's success reply after reading its body, doing nothing with it. A
    node replicating to two of these does all of its own replication work (the updates, their
    gzipped batches, the requests, settling each instance by the reply) while its peers cost this
    machine little: on two shared cores, real peers apply every write too and take the CPU the
    load generator needs to saturate the node."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # The head and the body go out in two writes: with Nagle's algorithm the body would wait
        # for the node's delayed ACK of the head (40 ms a batch).
        disable_nagle_algorithm = True

        def log_message(self, *_):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            name = self.path.rsplit("/", 1)[-1]
            ok = {"errorCode": "success", "message": "", "status": "success"}  # Java's SUCCESS_STATUS
            if name == "node.json":
                reply = {"nodeStatus": {
                    "node": {"url": self.server.url,
                             "zone": {"metadata": None, "regionId": REGION, "zoneId": ZONE}},
                    "status": "up", "canServiceDiscovery": True, "canServiceRegistry": True,
                    "allowRegistryFromOtherZone": True, "allowDiscoveryFromOtherZone": True},
                    "responseStatus": ok}
            elif name == "services.json":
                reply = {"services": [], "responseStatus": ok}
            elif name in ("register.json", "heartbeat.json", "unregister.json"):
                reply = {"failedInstances": None, "responseStatus": ok}
            else:
                self.send_error(404)
                return
            body = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def __init__(self):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PeerSink.Handler)
        self.server.daemon_threads = True
        self.url = url_of(self.server.server_address[1])
        self.server.url = self.url
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- the load generator

def loadgen_argv(args, tag, targets, flags):
    report_path = os.path.join(args.out, f"{tag}.json")
    where = ["--targets", ",".join(targets)] if len(targets) > 1 else ["--target", targets[0]]
    argv = [args.loadgen, *where, "--region", REGION, "--zone", ZONE,
            "--cores", args.loadgen_cores, "--connections", str(args.connections),
            "--quiet", "--json", report_path, *map(str, flags)]
    return argv, report_path


def loadgen_limit(flags):
    """How long a run with these flags may take."""
    duration = seconds(flags[flags.index("--duration") + 1]) if "--duration" in flags else 10
    warmup = seconds(flags[flags.index("--warmup") + 1]) if "--warmup" in flags else 1
    return duration + warmup + LOADGEN_SLACK_S


def read_report(argv, done_rc, stderr, report_path):
    if done_rc not in (0, 1):  # 1: an SLO violated (none is asked for)
        raise RuntimeError(f"artemis-loadgen exited {done_rc}: {stderr.strip()[-300:]} "
                           f"({' '.join(argv)})")
    with open(report_path) as f:
        return json.load(f)


def loadgen(args, tag, targets, flags):
    """Runs the load generator (on the load generator's cores); returns its JSON report."""
    argv, report_path = loadgen_argv(args, tag, targets, flags)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=loadgen_limit(flags))
    return read_report(argv, done.returncode, done.stderr, report_path)


class Background:
    """The load generator running beside another measurement; `report()` waits for it."""

    def __init__(self, args, tag, targets, flags):
        self.argv, self.report_path = loadgen_argv(args, tag, targets, flags)
        self.limit = loadgen_limit(flags)
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=self.err)
        self.started = time.monotonic()

    def report(self):
        left = max(1.0, self.limit - (time.monotonic() - self.started))
        self.proc.wait(timeout=left)
        self.ended = time.monotonic()
        self.err.seek(0)
        return read_report(self.argv, self.proc.returncode,
                           self.err.read().decode(errors="replace"), self.report_path)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.err.close()


def op_of(report, name):
    for op in report["ops"]:
        if op["op"] == name:
            return op
    raise RuntimeError(f"no {name} row in the load generator's report")


# ---------------------------------------------------------------- /metrics

def metrics(port):
    """The node's /metrics as {(name, ((label, value), ...)): value}."""
    conn = Conn(port, timeout=5.0)
    try:
        reply = conn.request("GET", "/metrics")
    finally:
        conn.close()
    out = {}
    for line in reply.body.decode(errors="replace").splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, labels = head.partition("{")
        pairs = []
        for part in labels.rstrip("}").split(",") if labels else []:
            key, _, val = part.partition("=")
            pairs.append((key, val.strip('"')))
        try:
            out[(name, tuple(sorted(pairs)))] = float(value)
        except ValueError:
            pass
    return out


def total(figures, name, **labels):
    """The sum of the series of `name` whose labels include `labels`."""
    return sum(v for (n, ls), v in figures.items()
               if n == name and all(dict(ls).get(k) == want for k, want in labels.items()))


def replication_counters(figures, peer=None):
    """What the node's replication did (to `peer`, or to every peer): sent, coalesced, retried
    by kind, dropped by kind and reason, failed requests; and the queue now."""
    by = {} if peer is None else {"peer": peer}
    out = {"failed_requests": total(figures, "artemis_replication_failed_requests_total", **by),
           "queue_instances": total(figures, "artemis_replication_queue_instances", **by)}
    for kind in ("register", "heartbeat", "unregister"):
        for what in ("sent", "coalesced", "retried"):
            out[f"{what}_{kind}"] = total(figures, f"artemis_replication_{what}_total",
                                          kind=kind, **by)
        for why in ("full", "ttl", "permanent"):
            out[f"dropped_{kind}_{why}"] = total(figures, "artemis_replication_dropped_total",
                                                 kind=kind, reason=why, **by)
    out["dropped"] = total(figures, "artemis_replication_dropped_total", **by)
    return out


def counters_delta(after, before):
    return {k: v - before.get(k, 0) if not k.startswith("queue") else v for k, v in after.items()}


def settled_counters(port, peer=None):
    """The replication counters once the node's queues are empty (at most SETTLE_S); with the
    seconds waited and whether they emptied."""
    start = time.monotonic()
    while True:
        figures = metrics(port)
        counters = replication_counters(figures, peer)
        waited = time.monotonic() - start
        if counters["queue_instances"] == 0 or waited > SETTLE_S:
            counters["settle_s"] = round(waited, 2)
            return counters
        time.sleep(0.1)


def active_instances(port):
    return total(metrics(port), "artemis_active_instances")


def await_instances(nodes, count):
    """Until every node holds at least `count` instances (at most START_S)."""
    deadline = time.monotonic() + START_S
    while True:
        held = [active_instances(n.port) for n in nodes]
        if all(h >= count for h in held):
            return held
        if time.monotonic() > deadline:
            raise RuntimeError(f"the nodes hold {held} instances, not {count}, after {START_S} s")
        time.sleep(0.2)


# ---------------------------------------------------------------- the shared VM

def cpu_snapshot():
    """Each CPU's times from /proc/stat in clock ticks: {"cpu0": [user, nice, system, idle,
    iowait, irq, softirq, steal], ...}."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if name.startswith("cpu") and name != "cpu":
                out[name] = [int(x) for x in fields[:8]]
    return out


def busy_ticks(times):
    user, nice, system, _idle, _iowait, irq, softirq, _steal = times
    return user + nice + system + irq + softirq


def process_cpu_s(pid):
    """User + system CPU seconds of process `pid` so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def children_cpu_s():
    """User + system CPU seconds of this script's children that have exited (the load
    generator's runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


TICK = os.sysconf("SC_CLK_TCK")


class Usage:
    """Where the machine's CPU time went between its start and `done()`: the share of each CPU
    the hypervisor stole (a shared VM), the CPU time of each named process group (`live`:
    {name: [pid, ...]}, running throughout) and of the load generator runs that exited
    meanwhile (`loadgen`), and the rest (`others`: every other process on the machine, other
    people's builds and tests among them), each in percent of one core over the wall time."""

    def __init__(self, live):
        self.live = live
        self.cpus, self.wall = cpu_snapshot(), time.monotonic()
        self.used = {name: sum(map(process_cpu_s, pids)) for name, pids in live.items()}
        self.children = children_cpu_s()

    def done(self):
        wall = time.monotonic() - self.wall
        cpus = cpu_snapshot()
        steal, busy_s = {}, 0.0
        for cpu, now in cpus.items():
            then = self.cpus.get(cpu, now)
            spent = sum(now) - sum(then)
            steal[cpu] = round(100.0 * (now[7] - then[7]) / spent, 1) if spent else 0.0
            busy_s += (busy_ticks(now) - busy_ticks(then)) / TICK
        used = {name: sum(map(process_cpu_s, pids)) - self.used[name]
                for name, pids in self.live.items()}
        used["loadgen"] = used.get("loadgen", 0.0) + children_cpu_s() - self.children
        used["others"] = max(0.0, busy_s - sum(used.values()))
        return {"wall_s": round(wall, 2), "steal_percent": steal,
                "busy_percent": {k: round(100 * v / wall, 1) for k, v in used.items()}}


def await_quiet(args):
    """Waits (at most --quiet-wait seconds) until the machine's busy CPU time over one second
    is below --quiet-below percent of one core (this script's idle servers count too); returns
    {"waited_s", "busy_percent" of the last second, "quiet"}."""
    start = time.monotonic()
    while True:
        before = cpu_snapshot()
        time.sleep(1.0)
        after = cpu_snapshot()
        busy = sum(busy_ticks(after[c]) - busy_ticks(before[c]) for c in after) / TICK
        waited = time.monotonic() - start
        if 100 * busy < args.quiet_below or waited >= args.quiet_wait:
            return {"waited_s": round(waited, 1), "busy_percent": round(100 * busy, 1),
                    "quiet": 100 * busy < args.quiet_below}


def disturbance(usages):
    """(the largest share of a core other processes took, the largest share of a CPU the
    hypervisor stole) over the runs' `usage` records."""
    return (max(u["busy_percent"]["others"] for u in usages),
            max(max(u["steal_percent"].values()) for u in usages))


def redone(args, what, attempt, usages_of):
    """`attempt()` again while it was disturbed: other processes on the machine took more than
    --max-others percent of a core, or the hypervisor stole more than --max-steal percent of a
    CPU, during it (`usages_of(result)`: its runs' `usage` records); at most --redo more times.
    Returns (the last result, the discarded ones)."""
    discarded = []
    while True:
        result = attempt()
        others, steal = disturbance(usages_of(result))
        disturbed = others > args.max_others or steal > args.max_steal
        if not disturbed or len(discarded) >= args.redo:
            if disturbed:
                print(f"  {what}: other processes took {others:.0f} % of a core, the hypervisor "
                      f"{steal:.0f} % of a CPU; kept after {len(discarded)} redos", flush=True)
            return result, discarded
        print(f"  {what}: other processes took {others:.0f} % of a core, the hypervisor "
              f"{steal:.0f} % of a CPU; redone", flush=True)
        discarded.append(result)
        await_quiet(args)


def fmt_steal(shares):
    return " / ".join(f"{shares[c]:.0f} %" for c in sorted(shares))


def fmt_busy(busy, names):
    return " / ".join(f"{busy.get(n, 0):.0f} %" for n in names)


# ---------------------------------------------------------------- 1. lag

def lag_at(args, rate, tag):
    """On a fresh 3-node cluster: background heartbeats over the three, a replication run A → B."""
    result = {"rate": rate}
    with Nodes() as nodes:
        a, b, c = start_cluster(args, nodes, tag, [args.node_cores] * 3)
        result["servers"] = [n.command for n in (a, b, c)]
        everyone = [n.url for n in (a, b, c)]
        prefill = loadgen(args, f"{tag}-prefill", everyone, [
            "--scenario", "heartbeat", "--prefill", args.hb_population, "--rate", args.hb_rate,
            "--duration", "1s", "--warmup", "0s"])
        result["prefill_s"] = (prefill.get("prefill") or {}).get("seconds")
        result["instances_held_after_prefill"] = await_instances((a, b, c), args.hb_population)
        before = replication_counters(metrics(a.port))
        quiet = await_quiet(args)
        rep_duration = seconds(args.duration)
        hb = Background(args, f"{tag}-heartbeat", everyone, [
            "--scenario", "heartbeat", "--prefilled", args.hb_population, "--rate", args.hb_rate,
            "--duration", f"{rep_duration + seconds(args.warmup) + HB_MARGIN_S:g}s",
            "--warmup", "1s"])
        try:
            time.sleep(HB_LEAD_S)
            rep_started = time.monotonic()
            usage = Usage({"nodes": [n.proc.pid for n in (a, b, c)], "loadgen": [hb.proc.pid]})
            report = loadgen(args, tag, [a.url, b.url], [
                "--scenario", "replication", "--rate", rate, "--duration", args.duration,
                "--warmup", args.warmup, "--prefilled", args.hb_population,
                "--instances", args.instances])
            rep_ended, usage = time.monotonic(), usage.done()
            hb_report = hb.report()
        finally:
            hb.stop()
        after = settled_counters(a.port)
        for node in (a, b, c):
            node.check_alive()
    register, push = op_of(report, "register"), op_of(report, "push")
    heartbeat = op_of(hb_report, "heartbeat")
    result.update({
        "asked_rate": report["asked_rate"], "achieved_rate": report["achieved_rate"],
        "register": {"rate": register["rate"], "ok": register["ok"], "failed": register["failed"],
                     "failures": register["failures"], "latency_us": register["latency_us"]},
        "push": {"ok": push["ok"], "missing": push["failed"], "failures": push["failures"],
                 "latency_us": push["latency_us"]},
        "heartbeat": {"asked_rate": hb_report["asked_rate"],
                      "achieved_rate": hb_report["achieved_rate"], "ok": heartbeat["ok"],
                      "failed": heartbeat["failed"], "failures": heartbeat["failures"],
                      "latency_us": heartbeat["latency_us"]},
        # The heartbeats' measured time (after their 1 s warm-up) covers the replication run
        # when they started HB_LEAD_S before it and ended after it.
        "heartbeats_covered_the_run": hb.ended > rep_ended
                                      and rep_started - hb.started >= 1.0,
        "replication_from_a": counters_delta(after, before),
        "usage": usage,
        "quiet_before": quiet,
    })
    return result


def lag(args):
    rates = list(args.rates) + ([args.try_rate] if args.try_rate else [])
    results = []
    discarded = []
    for rate in rates:
        r, thrown = redone(args, f"lag at {rate}/s", lambda: lag_at(args, rate, f"lag-{rate}"),
                           lambda r: [r["usage"]])
        r["redone"] = len(thrown)
        results.append(r)
        discarded += thrown
        p = r["push"]["latency_us"] or {}
        print(f"  {rate}/s registers: push p99 {fmt_ms((p.get('p99') or 0) / 1000)}, "
              f"missing {r['push']['missing']}", flush=True)
    rows = []
    for r in results:
        p = r["push"]["latency_us"] or {}
        reg = r["register"]["latency_us"] or {}
        rep = r["replication_from_a"]
        rows.append([
            f"{r['rate']:,}/s" + ("" if r["rate"] in args.rates else " (once)"),
            fmt_rate(r["register"]["rate"]),
            fmt_rate(r["heartbeat"]["achieved_rate"]),
            *(fmt_ms(p[k] / 1000) if p.get(k) is not None else "-"
              for k in ("p50", "p99", "p999", "max")),
            f"{r['push']['missing']:,} of {r['push']['ok'] + r['push']['missing']:,}",
            fmt_ms(reg["p99"] / 1000) if reg.get("p99") is not None else "-",
            r["register"]["failed"] + r["heartbeat"]["failed"],
            f"{rep['dropped']:.0f}", fmt_steal(r["usage"]["steal_percent"]),
            fmt_busy(r["usage"]["busy_percent"], ("nodes", "loadgen", "others"))])
    print_table(
        "replication lag: register on A → `new` pushed to a subscriber on B (3 nodes)",
        ["registers asked", "achieved", "heartbeats (all 3 nodes)", "push p50", "p99", "p99.9",
         "max", "missing pushes", "register reply p99", "failed requests", "A's drops",
         "stolen CPU 0 / 1", "busy nodes / loadgens / others"],
        rows,
        [f"Every node `--cores {args.node_cores}`; the load generators `--cores "
         f"{args.loadgen_cores}`. Heartbeats: `artemis-loadgen --targets A,B,C --scenario "
         f"heartbeat --prefilled {args.hb_population} --rate {args.hb_rate}` (after a prefill of "
         f"{args.hb_population:,} over the three); registers: `artemis-loadgen --targets A,B "
         f"--scenario replication --rate R --duration {args.duration} --warmup {args.warmup} "
         f"--prefilled {args.hb_population} --instances {args.instances} --connections "
         f"{args.connections}`; a fresh cluster for each rate. A missing push: none within 2 s. "
         f"A's drops: instances A's replication dropped for B and C during the run. Stolen: "
         f"the share of each CPU's time the hypervisor gave to other guests during the run "
         f"(/proc/stat steal). Busy: CPU time during the replication run in percent of one "
         f"core, of the three nodes, of the two load generators, and of every other process "
         f"on the machine."])
    print(f"\nRuns redone because other processes took more than {args.max_others:.0f} % of a "
          f"core or the hypervisor more than {args.max_steal:.0f} % of a CPU: {len(discarded)}.")
    for r in results:
        if not r["quiet_before"]["quiet"]:
            print(f"note: at {r['rate']}/s the machine was not quiet before the run "
                  f"({r['quiet_before']['busy_percent']:.0f} % of a core busy)")
        if not r["heartbeats_covered_the_run"]:
            print(f"note: at {r['rate']}/s the heartbeats did not cover the whole replication run")
    return {"runs": results, "discarded": discarded}


# ---------------------------------------------------------------- 2. saturation

def saturation_round(args, mode, r):
    """One round on fresh processes: heartbeat then reregister saturation of the node under test,
    `alone`, `clustered` with two real peers, or replicating to two `sinks`."""
    tag = f"saturation-{mode}-{r}"
    runs = {}
    with Nodes() as nodes:
        if mode == "clustered":
            node, *peers = start_cluster(args, nodes, tag,
                                         [args.server_cores, args.peer_cores, args.peer_cores])
            peer_pids = [p.proc.pid for p in peers]
        elif mode == "sinks":
            sinks = [nodes.add(PeerSink()) for _ in range(2)]
            port = free_port()
            cluster = [url_of(port)] + [sink.url for sink in sinks]
            node = nodes.add(ClusterNode(args, tag, port, args.server_cores, cluster))
            await_ready([node])
            peer_pids = [os.getpid()]
        else:
            node = nodes.add(ClusterNode(args, tag, free_port(), args.server_cores))
            await_ready([node])
            peer_pids = []
        clustered = mode != "alone"
        command = node.command
        loadgen(args, f"{tag}-prefill", [node.url], [
            "--scenario", "heartbeat", "--prefill", args.population, "--rate", "1000/s",
            "--duration", "1s", "--warmup", "0s"])
        for scenario in ("heartbeat", "reregister"):
            before = replication_counters(metrics(node.port)) if clustered else None
            quiet = await_quiet(args)
            usage = Usage({"node": [node.proc.pid], "peers": peer_pids})
            report = loadgen(args, f"{tag}-{scenario}", [node.url], [
                "--scenario", scenario, "--max", "--prefilled", args.population,
                "--duration", args.sat_duration, "--warmup", args.sat_warmup])
            tot = report["total"]
            # Busy: CPU time over the load generator's whole run (its warm-up too), in percent
            # of one core: a node near 100 % less what was stolen is saturated.
            run = {"rate": report["achieved_rate"], "p99_us": (tot["latency_us"] or {}).get("p99"),
                   "failed": tot["failed"], "failures": tot["failures"],
                   "usage": usage.done(), "quiet_before": quiet}
            if clustered:
                run["replication"] = counters_delta(settled_counters(node.port), before)
            node.check_alive()
            runs[scenario] = run
    return command, runs


SATURATION_MODES = ("alone", "sinks", "clustered")
REPLICATING = SATURATION_MODES[1:]


def saturation(args):
    rounds = {mode: [] for mode in SATURATION_MODES}
    commands = {}
    discarded = []
    for r in range(1, args.rounds + 1):
        for mode in SATURATION_MODES:
            (commands[mode], runs), thrown = redone(
                args, f"round {r} {mode}", lambda: saturation_round(args, mode, r),
                lambda done: [run["usage"] for run in done[1].values()])
            discarded += [{"round": r, "mode": mode, "runs": t[1]} for t in thrown]
            rounds[mode].append(runs)
            print(f"  round {r}/{args.rounds} {mode}: " + ", ".join(
                f"{sc} {fmt_rate(runs[sc]['rate'])} (stolen "
                f"{fmt_steal(runs[sc]['usage']['steal_percent'])}, others "
                f"{runs[sc]['usage']['busy_percent']['others']:.0f} %)"
                for sc in ("heartbeat", "reregister")), flush=True)
    result = {"rounds": rounds, "servers": commands, "scenarios": {}, "discarded": discarded}
    rows, repl_rows, round_rows = [], [], []
    for scenario in ("heartbeat", "reregister"):
        s = {}
        for mode in SATURATION_MODES:
            runs = [rd[scenario] for rd in rounds[mode]]
            rates = [x["rate"] for x in runs]
            s[mode] = {"rate": statistics.median(rates), "min": min(rates), "max": max(rates),
                       "p99_us": statistics.median(x["p99_us"] for x in runs),
                       "failed": sum(x["failed"] for x in runs)}
        for mode in REPLICATING:
            s[mode]["ratio"] = s[mode]["rate"] / s["alone"]["rate"]
            s[mode]["round_ratios"] = [rep[scenario]["rate"] / al[scenario]["rate"]
                                       for al, rep in zip(rounds["alone"], rounds[mode])]
            s[mode]["replication"] = [rd[scenario]["replication"] for rd in rounds[mode]]
        result["scenarios"][scenario] = s
        rows.append([scenario, rate_range(s["alone"]), fmt_ms(s["alone"]["p99_us"] / 1000)]
                    + [cell for mode in REPLICATING for cell in (
                        rate_range(s[mode]), fmt_ms(s[mode]["p99_us"] / 1000),
                        f"{s[mode]['ratio']:.0%} ("
                        + ", ".join(f"{x:.0%}" for x in s[mode]["round_ratios"]) + ")")]
                    + [sum(s[mode]["failed"] for mode in SATURATION_MODES)])
        for i in range(args.rounds):
            row = [scenario, i + 1]
            for mode in SATURATION_MODES:
                run = rounds[mode][i][scenario]
                parts = ("node", "loadgen", "others") if mode == "alone" else (
                    "node", "peers", "loadgen", "others")
                row += [fmt_rate(run["rate"]), fmt_steal(run["usage"]["steal_percent"]),
                        fmt_busy(run["usage"]["busy_percent"], parts)]
            round_rows.append(row)
        kind = "heartbeat" if scenario == "heartbeat" else "register"
        for mode in REPLICATING:
            for i, (rep, rd) in enumerate(zip(s[mode]["replication"], rounds[mode]), 1):
                repl_rows.append([
                    scenario, mode, i, fmt_rate(rd[scenario]["rate"]),
                    f"{rep[f'sent_{kind}']:,.0f}", f"{rep[f'coalesced_{kind}']:,.0f}",
                    f"{rep['dropped']:,.0f}", f"{rep['retried_' + kind]:,.0f}",
                    f"{rep['failed_requests']:,.0f}", f"{rep['settle_s']:.1f} s"])
    print_table(
        "saturation of one node alone and replicating to two peers (medians over the rounds)",
        ["scenario", "alone (min–max)", "p99", "to two stand-in peers (min–max)", "p99",
         "ratio (each round)", "to two real peers (min–max)", "p99", "ratio (each round)",
         "failed"], rows,
        [f"{args.rounds} rounds each, alternating (alone, to stand-ins, to real peers, ...), "
         f"fresh processes each round, after a prefill of {args.population} instances: "
         f"`artemis-loadgen --scenario heartbeat --max --prefilled {args.population}` then "
         f"`--scenario reregister --max --prefilled {args.population}`, `--duration "
         f"{args.sat_duration} --warmup {args.sat_warmup} --connections {args.connections} "
         f"--cores {args.loadgen_cores}`, against the node under test (`--cores "
         f"{args.server_cores}`) only. Stand-in peers: this script's PeerSink, two of them, "
         f"taking every batch with Java's success reply and doing nothing with it (peers on "
         f"hosts of their own, as far as the node can tell). Real peers: two `artemis server` "
         f"`--cores {args.peer_cores}`, beside the load generator. Ratio: of the medians, "
         f"replicating / alone."])
    print_table(
        "each round, with the CPU time the hypervisor stole during the run",
        ["scenario", "round", "alone", "stolen CPU 0 / 1", "busy node / loadgen / others",
         "to stand-ins", "stolen CPU 0 / 1", "busy node / stand-ins / loadgen / others",
         "to real peers", "stolen CPU 0 / 1", "busy node / peers / loadgen / others"],
        round_rows,
        ["Stolen: the share of each CPU's time given to other guests of the host during the "
         "run (/proc/stat steal); the node under test runs on CPU 1, its peers (the stand-ins "
         "are this script's threads) and the load generator on CPU 0. Busy: CPU time over the "
         "load generator's whole run (warm-up included), in percent of one core. Each run "
         f"waited (at most {args.quiet_wait:.0f} s) for a second with the machine below "
         f"{args.quiet_below:.0f} % of a core busy; a round in which other processes took more "
         f"than {args.max_others:.0f} % of a core, or the hypervisor more than "
         f"{args.max_steal:.0f} % of a CPU, was redone (at most {args.redo} times): "
         f"{len(discarded)} redone."])
    print_table(
        "what the replicating node's replication did in each run (both peers together)",
        ["scenario", "peers", "round", "rate", "sent (of the kind)", "coalesced", "dropped",
         "retried", "failed requests", "queues empty after"], repl_rows,
        ["From the node's /metrics before the run and once its queues were empty after it, "
         "warm-up included. Sent: artemis_replication_sent_total of the run's kind (heartbeat, "
         "or register for reregister), summed over the two peers; dropped: "
         "artemis_replication_dropped_total, every kind and reason."])
    for scenario in ("heartbeat", "reregister"):
        for mode in REPLICATING:
            for i, rep in enumerate(result["scenarios"][scenario][mode]["replication"], 1):
                if rep["failed_requests"] or rep["dropped"]:
                    print(f"WARNING: {scenario} {mode} round {i}: the node's replication failed "
                          f"{rep['failed_requests']:.0f} requests and dropped {rep['dropped']:.0f}"
                          f" instances: it did not replicate every write, so this round's rate "
                          f"overstates what replicating costs")
    for mode, rds in rounds.items():
        for i, rd in enumerate(rds, 1):
            for scenario, run in rd.items():
                if not run["quiet_before"]["quiet"]:
                    print(f"note: {scenario} {mode} round {i}: the machine was not quiet before "
                          f"the run ({run['quiet_before']['busy_percent']:.0f} % of a core busy)")
    return result


def rate_range(figures):
    return f"{fmt_rate(figures['rate'])} ({figures['min'] / 1000:.1f}–{figures['max'] / 1000:.1f})"


# ---------------------------------------------------------------- 3. partition

class Proxy:
    """A TCP proxy on a free loopback port to `target`: a thread per direction of each
    connection, passing bytes, or swallowing them (the connections left open) while
    `swallowing` is set."""

    def __init__(self, target_port):
        self.target = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.swallowing = threading.Event()
        self.closed = threading.Event()
        self.lock = threading.Lock()
        self.socks = []
        self.swallowed = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target), timeout=5.0)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.socks += [client, server]
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src, dst):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            if self.swallowing.is_set():
                with self.lock:
                    self.swallowed += len(data)
                continue
            try:
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.closed.set()
        self.listener.close()
        with self.lock:
            for s in self.socks:
                try:
                    s.close()
                except OSError:
                    pass


def partition_instance(rep, k):
    ip = f"10.{200 + rep}.{k >> 8 & 255}.{k & 255}"
    sid = f"framework.soa.bench.partition{rep}"
    return {"groupId": None, "healthCheckUrl": f"http://{ip}:8080/health",
            "instanceId": f"{ip}:8080", "ip": ip, "machineName": f"partition-host{k}",
            "metadata": {"k": "v"}, "port": 8080, "protocol": "http", "regionId": REGION,
            "serviceId": sid, "status": "up", "url": f"http://{ip}:8080/service/",
            "zoneId": ZONE}


def register_all(port, instances):
    conn = Conn(port)
    try:
        for first in range(0, len(instances), REGISTER_BATCH):
            body = dumps({"instances": instances[first:first + REGISTER_BATCH]})
            reply = check_success(conn.request("POST", REGISTER_PATH, body), "register")
            if (reply.json() or {}).get("failedInstances"):
                raise RuntimeError(f"register: {reply.body[:200]!r}")
    finally:
        conn.close()


def listed(conn, service, ids):
    ok, got = discovery(conn, service)
    return len(ids & got) if ok else 0


def anti_entropy_counters(figures, peer):
    return {"added": total(figures, "artemis_anti_entropy_instances_total", peer=peer,
                           change="added"),
            "services_pulled": total(figures, "artemis_anti_entropy_services_pulled_total",
                                     peer=peer),
            "equal": total(figures, "artemis_anti_entropy_comparisons_total", peer=peer,
                           result="equal"),
            "pulled": total(figures, "artemis_anti_entropy_comparisons_total", peer=peer,
                            result="pulled"),
            "failed": total(figures, "artemis_anti_entropy_comparisons_total", peer=peer,
                            result="failed"),
            "last_s": total(figures, "artemis_anti_entropy_last_seconds", peer=peer)}


def partition_once(args, rep, a, b, proxies, a_sees_b, b_sees_a):
    instances = [partition_instance(rep, k) for k in range(PARTITION_INSTANCES)]
    service = instances[0]["serviceId"]
    ids = {i["instanceId"] for i in instances}
    out = {"repeat": rep, "service": service}
    on_b = Conn(b.port, timeout=10.0)
    try:
        before_a = replication_counters(metrics(a.port), a_sees_b)
        for p in proxies:
            p.swallowing.set()
        cut_at = time.monotonic()
        register_all(a.port, instances)
        registered_at = time.monotonic()
        out["register_s"] = registered_at - cut_at
        out["listed_on_b_after_register"] = listed(on_b, service, ids)
        time.sleep(max(0.0, args.hold - (time.monotonic() - registered_at)))
        out["listed_on_b_at_heal"] = listed(on_b, service, ids)
        if out["listed_on_b_at_heal"] == len(ids):
            raise RuntimeError("B lists every instance before the heal: the proxy let them through")
        figures_a, figures_b = metrics(a.port), metrics(b.port)
        out["a_sees_b_up_at_heal"] = total(figures_a, "artemis_peer_up", peer=a_sees_b)
        out["b_sees_a_up_at_heal"] = total(figures_b, "artemis_peer_up", peer=b_sees_a)
        out["a_replication_to_b_while_cut"] = counters_delta(
            replication_counters(figures_a, a_sees_b), before_a)
        ae_before = anti_entropy_counters(figures_b, b_sees_a)
        out["held_s"] = time.monotonic() - cut_at
        for p in proxies:
            p.swallowing.clear()
        healed_at, healed_wall = time.monotonic(), time.time()
        polls, converged = 0, None
        while time.monotonic() - healed_at < CONVERGE_S:
            polls += 1
            n = listed(on_b, service, ids)
            if n == len(ids):
                converged = time.monotonic() - healed_at
                break
            next_at = healed_at + polls * POLL_S
            time.sleep(max(0.0, next_at - time.monotonic()))
        out["converged_s"] = converged
        out["polls"] = polls
        figures_a, figures_b = metrics(a.port), metrics(b.port)
        ae_after = anti_entropy_counters(figures_b, b_sees_a)
        out["b_anti_entropy"] = {k: ae_after[k] - ae_before[k] for k in ae_after if k != "last_s"}
        out["b_last_comparison_after_heal_s"] = (ae_after["last_s"] - healed_wall
                                                 if ae_after["last_s"] else None)
        out["a_replication_to_b_whole"] = counters_delta(
            replication_counters(figures_a, a_sees_b), before_a)
        out["swallowed_bytes"] = sum(p.swallowed for p in proxies)
    finally:
        on_b.close()
    return out


def partition(args):
    pa_port, pb_port = free_port(), free_port()
    a_port, b_port = free_port(), free_port()
    proxies = []
    results = {"digest_interval": args.digest_interval, "hold_s": args.hold, "repeats": []}
    try:
        # Each node reaches the other only through the proxy in front of it.
        proxy_a, proxy_b = Proxy(a_port), Proxy(b_port)
        proxies = [proxy_a, proxy_b]
        a_sees_b, b_sees_a = url_of(proxy_b.port), url_of(proxy_a.port)
        flags = ["--digest-interval", args.digest_interval]
        with Nodes() as nodes:
            a = nodes.add(ClusterNode(args, "partition-A", a_port, args.node_cores,
                                      [url_of(a_port), a_sees_b], flags))
            b = nodes.add(ClusterNode(args, "partition-B", b_port, args.node_cores,
                                      [b_sees_a, url_of(b_port)], flags))
            await_ready([a, b])
            results["servers"] = [a.command, b.command]
            interval = seconds(args.digest_interval)
            for rep in range(1, args.partition_repeats + 1):
                await_ready([a, b])  # each sees the other up again before the next cut
                # A repeat ends just after one of B's comparisons; a wait of a different share
                # of the digest interval before each cut spreads the heals over its phases.
                gap = (rep - 1) * interval / args.partition_repeats
                results.setdefault("gaps_s", []).append(gap)
                time.sleep(gap)
                r = partition_once(args, rep, a, b, proxies, a_sees_b, b_sees_a)
                results["repeats"].append(r)
                took = "never" if r["converged_s"] is None else f"{r['converged_s']:.2f} s"
                print(f"  partition {rep}/{args.partition_repeats}: B lists all {took} after "
                      f"the heal", flush=True)
            for node in (a, b):
                node.check_alive()
    finally:
        for p in proxies:
            p.close()
    rows = []
    for r in results["repeats"]:
        ae, cut = r["b_anti_entropy"], r["a_replication_to_b_while_cut"]
        rows.append([
            r["repeat"], f"{r['held_s']:.1f} s", r["listed_on_b_at_heal"],
            "yes" if r["a_sees_b_up_at_heal"] else "no",
            "yes" if r["b_sees_a_up_at_heal"] else "no",
            f"{cut['dropped_register_ttl']:.0f}",
            "-" if r["converged_s"] is None else f"{r['converged_s']:.2f} s",
            f"{ae['added']:.0f}", f"{ae['services_pulled']:.0f}",
            f"{ae['failed']:.0f}"])
    conv = [r["converged_s"] for r in results["repeats"] if r["converged_s"] is not None]
    results["converged_s"] = {"each": [r["converged_s"] for r in results["repeats"]],
                              "max": max(conv) if conv else None,
                              "median": statistics.median(conv) if conv else None}
    print_table(
        f"convergence after a healed partition ({PARTITION_INSTANCES:,} instances registered "
        f"on A during it, --digest-interval {args.digest_interval})",
        ["repeat", "held", "on B at heal", "A sees B up at heal", "B sees A up at heal",
         "A's register drops for B (ttl)", "heal → B lists all", "B's anti-entropy added",
         "services pulled", "B's failed comparisons"], rows,
        [f"Both nodes `--cores {args.node_cores}`, the proxies and this script on CPU "
         f"{args.loadgen_cores}. Heal → B lists all: from letting bytes through again to the "
         f"first reply of B's service.json (polled every {POLL_S * 1000:.0f} ms) that lists all "
         f"{PARTITION_INSTANCES:,}. Anti-entropy figures: B's, for its peer A, from the heal to "
         f"convergence."])
    return results


# ---------------------------------------------------------------- main

MEASUREMENTS = {"lag": lag, "saturation": saturation, "partition": partition}


def int_list(text):
    return [int(n) for n in text.split(",") if n]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("measurement", choices=[*MEASUREMENTS, "all"])
    parser.add_argument("--bin", default="target/release/artemis", help="the server (%(default)s)")
    parser.add_argument("--loadgen", default="target/release/artemis-loadgen",
                        help="the load generator (%(default)s)")
    parser.add_argument("--node-cores", default="1",
                        help="lag, partition: --cores of every node (%(default)s)")
    parser.add_argument("--server-cores", default="1",
                        help="saturation: --cores of the node under test (%(default)s)")
    parser.add_argument("--peer-cores", default="0",
                        help="saturation: --cores of its two peers (%(default)s)")
    parser.add_argument("--loadgen-cores", default="0",
                        help="cores of the load generator and of this script (%(default)s)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rates", default="500,2000", type=int_list,
                        help="lag: registers/s of the replication runs (%(default)s)")
    parser.add_argument("--try-rate", type=int, default=10000,
                        help="lag: one more run at this rate; 0: none (%(default)s)")
    parser.add_argument("--hb-rate", default="1000/s",
                        help="lag: background heartbeats over the three nodes (%(default)s)")
    parser.add_argument("--hb-population", type=int, default=3000)
    parser.add_argument("--instances", type=int, default=10000,
                        help="lag: instances the replication runs register (%(default)s)")
    parser.add_argument("--duration", default="10s", help="lag: each replication run")
    parser.add_argument("--warmup", default="1s", help="lag: its warm-up")
    parser.add_argument("--population", type=int, default=10000,
                        help="saturation: instances heartbeated and re-registered")
    parser.add_argument("--rounds", type=int, default=3, help="saturation: rounds of each")
    parser.add_argument("--sat-duration", default="5s")
    parser.add_argument("--sat-warmup", default="1s")
    parser.add_argument("--partition-repeats", type=int, default=3)
    parser.add_argument("--digest-interval", default="10s")
    parser.add_argument("--hold", type=float, default=8.0,
                        help="partition: seconds from the last register to the heal")
    parser.add_argument("--quiet-below", type=float, default=15.0,
                        help="lag, saturation: each run waits for a second with the machine's "
                             "busy CPU below this percent of one core (%(default)s)")
    parser.add_argument("--quiet-wait", type=float, default=300.0,
                        help="... for at most this many seconds, then runs anyway, noted")
    parser.add_argument("--max-others", type=float, default=20.0,
                        help="lag, saturation: a run in which other processes took more than "
                             "this percent of one core is redone (%(default)s)")
    parser.add_argument("--max-steal", type=float, default=10.0,
                        help="lag, saturation: ... or in which the hypervisor stole more than "
                             "this percent of a CPU (%(default)s)")
    parser.add_argument("--redo", type=int, default=3, help="... at most this many times")
    parser.add_argument("--out", default=RESULTS_DIR, help="logs and JSON figures (%(default)s)")
    args = parser.parse_args()
    args.bin, args.loadgen = os.path.abspath(args.bin), os.path.abspath(args.loadgen)
    return args


def main():
    args = parse_args()
    run_measurements(args, MEASUREMENTS, vars(args))


if __name__ == "__main__":
    main()
