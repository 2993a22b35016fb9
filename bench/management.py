#!/usr/bin/env python3
"""Measures what management (pull-out / pull-in) costs discovery, and how fast a pull-out
reaches clients, on this node and on another node sharing the management database.

Three measurements, each a subcommand (`all` runs the three in turn):

saturation   For each population (--populations, default 10 000 and 100 000 instances,
             --instances-per-service 10 as artemis-bench spreads them), a fresh server on
             --server-cores (default 1) is prefilled by the load generator on --loadgen-cores
             (default 0); then --rounds (3) alternating rounds of discovery saturation
             (`artemis-loadgen --scenario discover --max`, 5 s after 1 s of warm-up) with no
             instance pulled out and with --pulled (1 000) pulled out, spread evenly over the
             services. Between rounds the instances are pulled out and back in one
             `operate-instance.json` at a time on one keep-alive connection, timed as writes
             per second. Reported per population: median replies/s and p99 in each state, their
             ratio (pulled-out / none, from the same run), and the write rates.
push         One server with --push-instances (1 000) in --push-services (100); a WebSocket
             subscriber on /ws/discovery/instance-change follows one service. --push-repeats
             (200) times: pull out one of its instances and time, from sending the request,
             the HTTP reply and the `delete` frame; pull it back in and time the reply and the
             `new` frame. Reported: p50/p90/p99/max of each.
cross-node   Only with --postgres URL (a PostgreSQL server on which the script creates, then
             drops, a database of its own with `psql`): two nodes on that database
             (--management-db, --management-reload 1h, so only the change notice carries a
             write to the other node), one I1-like instance registered on both.
             --cross-repeats (50) times: pull it out on node A; from A's reply, poll node B's
             `service.json` on a keep-alive connection until it no longer lists the instance;
             pull it back in and poll until it does. Reported: p50/p99/max of each wait.

    cargo build --release -p artemis -p artemis-loadgen
    python3 bench/management.py all --postgres postgres://USER:PASSWORD@127.0.0.1:5432/postgres
    python3 bench/management.py saturation --populations 10000 --rounds 2
    python3 bench/management.py push --push-repeats 50

Every server runs with `--region SHA --zone SHAJQ --lease-ttl 1h --rate-limit false` and a
fresh `--data-dir` (removed afterwards), on a free loopback port. The script pins itself (the
push and cross-node client) to the load generator's cores and each server process to
--server-cores. It prints one table per measurement and writes the figures, with the
configuration, as JSON to bench/results/management/ (not committed), beside the servers' logs
and the load generator's reports.

Python 3.11 standard library only (the raw-socket HTTP and WebSocket client comes from
bench/hostile.py); loopback only; every loop is bounded in count and time, and every server
started is stopped (SIGTERM, then SIGKILL) in a finally.
"""

import argparse
import contextlib
import json
import os
import re
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.dont_write_bytecode = True  # importing hostile.py leaves no bench/__pycache__ behind
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile import (Conn, Process, dumps, free_port, health, http_request, ws_frame,  # noqa: E402
                     ws_open)

REGION, ZONE = "SHA", "SHAJQ"
SERVER_FLAGS = ["--region", REGION, "--zone", ZONE, "--lease-ttl", "1h", "--rate-limit", "false"]
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "management")

OPERATE_PATH = "/api/management/operate-instance.json"
DISCOVERY_PATH = "/api/discovery/service.json"
REGISTER_PATH = "/api/registry/register.json"
CHANGES_PATH = "/ws/discovery/instance-change"

REGISTER_BATCH = 100      # instances per register request (push)
WAIT_S = 10.0             # longest wait for a reply, a change frame or a node to catch up
START_S = 20.0            # longest wait for a server to serve discovery
LOADGEN_SLACK_S = 180     # beyond --warmup + --duration: the prefill and the start

# I1 of the reference exchanges (docs/compatibility.md).
I1 = {"groupId": None, "healthCheckUrl": "http://10.2.3.4:8080/health",
      "instanceId": "10.2.3.4:8080", "ip": "10.2.3.4", "machineName": "host1",
      "metadata": {"k": "v"}, "port": 8080, "protocol": "http", "regionId": REGION,
      "serviceId": "framework.soa.testservice.v2.testservice", "status": "up",
      "url": "http://10.2.3.4:8080/testservice/", "zoneId": ZONE}


# ---------------------------------------------------------------- the load generator's population

def service_id(s):
    return f"framework.soa.loadgen.v1.service{s}"


def instance_id(i):
    """Instance i's id as loadgen/src/body.rs writes it: `10.x.y.z:PORT`, the ip from i's low 24
    bits, the port 8080 + the rest."""
    return f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}:{8080 + (i >> 24)}"


def loadgen_instance(i, services):
    """Instance i of a population over `services` services, every field as the load generator
    registers it."""
    iid, s = instance_id(i), i % services
    ip, port = iid.rsplit(":", 1)
    return {"groupId": None, "healthCheckUrl": f"http://{iid}/health", "instanceId": iid,
            "ip": ip, "machineName": f"loadgen-host{i}", "metadata": {"k": "v"},
            "port": int(port), "protocol": "http", "regionId": REGION, "serviceId": service_id(s),
            "status": "up", "url": f"http://{iid}/service{s}/", "zoneId": ZONE}


def key_of(instance):
    return {"regionId": instance["regionId"], "serviceId": instance["serviceId"],
            "instanceId": instance["instanceId"]}


def spread(population, services, count):
    """`count` instances spread evenly over the population taken service by service (service 0's
    instances first): with 10 per service and count = population / 10, one in each service."""
    per_service = population // services
    picks = []
    for k in range(min(count, population)):
        j = k * population // count
        s, rank = j // per_service, j % per_service
        picks.append(s + rank * services)
    return picks


def members(service, population, services):
    """The instances of `service`."""
    return list(range(service, population, services))


# ---------------------------------------------------------------- servers

def core_set(text):
    """`0-2,5` as a set of CPU ids."""
    cores = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cores.update(range(int(lo), int(hi or lo) + 1))
    return cores


class Node(Process):
    """An `artemis server` on a free loopback port, pinned to the server cores, with a fresh data
    directory; stopped (and its directory removed) on leaving the `with`."""

    def __init__(self, args, tag, flags=()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = tempfile.mkdtemp(prefix=f"artemis-{tag}-")
        self.log_path = os.path.join(args.out, f"{tag}.log")
        cores = core_set(args.server_cores)
        argv = [args.bin, "server", "--addr", f"127.0.0.1:{self.port}", *SERVER_FLAGS,
                "--cores", args.server_cores, "--data-dir", self.data_dir, *flags]
        self.command = " ".join(argv)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         preexec_fn=lambda: os.sched_setaffinity(0, cores))
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self):
        """Until the node serves discovery (it does not before its management data is loaded)."""
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.log_tail()}")
            if health(self.port, timeout=1.0)[1] == 200:
                try:
                    if discovery(Conn(self.port, timeout=2.0), I1["serviceId"], close=True)[0]:
                        return
                except (OSError, EOFError, ValueError):
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"server not serving discovery within {START_S:.0f} s: {self.log_tail()}")

    def stop(self):
        super().stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def loadgen(args, node, tag, flags):
    """Runs the load generator against `node` (on the load generator's cores); returns its JSON
    report."""
    report_path = os.path.join(args.out, f"{tag}.json")
    argv = [args.loadgen, "--target", node.url, "--region", REGION, "--zone", ZONE,
            "--cores", args.loadgen_cores, "--connections", str(args.connections),
            "--quiet", "--json", report_path, *map(str, flags)]
    limit = seconds(args.warmup) + seconds(args.duration) + LOADGEN_SLACK_S
    done = subprocess.run(argv, capture_output=True, text=True, timeout=limit)
    if done.returncode not in (0, 1):  # 1: an SLO violated (none is asked for)
        raise RuntimeError(f"artemis-loadgen exited {done.returncode}: {done.stderr.strip()[-300:]}")
    with open(report_path) as f:
        return json.load(f)


def seconds(text):
    """`5s`, `500ms` or `1m` in seconds (the load generator's durations, as passed here)."""
    for unit, scale in (("ms", 0.001), ("s", 1), ("m", 60)):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * scale
    return float(text)


# ---------------------------------------------------------------- the API

def operate_body(key, pull_out):
    return dumps({"instanceKey": key, "operation": "pullout", "operationComplete": not pull_out,
                  "operatorId": "bench", "token": "t"})


def check_success(reply, what):
    if reply.status != 200 or reply.error_code() != "success":
        raise RuntimeError(f"{what}: {reply.status} {reply.body[:200]!r}")
    return reply


def operate(conn, key, pull_out):
    """Pulls `key` out (or back in) on `conn`; returns the seconds until the reply."""
    start = time.perf_counter()
    reply = conn.request("POST", OPERATE_PATH, operate_body(key, pull_out))
    took = time.perf_counter() - start
    check_success(reply, f"operate-instance {'pull-out' if pull_out else 'pull-in'} of {key}")
    return took


def operate_all(conn, keys, pull_out):
    """Pulls every key out (or in), one request at a time; returns {writes/s, p50/p99 ms}."""
    start = time.perf_counter()
    each = [operate(conn, key, pull_out) for key in keys]
    total = time.perf_counter() - start
    ms = sorted(t * 1000 for t in each)
    return {"writes": len(keys), "seconds": total, "per_s": len(keys) / total,
            "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99), "max_ms": ms[-1]}


def discovery(conn, service, close=False):
    """(whether the reply is a success, the instance ids `service.json` lists for `service`)."""
    body = dumps({"discoveryConfig": {"serviceId": service}, "regionId": REGION, "zoneId": ZONE})
    try:
        reply = conn.request("POST", DISCOVERY_PATH, body)
    finally:
        if close:
            conn.close()
    listed = ((reply.json() or {}).get("service") or {}).get("instances") or []
    return reply.error_code() == "success", {i.get("instanceId") for i in listed}


def register(port, instances):
    conn = Conn(port)
    try:
        for first in range(0, len(instances), REGISTER_BATCH):
            body = dumps({"instances": instances[first:first + REGISTER_BATCH]})
            reply = check_success(conn.request("POST", REGISTER_PATH, body), "register")
            if (reply.json() or {}).get("failedInstances"):
                raise RuntimeError(f"register: {reply.body[:200]!r}")
    finally:
        conn.close()


# ---------------------------------------------------------------- WebSocket changes

class Subscriber:
    """A session on /ws/discovery/instance-change following one service; reads the server's
    (unmasked) frames as they arrive and answers pings."""

    def __init__(self, port, service):
        self.conn = ws_open(port, CHANGES_PATH)
        self.sock = self.conn.sock
        self.sock.sendall(ws_frame(dumps({"serviceId": service}).encode()))
        self.fragments = []

    def close(self):
        self.conn.close()

    def receive(self):
        """Reads what has arrived (call when the socket is readable); returns the changes whose
        frames it completed."""
        self.conn._fill()
        changes = []
        while (frame := self._frame()) is not None:
            changes.append(json.loads(frame))
        return changes

    def _frame(self):
        """The next whole text message in the buffer, None when there is none yet."""
        while True:
            buf = self.conn.buf
            if len(buf) < 2:
                return None
            fin, opcode, length = buf[0] & 0x80, buf[0] & 0x0F, buf[1] & 0x7F
            start = 2
            if length == 126:
                length, start = (struct.unpack_from("!H", buf, 2)[0], 4) if len(buf) >= 4 else (None, 0)
            elif length == 127:
                length, start = (struct.unpack_from("!Q", buf, 2)[0], 10) if len(buf) >= 10 else (None, 0)
            if length is None or len(buf) < start + length:
                return None
            payload = bytes(buf[start:start + length])
            del buf[:start + length]
            if opcode == 0x8:
                code = struct.unpack_from("!H", payload)[0] if len(payload) >= 2 else None
                raise EOFError(f"the server closed the change session ({code})")
            if opcode == 0x9:
                self.sock.sendall(ws_frame(payload, opcode=0xA))
            elif opcode in (0x0, 0x1):
                self.fragments.append(payload)
                if fin:
                    text, self.fragments = b"".join(self.fragments), []
                    return text


def timed_operation(conn, sub, key, pull_out):
    """Sends one operate-instance and waits for its reply and for the change it pushes to `sub`
    (`delete` for a pull-out, `new` for a pull-in). Returns (reply ms, push ms, other changes
    seen); a time is None when it did not come within WAIT_S."""
    wanted = "delete" if pull_out else "new"
    start = time.perf_counter()
    conn.sock.sendall(http_request("POST", OPERATE_PATH, operate_body(key, pull_out)))
    reply_at = push_at = None
    others = 0
    while (reply_at is None or push_at is None) and time.perf_counter() - start < WAIT_S:
        waiting = [s for s, at in ((conn.sock, reply_at), (sub.sock, push_at)) if at is None]
        ready, _, _ = select.select(waiting, [], [], WAIT_S - (time.perf_counter() - start))
        now = time.perf_counter()
        if conn.sock in ready:
            check_success(conn.read_reply(), f"operate-instance of {key}")
            reply_at = now
        if sub.sock in ready:
            for change in sub.receive():
                if change.get("changeType") == wanted and \
                        (change.get("instance") or {}).get("instanceId") == key["instanceId"]:
                    push_at = now
                else:
                    others += 1
    if reply_at is None:
        raise RuntimeError(f"no reply to operate-instance within {WAIT_S:.0f} s")
    def ms(at):
        return None if at is None else (at - start) * 1000
    return ms(reply_at), ms(push_at), others


# ---------------------------------------------------------------- figures

def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list; None when it is empty."""
    if not sorted_values:
        return None
    rank = max(1, -(-p * len(sorted_values) // 100))
    return sorted_values[int(rank) - 1]


def distribution(values):
    """{n, missing, p50, p90, p99, max} of the times that came (None: one that did not)."""
    got = sorted(v for v in values if v is not None)
    out = {"n": len(got), "missing": len(values) - len(got)}
    for name, p in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100)):
        out[name] = percentile(got, p)
    return out


def fmt_ms(ms):
    if ms is None:
        return "-"
    return f"{ms * 1000:.0f} µs" if ms < 1 else f"{ms:.2f} ms" if ms < 100 else f"{ms:.0f} ms"


def fmt_rate(per_s):
    return "-" if per_s is None else f"{per_s / 1000:.1f} k/s" if per_s >= 1000 else f"{per_s:.0f}/s"


def rate_range(figures):
    """`25.9 k/s (23.8–29.5)`: a median rate and the rounds' least and greatest, in k/s."""
    return f"{fmt_rate(figures['rate'])} ({figures['min'] / 1000:.1f}–{figures['max'] / 1000:.1f})"


def print_table(title, head, rows, notes=()):
    """A Markdown table, as docs/benchmarks.md writes them."""
    print(f"\n== {title} ==\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" if n == 0 else "--:" for n in range(len(head))) + "|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    for note in notes:
        print(f"\n{note}")
    sys.stdout.flush()


# ---------------------------------------------------------------- 1. saturation

def discover_round(args, node, population, services, tag):
    """One closed-loop discovery run over the prefilled population: {rate, p99_us, failed}."""
    report = loadgen(args, node, tag, [
        "--scenario", "discover", "--prefilled", population, "--services", services, "--max",
        "--duration", args.duration, "--warmup", args.warmup])
    total = report["total"]
    return {"rate": report["achieved_rate"], "p99_us": (total["latency_us"] or {}).get("p99"),
            "failed": total["failed"], "failures": total["failures"]}


def saturation_of(args, population):
    """Alternating rounds without and with pull-outs on one server of `population` instances."""
    services = max(1, population // args.instances_per_service)
    pulled = [loadgen_instance(i, services) for i in spread(population, services, args.pulled)]
    keys = [key_of(inst) for inst in pulled]
    result = {"population": population, "services": services, "pulled": len(keys),
              "services_with_a_pull_out": len({k["serviceId"] for k in keys}),
              "rounds": {"none": [], "pulled": []}, "writes": {"pull-out": [], "pull-in": []}}
    tag = f"saturation-{population}"
    with Node(args, tag) as node:
        result["server"] = node.command
        prefill = loadgen(args, node, f"{tag}-prefill", [
            "--scenario", "discover", "--prefill", population, "--services", services,
            "--max", "--duration", "1s", "--warmup", "0s"])
        result["prefill_s"] = (prefill.get("prefill") or {}).get("seconds")
        conn = Conn(node.port)
        try:
            for r in range(1, args.rounds + 1):
                result["rounds"]["none"].append(
                    discover_round(args, node, population, services, f"{tag}-none-{r}"))
                result["writes"]["pull-out"].append(operate_all(conn, keys, pull_out=True))
                check_listing(conn, pulled[0], listed=False)
                result["rounds"]["pulled"].append(
                    discover_round(args, node, population, services, f"{tag}-pulled-{r}"))
                result["writes"]["pull-in"].append(operate_all(conn, keys, pull_out=False))
                check_listing(conn, pulled[0], listed=True)
                print(f"  {population} instances, round {r}/{args.rounds}: "
                      f"none {fmt_rate(result['rounds']['none'][-1]['rate'])}, "
                      f"pulled out {fmt_rate(result['rounds']['pulled'][-1]['rate'])}",
                      flush=True)
        finally:
            conn.close()
    summarize_saturation(result)
    return result


def check_listing(conn, instance, listed):
    """Fails unless discovery lists `instance` (or, `listed` False, leaves it out)."""
    ok, ids = discovery(conn, instance["serviceId"])
    if not ok or (instance["instanceId"] in ids) != listed:
        raise RuntimeError(f"{instance['instanceId']} should {'' if listed else 'not '}be listed "
                           f"after the write; discovery {'succeeded' if ok else 'failed'}, "
                           f"lists {len(ids)}")


def summarize_saturation(result):
    """Medians over the rounds, and the ratio pulled-out / none."""
    for state, rounds in result["rounds"].items():
        rates = [r["rate"] for r in rounds]
        result[state] = {"rate": statistics.median(rates), "min": min(rates), "max": max(rates),
                         "p99_us": statistics.median(r["p99_us"] for r in rounds),
                         "failed": sum(r["failed"] for r in rounds)}
    result["ratio"] = result["pulled"]["rate"] / result["none"]["rate"]
    result["round_ratios"] = [p["rate"] / n["rate"]
                              for n, p in zip(result["rounds"]["none"], result["rounds"]["pulled"])]
    for op, writes in result["writes"].items():
        result[op] = {"per_s": statistics.median(w["per_s"] for w in writes),
                      "p50_ms": statistics.median(w["p50_ms"] for w in writes),
                      "p99_ms": statistics.median(w["p99_ms"] for w in writes),
                      "max_ms": max(w["max_ms"] for w in writes)}


def saturation(args):
    results = [saturation_of(args, population) for population in args.populations]
    print_table(
        "discovery saturation without and with pull-outs (medians over the rounds)",
        ["instances", "services (with a pull-out)", "none (min–max)", "p99",
         f"{args.pulled} pulled out (min–max)", "p99", "ratio", "each round's ratio", "failed"],
        [[f"{r['population']:,}", f"{r['services']:,} ({r['services_with_a_pull_out']:,})",
          rate_range(r["none"]), fmt_ms(r["none"]["p99_us"] / 1000),
          rate_range(r["pulled"]), fmt_ms(r["pulled"]["p99_us"] / 1000), f"{r['ratio']:.0%}",
          ", ".join(f"{x:.0%}" for x in r["round_ratios"]),
          r["none"]["failed"] + r["pulled"]["failed"]] for r in results],
        [f"{args.rounds} rounds each, alternating; ratio: of the medians, pulled out / none; "
         f"each round's: the pulled-out run over the run just before it. "
         f"`artemis-loadgen --scenario discover --max "
         f"--duration {args.duration} --warmup {args.warmup} --connections {args.connections} "
         f"--cores {args.loadgen_cores}`, server `--cores {args.server_cores}`."])
    print_table(
        f"writes between the rounds: {args.pulled} operate-instance one at a time, one connection",
        ["instances", "pull-out", "p50", "p99", "max", "pull-in", "p50", "p99", "max"],
        [[f"{r['population']:,}",
          *(cell for op in ("pull-out", "pull-in") for cell in (
              fmt_rate(r[op]["per_s"]), fmt_ms(r[op]["p50_ms"]), fmt_ms(r[op]["p99_ms"]),
              fmt_ms(r[op]["max_ms"])))] for r in results],
        ["Writes/s and percentiles are medians over the rounds; max is the largest of all."])
    return results


# ---------------------------------------------------------------- 2. push

def push(args):
    population, services = args.push_instances, args.push_services
    service = 0
    targets = [loadgen_instance(i, services) for i in members(service, population, services)]
    result = {"instances": population, "services": services, "service": service_id(service),
              "repeats": args.push_repeats}
    times = {"pull-out reply": [], "pull-out push": [], "pull-in reply": [], "pull-in push": []}
    others = 0
    with Node(args, "push") as node:
        result["server"] = node.command
        register(node.port, [loadgen_instance(i, services) for i in range(population)])
        conn, sub = Conn(node.port), None
        try:
            sub = Subscriber(node.port, service_id(service))
            time.sleep(0.2)  # the subscription has no reply: let it be read before the first write
            for n in range(args.push_repeats + 1):
                key = key_of(targets[n % len(targets)])
                for op, pull_out in (("pull-out", True), ("pull-in", False)):
                    reply_ms, push_ms, seen = timed_operation(conn, sub, key, pull_out)
                    others += seen
                    if n > 0:  # the first cycle warms up
                        times[f"{op} reply"].append(reply_ms)
                        times[f"{op} push"].append(push_ms)
        finally:
            conn.close()
            if sub is not None:
                sub.close()
    result["other_changes"] = others
    result["times_ms"] = {what: distribution(values) for what, values in times.items()}
    print_table(
        f"write to push: {args.push_repeats} pull-outs and pull-ins of one instance "
        f"({population:,} instances in {services} services), from sending the request",
        ["", "p50", "p90", "p99", "max", "missing"],
        [[what, *(fmt_ms(d[p]) for p in ("p50", "p90", "p99", "max")), d["missing"]]
         for what, d in result["times_ms"].items()],
        [f"Change frames other than the expected ones: {others}."])
    return result


# ---------------------------------------------------------------- 3. cross-node

@contextlib.contextmanager
def temporary_database(admin_url):
    """A database of its own on the PostgreSQL server `admin_url` names (created and dropped with
    psql); yields its URL."""
    name = f"artemis_bench_{os.getpid()}_{int(time.time())}"
    psql(admin_url, f"CREATE DATABASE {name}")
    try:
        parts = urllib.parse.urlsplit(admin_url)
        yield urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        psql(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def redact(text):
    """`text` with the password of any postgres:// URL in it replaced by `***`."""
    return re.sub(r"(postgres(?:ql)?://[^:/@\s]*:)[^/\s]*@", r"\1***@", text)


def psql(url, sql):
    done = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qc", sql],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"psql {sql!r}: {redact(done.stderr.strip())}")


def until_listing(conn, instance, listed, since):
    """Polls `service.json` on `conn` until it lists `instance` (or leaves it out, `listed`
    False); returns (ms from `since` to that reply, polls), ms None when WAIT_S passed first."""
    polls = 0
    while time.perf_counter() - since < WAIT_S:
        ok, ids = discovery(conn, instance["serviceId"])
        polls += 1
        if ok and (instance["instanceId"] in ids) == listed:
            return (time.perf_counter() - since) * 1000, polls
    return None, polls


def cross_node(args):
    if not args.postgres:
        print("\n== cross-node: skipped (no --postgres URL given) ==")
        return {"skipped": "no --postgres URL given"}
    key = key_of(I1)
    times = {"pull-out reply on A": [], "A's reply to gone on B": [],
             "pull-in reply on A": [], "A's reply to back on B": []}
    polls = []
    result = {"repeats": args.cross_repeats, "instance": key}
    with temporary_database(args.postgres) as db_url:
        flags = ["--management-db", db_url, "--management-reload", "1h"]
        with Node(args, "cross-node-a", flags) as a, Node(args, "cross-node-b", flags) as b:
            result["servers"] = [a.command.replace(db_url, "DB_URL"), "the same on another port"]
            for node in (a, b):
                register(node.port, [I1])
            on_a, on_b = Conn(a.port), Conn(b.port)
            try:
                for _ in range(args.cross_repeats):
                    for op, gone in (("pull-out", "gone"), ("pull-in", "back")):
                        took = operate(on_a, key, pull_out=op == "pull-out")
                        since = time.perf_counter()
                        waited, n = until_listing(on_b, I1, listed=op == "pull-in", since=since)
                        times[f"{op} reply on A"].append(took * 1000)
                        times[f"A's reply to {gone} on B"].append(waited)
                        polls.append(n)
            finally:
                on_a.close()
                on_b.close()
    result["times_ms"] = {what: distribution(values) for what, values in times.items()}
    result["polls"] = {"median": statistics.median(polls), "max": max(polls)}
    print_table(
        f"across nodes: {args.cross_repeats} pull-outs and pull-ins on node A, "
        f"seen by polling node B (PostgreSQL, --management-reload 1h)",
        ["", "p50", "p99", "max", "missing"],
        [[what, *(fmt_ms(d[p]) for p in ("p50", "p99", "max")), d["missing"]]
         for what, d in result["times_ms"].items()],
        [f"Polls of B per wait: median {result['polls']['median']}, "
         f"max {result['polls']['max']}; a wait gives up after {WAIT_S:.0f} s (missing)."])
    return result


# ---------------------------------------------------------------- main

MEASUREMENTS = {"saturation": saturation, "push": push, "cross-node": cross_node}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("measurement", choices=[*MEASUREMENTS, "all"])
    parser.add_argument("--bin", default="target/release/artemis", help="the server (%(default)s)")
    parser.add_argument("--loadgen", default="target/release/artemis-loadgen",
                        help="the load generator (%(default)s)")
    parser.add_argument("--server-cores", default="1", help="cores of each server (%(default)s)")
    parser.add_argument("--loadgen-cores", default="0",
                        help="cores of the load generator and of this script (%(default)s)")
    parser.add_argument("--populations", default="10000,100000",
                        type=lambda s: [int(n) for n in s.split(",")],
                        help="saturation: instances of each run (%(default)s)")
    parser.add_argument("--instances-per-service", type=int, default=10)
    parser.add_argument("--pulled", type=int, default=1000,
                        help="saturation: instances pulled out (%(default)s)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="saturation: rounds of each state (%(default)s)")
    parser.add_argument("--duration", default="5s")
    parser.add_argument("--warmup", default="1s")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--push-instances", type=int, default=1000)
    parser.add_argument("--push-services", type=int, default=100)
    parser.add_argument("--push-repeats", type=int, default=200)
    parser.add_argument("--cross-repeats", type=int, default=50)
    parser.add_argument("--postgres", help="cross-node: postgres://USER:PASSWORD@HOST:PORT/DB of a "
                                           "server to create a database on (skipped without)")
    parser.add_argument("--out", default=RESULTS_DIR, help="logs and JSON figures (%(default)s)")
    args = parser.parse_args()
    args.bin, args.loadgen = os.path.abspath(args.bin), os.path.abspath(args.loadgen)
    return args


def run_measurements(args, measurements, config):
    """Runs the measurement `args.measurement` names (or every one of `measurements`) with this
    script on the load generator's cores, after a header naming the command and the server,
    and writes the figures, with `config`, as JSON under `args.out`."""
    os.makedirs(args.out, exist_ok=True)
    os.sched_setaffinity(0, core_set(args.loadgen_cores))
    names = list(measurements) if args.measurement == "all" else [args.measurement]
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"{' '.join(map(redact, sys.argv))}\nserver: {args.bin}, modified "
          f"{time.ctime(os.path.getmtime(args.bin))}; {os.cpu_count()} CPUs; started {started}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    results = {"started": started, "config": config}
    for name in names:
        print(f"\n{name} ...", flush=True)
        results[name] = measurements[name](args)
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results["load_average_1m_at_end"] = os.getloadavg()[0]
    path = os.path.join(args.out, f"{args.measurement}-{started.replace(':', '')}.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    print(f"\nfinished {results['finished']}, load average {os.getloadavg()[0]:.1f}; "
          f"figures in {path}")


def main():
    args = parse_args()
    config = {k: v for k, v in vars(args).items() if k != "postgres"}
    config["postgres"] = bool(args.postgres)
    run_measurements(args, MEASUREMENTS, config)


if __name__ == "__main__":
    main()
