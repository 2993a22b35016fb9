#!/usr/bin/env python3
"""Re-runs the attacks of the "bounded under hostile clients" issue against a server binary.

Each attack starts a fresh server on a free loopback port
(`server --addr 127.0.0.1:PORT --region SHA --zone SHAJQ --lease-ttl 10m` plus what the attack
needs), attacks it, and measures before, during and after:

- the server's RSS (VmRSS in /proc/PID/status) and its open descriptors (/proc/PID/fd);
- whether a well-behaved client is served meanwhile: the time a `GET /health` takes on a fresh
  connection (a probe that fails shows its status, e.g. 503, or the error).

The attacks (sizes in the constants below, printed with each table):
pipelined-service, pipelined-delta (non-reading pipelines of multi-MB replies), held-sockets
(the same against --max-connections 20 and --idle-timeout 2s), metadata-churn and
metadata-churn-small (re-registers with large metadata), ws-subscribers (WebSocket subscribers
that never read), subscribe-flood (40 000 subscriptions on one session), second-server (a second
server on the same address), text-plain-write (a cross-origin text/plain register),
sigterm-ws (what a WebSocket client reads at SIGTERM), many-unknown-heartbeats (one heartbeat of
100 000 unknown instances).

It prints one table per attack and a summary at the end, and writes the figures as JSON to
bench/results/hostile/ (not committed). Only flags that older binaries know are passed
(`--idle-timeout`, `--max-connections`, `--lease-ttl`, `--region`, `--zone`), so the same run
compares a build from before the fixes with a current one: every newer bound is at its default.

    python3 bench/hostile.py --bin target/release/artemis                 # every attack
    python3 bench/hostile.py --bin target/release/artemis held-sockets ws-subscribers

Python 3.11 standard library only; loopback only; every loop is bounded in count and time, and
every server started is stopped (SIGTERM, then SIGKILL) in a finally.
"""

import argparse
import base64
import hashlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

REGION, ZONE = "SHA", "SHAJQ"
COMMON_FLAGS = ["--region", REGION, "--zone", ZONE, "--lease-ttl", "10m"]

# Sizes, scaled to a 2-core machine (each attack takes well under a minute).
BIG_INSTANCES = 20_000        # instances of the large service (attacks 1-3)
BATCH = 1_000                 # instances per register request
META_PAD = 150                # bytes of metadata padding per instance
SAMPLE_S = 5.0                # how long an attack is watched
PIPE_CONNS, PIPE_DEPTH = 4, 32        # pipelined-service
DELTA_CONNS, DELTA_DEPTH = 2, 16      # pipelined-delta
HELD_CONNS, HELD_WAIT_S, HELD_PROBES = 60, 4.0, 10  # held-sockets
HELD_FLAGS = ["--idle-timeout", "2s", "--max-connections", "20"]
CHURN_BIG = (300, 200 * 1024)         # metadata-churn: re-registers x metadata value bytes
CHURN_HUGE = 1_000_000                # ... and once with a value this large
CHURN_SMALL = (3_000, 7 * 1024)       # metadata-churn-small
WS_SUBSCRIBERS, WS_INSTANCES = 100, 15_000  # ws-subscribers
FLOOD_FRAMES, FLOOD_WRITES = 40_000, 8      # subscribe-flood
HEARTBEAT_KEYS = 100_000              # many-unknown-heartbeats

HEALTH_TIMEOUT = 5.0
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
              "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
              "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "hostile")
RSS_CAP_MB = 8192  # an attack stops early once the server's RSS passes this (--rss-cap-mb)


# ---------------------------------------------------------------- HTTP over raw sockets

def http_request(method, path, body=None, content_type="application/json", headers=()):
    """The bytes of one HTTP/1.1 request (keep-alive)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if body is not None:
        if isinstance(body, str):
            body = body.encode()
        lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    lines += list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def error_code(self):
        doc = self.json()
        if isinstance(doc, dict) and isinstance(doc.get("responseStatus"), dict):
            return doc["responseStatus"].get("errorCode")
        return None


class Conn:
    """One client connection: requests, replies (Content-Length, chunked or to EOF)."""

    def __init__(self, port, timeout=30.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = bytearray()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("connection closed by the server")
        self.buf += chunk

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _line(self):
        while (i := self.buf.find(b"\r\n")) < 0:
            self._fill()
        return self._take(i + 2)[:-2]

    def read_reply(self):
        while self.buf.find(b"\r\n\r\n") < 0:
            self._fill()
        head = self._take(self.buf.find(b"\r\n\r\n") + 4).decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        headers = {}
        for line in head[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        if status in (101, 204, 304):
            body = b""
        elif "content-length" in headers:
            body = self._take(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while (size := int(self._line().split(b";")[0], 16)) > 0:
                parts.append(self._take(size))
                self._line()
            while self._line():
                pass
            body = b"".join(parts)
        else:
            while True:
                try:
                    self._fill()
                except EOFError:
                    break
            body = self._take(len(self.buf))
        return Reply(status, headers, body)

    def request(self, method, path, body=None, **kw):
        self.sock.sendall(http_request(method, path, body, **kw))
        return self.read_reply()


def once(port, method, path, body=None, timeout=30.0, **kw):
    """One request on a fresh connection."""
    conn = Conn(port, timeout)
    try:
        return conn.request(method, path, body, **kw)
    finally:
        conn.close()


def health(port, timeout=HEALTH_TIMEOUT):
    """(milliseconds, outcome) of `GET /health` on a fresh connection; outcome is 200 when served,
    else the status or the error's name."""
    start = time.monotonic()
    try:
        status = once(port, "GET", "/health", timeout=timeout).status
    except (OSError, EOFError, ValueError, IndexError) as err:
        status = type(err).__name__
    return (time.monotonic() - start) * 1000, status


def non_reader(port, wire):
    """A connection that sends `wire` (pipelined requests) and never reads. The send may fail
    (the server refused the connection): the socket is returned all the same."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
    try:
        sock.sendall(wire)
    except OSError:
        pass
    return sock


def close_all(socks):
    for s in socks:
        try:
            (s.sock if isinstance(s, Conn) else s).close()
        except OSError:
            pass


def growth_under_non_readers(srv, wire, connections):
    """Opens `connections` non-readers sending `wire`, watches the server for SAMPLE_S, closes
    them and lets it settle; returns the watch and the RSS growth at the peak, in MB."""
    watch = Watch(srv)
    attackers = []
    try:
        attackers = [non_reader(srv.port, wire) for _ in range(connections)]
        watch.run(SAMPLE_S)
    finally:
        close_all(attackers)
    watch.settle()
    return watch, watch.rss_peak - watch.before["rss"]


# ---------------------------------------------------------------- WebSocket, by hand

def ws_open(port, path):
    """A WebSocket session: the handshake written by hand, the 101 and its accept key checked."""
    key = base64.b64encode(os.urandom(16))
    conn = Conn(port, timeout=10.0)
    conn.sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
        f"Sec-WebSocket-Version: 13\r\n\r\n".encode())
    reply = conn.read_reply()
    accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
    if reply.status != 101 or reply.headers.get("sec-websocket-accept") != accept:
        conn.close()
        raise RuntimeError(f"WebSocket handshake on {path}: {reply.status} {reply.body[:200]!r}")
    return conn


def ws_frame(payload, opcode=1):
    """A masked client frame (RFC 6455 requires clients to mask)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    key = os.urandom(4)
    stream = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")
    return head + key + masked


def close_frame_code(tail):
    """The code of the server's close frame if `tail` (a session's last bytes) ends with one:
    0x88, an unmasked length under 126, then the code and reason; "none" for a close without
    a code; None when the last frame is not a close."""
    for i in range(len(tail) - 2, -1, -1):
        if tail[i] == 0x88 and tail[i + 1] == len(tail) - i - 2:
            return struct.unpack_from("!H", tail, i + 2)[0] if tail[i + 1] >= 2 else "none"
    return None


def ws_outcomes(conns, idle=0.5, limit=10.0):
    """What each session reads until the server closes it: "close CODE" (a close frame, the last
    a server sends), "EOF" (closed without one), "reset", or "open" (nothing more once no
    session has sent a byte for `idle` s, or after `limit` s). Sessions are read together
    (poll); only each one's last bytes are kept. Returns (outcomes, bytes read)."""
    by_fd = {c.sock.fileno(): c for c in conns}
    tails = {fd: bytes(c.buf[-256:]) for fd, c in by_fd.items()}
    outcomes, total = {}, 0
    poller = select.poll()
    for fd, conn in by_fd.items():
        conn.sock.setblocking(False)
        poller.register(fd, select.POLLIN)
    start = last_byte = time.monotonic()
    while len(outcomes) < len(by_fd) and time.monotonic() - start < limit \
            and time.monotonic() - last_byte < idle:
        for fd, _ in poller.poll(50):
            try:
                chunk = by_fd[fd].sock.recv(1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                outcomes[fd] = "reset"
                poller.unregister(fd)
                continue
            if not chunk:
                code = close_frame_code(tails[fd])
                outcomes[fd] = "EOF" if code is None else f"close {code}"
                poller.unregister(fd)
                continue
            total += len(chunk)
            tails[fd] = (tails[fd] + chunk)[-256:]
            last_byte = time.monotonic()
    for fd in by_fd:
        if fd not in outcomes:
            code = close_frame_code(tails[fd])
            outcomes[fd] = "open" if code is None else f"close {code} (no EOF)"
    return [outcomes[c.sock.fileno()] for c in conns], total


# ---------------------------------------------------------------- the server and its figures

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_args(binary, port, flags=()):
    return [binary, "server", "--addr", f"127.0.0.1:{port}", *COMMON_FLAGS, *flags]


class Process:
    """A server process (`proc`) logging to `log_path`, stopped on leaving the `with`: SIGTERM,
    and SIGKILL if it has not exited 6 s later."""

    proc = None
    log_path = None

    def log_tail(self, lines=3):
        with open(self.log_path, "rb") as f:
            return " | ".join(f.read().decode(errors="replace").strip().splitlines()[-lines:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=6)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Server(Process):
    """A server process on a free loopback port, stopped on leaving the `with`."""

    def __init__(self, binary, tag, flags=()):
        self.port = free_port()
        os.makedirs(RESULTS_DIR, exist_ok=True)
        self.log_path = os.path.join(RESULTS_DIR, f"{tag}.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(server_args(binary, self.port, flags),
                                         stdout=log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.log_tail()}")
            if health(self.port, timeout=1.0)[1] == 200:
                return
            time.sleep(0.1)
        raise RuntimeError(f"server not up within 15 s: {self.log_tail()}")

    def alive(self):
        return self.proc.poll() is None

    def rss_mb(self):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    def fds(self):
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return None

    def sockets(self):
        """Sockets among its descriptors (listeners, connections, and io_uring's own are not
        sockets)."""
        count = 0
        try:
            for fd in os.listdir(f"/proc/{self.pid}/fd"):
                try:
                    count += os.readlink(f"/proc/{self.pid}/fd/{fd}").startswith("socket:")
                except OSError:
                    pass
        except OSError:
            return None
        return count

    def tcp_states(self):
        """Server-side sockets on its port (local port = PORT, listeners excluded), by state."""
        counts = {}
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as f:
                    rows = f.read().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                fields = row.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == self.port and fields[3] != "0A":
                    state = TCP_STATES.get(fields[3], fields[3])
                    counts[state] = counts.get(state, 0) + 1
        return counts

class Watch:
    """Figures of one attack: a snapshot before, peaks and the worst /health during, a snapshot
    after."""

    def __init__(self, server):
        self.server = server
        self.before = self.snapshot()
        self.rss_peak, self.fds_peak = self.before["rss"], self.before["fds"]
        self.health_worst, self.health_fails, self.probes = 0.0, [], 0
        self.after = None
        self.capped = False

    def snapshot(self):
        ms, status = health(self.server.port) if self.server.alive() else (None, "exited")
        return {"rss": self.server.rss_mb(), "fds": self.server.fds(),
                "health_ms": ms, "health": status}

    def sample(self):
        rss, fds = self.server.rss_mb(), self.server.fds()
        if rss is not None:
            self.rss_peak = max(self.rss_peak or 0, rss)
            self.capped = self.capped or rss > RSS_CAP_MB
        if fds is not None:
            self.fds_peak = max(self.fds_peak or 0, fds)

    def probe(self):
        ms, status = health(self.server.port)
        self.probes += 1
        self.health_worst = max(self.health_worst, ms)
        if status != 200:
            self.health_fails.append(status)
        return ms, status

    def run(self, seconds, health_every=0.5, step=0.1):
        """Samples for `seconds` (less once the RSS cap is passed), probing /health as it goes."""
        end = time.monotonic() + seconds
        next_probe = time.monotonic()
        while time.monotonic() < end and not self.capped:
            self.sample()
            if time.monotonic() >= next_probe:
                self.probe()
                next_probe = time.monotonic() + health_every
            time.sleep(step)
        self.sample()

    def settle(self, seconds=2.0):
        """The snapshot after, once the attackers are gone and `seconds` have passed."""
        time.sleep(seconds)
        self.after = self.snapshot()


# ---------------------------------------------------------------- registry helpers

def instance(service, n, metadata=None):
    iid = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}:8080"
    if metadata is None:
        metadata = {"build": f"{n:08}-" + "b" * META_PAD, "owner": "hostile-bench"}
    return {"regionId": REGION, "zoneId": ZONE, "groupId": None, "serviceId": service,
            "instanceId": iid, "ip": "10.0.0.1", "port": 8080, "protocol": "http",
            "url": f"http://{iid}/", "healthCheckUrl": f"http://{iid}/health",
            "machineName": "hostile-bench", "status": "up", "metadata": metadata}


def dumps(doc):
    return json.dumps(doc, separators=(",", ":"))


def register(port, instances, path="/api/registry/register.json", conn=None):
    """Registers `instances` (on `conn`, or a fresh connection); returns the reply."""
    body = dumps({"instances": instances})
    if conn is not None:
        return conn.request("POST", path, body)
    return once(port, "POST", path, body)


def registered(reply):
    doc = reply.json() or {}
    return reply.status == 200 and reply.error_code() == "success" and not doc.get("failedInstances")


def refusal(reply):
    """Why a registry reply is not a success, in a few words."""
    doc = reply.json() or {}
    failed = doc.get("failedInstances") or []
    if failed and isinstance(failed[0], dict):
        return (f"{reply.status} {failed[0].get('errorCode')}: "
                f"{str(failed[0].get('errorMessage')).split(': ', 1)[-1][:70]}")
    message = (doc.get("responseStatus") or {}).get("message")
    return f"{reply.status} {reply.error_code()}" + (f": {message[:70]}" if message else "")


def register_service(port, service, count, first=0):
    """Registers `count` padded instances of `service` in batches of BATCH, each batch on a
    fresh connection (so a short idle timeout never closes one between batches)."""
    for start in range(first, first + count, BATCH):
        batch = [instance(service, n) for n in range(start, min(start + BATCH, first + count))]
        reply = register(port, batch)
        if not registered(reply):
            raise RuntimeError(f"registering {service}: {refusal(reply)}")


def listing_path(service):
    return f"/api/discovery/service.json?serviceId={service}&regionId={REGION}&zoneId={ZONE}"


def listing(port, service):
    """(reply bytes, instances listed) of `service.json`."""
    reply = once(port, "GET", listing_path(service))
    doc = reply.json() or {}
    instances = (doc.get("service") or {}).get("instances") or []
    return len(reply.body), len(instances)


def mb(n_bytes):
    return n_bytes / 1e6


# ---------------------------------------------------------------- the attacks

def attack_pipelined_service(binary):
    """4 connections pipeline 32 GETs of a multi-MB service.json each and never read."""
    params = (f"{BIG_INSTANCES} instances (+{META_PAD} B metadata), {PIPE_CONNS} conns x "
              f"{PIPE_DEPTH} pipelined GET service.json, never read, watched {SAMPLE_S:.0f} s")
    service = "hostile.big.listing"
    with Server(binary, "pipelined-service") as srv:
        register_service(srv.port, service, BIG_INSTANCES)
        reply_len, listed = listing(srv.port, service)
        wire = http_request("GET", listing_path(service)) * PIPE_DEPTH
        watch, grown = growth_under_non_readers(srv, wire, PIPE_CONNS)
        facts = {"service.json reply": f"{mb(reply_len):.1f} MB, {listed} instances",
                 "asked for": f"{mb(reply_len * PIPE_CONNS * PIPE_DEPTH):.0f} MB of replies",
                 "peak growth": f"{grown:.0f} MB = {grown / mb(reply_len):.1f} replies"}
        outcome = f"+{grown:.0f} MB peak ({grown / mb(reply_len):.1f} replies of {mb(reply_len):.1f} MB)"
        return params, watch, facts, outcome


def attack_pipelined_delta(binary):
    """2 connections pipeline 16 services-delta.json from before a large registration each."""
    params = (f"version taken before {BIG_INSTANCES} registrations, {DELTA_CONNS} conns x "
              f"{DELTA_DEPTH} pipelined POST services-delta.json, never read, "
              f"watched {SAMPLE_S:.0f} s")
    service = "hostile.big.delta"
    with Server(binary, "pipelined-delta") as srv:
        version = once(srv.port, "GET", "/api/discovery/services.json").json()["version"]
        register_service(srv.port, service, BIG_INSTANCES)
        body = dumps({"version": version})
        delta = once(srv.port, "POST", "/api/discovery/services-delta.json", body)
        changes = sum(len(v) for v in ((delta.json() or {}).get("delta") or {}).values())
        wire = http_request("POST", "/api/discovery/services-delta.json", body) * DELTA_DEPTH
        watch, grown = growth_under_non_readers(srv, wire, DELTA_CONNS)
        size = mb(len(delta.body))
        facts = {"delta reply": f"{delta.status} {delta.error_code()}, {size:.1f} MB, "
                                f"{changes} changes",
                 "peak growth": f"{grown:.0f} MB = {grown / max(size, 0.001):.1f} replies"}
        outcome = f"+{grown:.0f} MB peak ({grown / max(size, 0.001):.1f} replies of {size:.1f} MB)"
        return params, watch, facts, outcome


def attack_held_sockets(binary):
    """60 connections that pipeline large GETs and never read, against 20 places and a 2 s idle
    timeout: are the places given back, are new clients served?"""
    params = (f"{' '.join(HELD_FLAGS)}; {HELD_CONNS} conns x {PIPE_DEPTH} pipelined GET "
              f"service.json ({BIG_INSTANCES} instances), never read; after {HELD_WAIT_S:.0f} s: "
              f"{HELD_PROBES} new /health clients")
    service = "hostile.big.held"
    with Server(binary, "held-sockets", HELD_FLAGS) as srv:
        register_service(srv.port, service, BIG_INSTANCES)
        watch = Watch(srv)
        tcp_before, sockets_before = srv.tcp_states(), srv.sockets()
        wire = http_request("GET", listing_path(service)) * PIPE_DEPTH
        attackers = []
        try:
            for _ in range(HELD_CONNS):
                attackers.append(non_reader(srv.port, wire))
            end = time.monotonic() + HELD_WAIT_S
            while time.monotonic() < end and not watch.capped:
                watch.sample()
                time.sleep(0.1)
            watch.sample()
            fds_at, rss_at, tcp_at = srv.fds(), srv.rss_mb(), srv.tcp_states()
            held = srv.sockets() - sockets_before
            probes_start = time.monotonic()
            probes = [watch.probe() for _ in range(HELD_PROBES)]
            probes_s = time.monotonic() - probes_start
            held_after_probes = srv.sockets() - sockets_before
        finally:
            close_all(attackers)
        watch.settle(3.0)
        tcp_after = srv.tcp_states()
        served = sum(1 for _, status in probes if status == 200)
        others = sorted({str(status) for _, status in probes if status != 200})
        facts = {f"at {HELD_WAIT_S:.0f} s": f"fds {fds_at}, RSS {rss_at:.0f} MB, {held} connections "
                                            f"held, server sockets {tcp_at or 'none'}",
                 "new /health clients": f"{served}/{HELD_PROBES} served"
                                        + (f", others: {', '.join(others)}" if others else "")
                                        + f"; took {probes_s:.1f} s, then {held_after_probes} "
                                          f"connections held",
                 "server sockets before / after": f"{tcp_before or 'none'} / {tcp_after or 'none'}"}
        established = tcp_at.get("ESTABLISHED", 0)
        outcome = (f"at {HELD_WAIT_S:.0f} s: {held} held, {established} estab, "
                   f"{served}/{HELD_PROBES} /health served")
        return params, watch, facts, outcome


def churn(binary, tag, count, value_bytes, huge=None):
    """Re-registers one instance `count` times with a `value_bytes` metadata value (and once
    with a `huge` one), then unregisters it."""
    params = (f"re-register 1 instance {count} x with a {value_bytes // 1024} KiB metadata value"
              + (f", once with {huge / 1e6:.0f} MB" if huge else "") + ", then unregister")
    service = f"hostile.{tag}"
    with Server(binary, tag) as srv:
        watch = Watch(srv)
        accepted, first_refusal = 0, None
        conn = Conn(srv.port)
        try:
            for n in range(count):
                value = f"{n:08}" + "m" * (value_bytes - 8)
                reply = register(srv.port, [instance(service, 1, {"blob": value})], conn=conn)
                if registered(reply):
                    accepted += 1
                elif first_refusal is None:
                    first_refusal = f"{refusal(reply)} (reply {len(reply.body) // 1024} KiB)"
                if n % 10 == 0:
                    watch.sample()
                if n % max(count // 10, 1) == 0:
                    watch.probe()
            huge_result = None
            if huge:
                reply = register(srv.port, [instance(service, 1, {"blob": "h" * huge})], conn=conn)
                huge_result = "accepted" if registered(reply) else f"refused ({refusal(reply)})"
                watch.sample()
            unregister = conn.request("POST", "/api/registry/unregister.json",
                                      dumps({"instances": [instance(service, 1)]}))
        finally:
            conn.close()
        watch.sample()
        watch.settle(1.0)
        facts = {"accepted": f"{accepted}/{count}"
                             + (f"; first refusal: {first_refusal}" if first_refusal else ""),
                 "unregister": f"{unregister.status} {unregister.error_code()}"}
        if huge:
            facts[f"{huge / 1e6:.0f} MB value"] = huge_result
        grown = watch.after["rss"] - watch.before["rss"]
        outcome = f"{accepted}/{count} taken; RSS after {grown:+.0f} MB"
        if huge:
            outcome += f"; 1 MB {huge_result.split(' ')[0]}"
        return params, watch, facts, outcome


def attack_metadata_churn(binary):
    return churn(binary, "metadata-churn", *CHURN_BIG, huge=CHURN_HUGE)


def attack_metadata_churn_small(binary):
    return churn(binary, "metadata-churn-small", *CHURN_SMALL)


def attack_ws_subscribers(binary):
    """100 all-instance-change sessions that never read while 15 000 instances register."""
    params = (f"{WS_SUBSCRIBERS} all-instance-change sessions never reading; register "
              f"{WS_INSTANCES} instances (+{META_PAD} B metadata) in batches of {BATCH}; "
              f"watched {SAMPLE_S:.0f} s")
    service = "hostile.ws"
    with Server(binary, "ws-subscribers") as srv:
        watch = Watch(srv)
        sessions = []
        try:
            sessions = [ws_open(srv.port, "/ws/discovery/all-instance-change")
                        for _ in range(WS_SUBSCRIBERS)]
            start = time.monotonic()
            for first in range(0, WS_INSTANCES, BATCH):
                register_service(srv.port, service, min(BATCH, WS_INSTANCES - first), first)
                watch.sample()
            register_s = time.monotonic() - start
            watch.run(SAMPLE_S)
            established = srv.tcp_states().get("ESTABLISHED", 0)
            read, drained = ws_outcomes(sessions, idle=0.5, limit=30.0)
        finally:
            close_all(sessions)
        watch.settle()
        outcomes = {}
        for what in read:
            outcomes[what] = outcomes.get(what, 0) + 1
        closed = sum(v for k, v in outcomes.items() if k != "open")
        facts = {"registering took": f"{register_s:.1f} s",
                 "server sockets ESTABLISHED before reading": str(established),
                 "sessions, read until closed or idle": ", ".join(
                     f"{k}: {v}" for k, v in sorted(outcomes.items())),
                 "bytes read back": f"{mb(drained):.0f} MB"}
        outcome = f"{closed}/{WS_SUBSCRIBERS} closed (" + ", ".join(
            f"{k} x{v}" for k, v in sorted(outcomes.items())) + ")"
        return params, watch, facts, outcome


def attack_subscribe_flood(binary):
    """One instance-change session sends 40 000 subscriptions in a few large writes."""
    params = (f"1 instance-change session sends {FLOOD_FRAMES} masked frames "
              f'{{"serviceId":"svc-N"}} in {FLOOD_WRITES} writes; /health after each write')
    with Server(binary, "subscribe-flood") as srv:
        watch = Watch(srv)
        frames = [ws_frame(dumps({"serviceId": f"svc-{n}"}).encode())
                  for n in range(FLOOD_FRAMES)]
        per_write = -(-FLOOD_FRAMES // FLOOD_WRITES)
        session = ws_open(srv.port, "/ws/discovery/instance-change")
        sent, send_error = 0, None
        try:
            session.sock.settimeout(10.0)
            for i in range(0, FLOOD_FRAMES, per_write):
                try:
                    session.sock.sendall(b"".join(frames[i:i + per_write]))
                    sent = min(i + per_write, FLOOD_FRAMES)
                except OSError as err:
                    send_error = type(err).__name__
                    break
                watch.sample()
                watch.probe()
            watch.run(2.0)
            what = ws_outcomes([session], idle=1.0, limit=5.0)[0][0]
        finally:
            session.close()
        watch.settle()
        facts = {"frames handed to the socket": f"{sent}/{FLOOD_FRAMES}"
                                   + (f" (then {send_error})" if send_error else ""),
                 "session": what,
                 "/health during": f"worst {watch.health_worst:.1f} ms over {watch.probes} probes"}
        outcome = f"session {what}; {sent} frames sent"
        return params, watch, facts, outcome


def socket_owners(port, clients, pids):
    """Which of `pids` holds the server side of each client connection to `port` (found by the
    socket's inode in /proc/net/tcp and the processes' /proc/PID/fd links)."""
    inodes = {}
    with open("/proc/net/tcp") as f:
        for row in f.read().splitlines()[1:]:
            fields = row.split()
            local, remote = fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]
            if int(local, 16) == port:
                inodes[int(remote, 16)] = fields[9]
    held = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    held[os.readlink(f"/proc/{pid}/fd/{fd}")] = pid
                except OSError:
                    pass
        except OSError:
            pass
    return [held.get(f"socket:[{inodes.get(c.getsockname()[1])}]") for c in clients]


def attack_second_server(binary):
    """A second server on the address the first serves."""
    params = ("start a second server with the same --addr; wait up to 5 s for it to exit; "
              "if it runs, 10 new connections: which server accepts each")
    with Server(binary, "second-server") as first:
        watch = Watch(first)
        log_path = os.path.join(RESULTS_DIR, "second-server.second.log")
        with open(log_path, "wb") as log:
            second = subprocess.Popen(server_args(binary, first.port),
                                      stdout=log, stderr=subprocess.STDOUT)
        taken = None
        try:
            try:
                code = second.wait(timeout=5)
                fate = f"exited {code}"
            except subprocess.TimeoutExpired:
                fate = "kept running"
                clients = [socket.create_connection(("127.0.0.1", first.port), timeout=5)
                           for _ in range(10)]
                try:
                    time.sleep(0.3)
                    owners = socket_owners(first.port, clients, [first.pid, second.pid])
                    taken = sum(1 for o in owners if o == second.pid)
                finally:
                    close_all(clients)
            with open(log_path, "rb") as f:
                lines = f.read().decode(errors="replace").strip().splitlines()
            watch.sample()
        finally:
            if second.poll() is None:
                second.send_signal(signal.SIGTERM)
                try:
                    second.wait(timeout=6)
                except subprocess.TimeoutExpired:
                    second.kill()
                    second.wait(timeout=5)
        watch.probe()
        watch.settle(0.5)
        first_ok = first.alive() and watch.after["health"] == 200
        facts = {"second server": fate, "its last log line": (lines or [""])[-1][:120],
                 "first still answers": "yes" if first_ok else f"no ({watch.after['health']})"}
        outcome = f"second {fate}"
        if taken is not None:
            facts["new connections the second accepted"] = f"{taken}/10"
            outcome += f", accepted {taken}/10 new conns"
        outcome += f"; first answers: {'yes' if first_ok else 'no'}"
        return params, watch, facts, outcome


def attack_text_plain_write(binary):
    """A cross-origin register sent as text/plain (a "simple" request browsers send unasked)."""
    params = "POST register.json, Content-Type: text/plain, Origin: http://evil.example"
    service = "hostile.text.plain"
    with Server(binary, "text-plain-write") as srv:
        watch = Watch(srv)
        reply = once(srv.port, "POST", "/api/registry/register.json",
                     dumps({"instances": [instance(service, 1)]}), content_type="text/plain",
                     headers=["Origin: http://evil.example"])
        _, listed = listing(srv.port, service)
        watch.sample()
        watch.settle(0.2)
        facts = {"reply": f"{reply.status} {reply.error_code()}",
                 "Access-Control-Allow-Origin": reply.headers.get("access-control-allow-origin", "-"),
                 "Access-Control-Allow-Credentials":
                     reply.headers.get("access-control-allow-credentials", "-"),
                 "service.json lists it": "yes" if listed else "no"}
        outcome = f"{reply.status}; {'registered' if listed else 'not registered'}"
        return params, watch, facts, outcome


def attack_sigterm_ws(binary):
    """SIGTERM while a WebSocket session is open: what does the client read?"""
    params = "1 all-instance-change session open; SIGTERM the server; read the session"
    with Server(binary, "sigterm-ws") as srv:
        watch = Watch(srv)
        session = ws_open(srv.port, "/ws/discovery/all-instance-change")
        try:
            start = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            what = ws_outcomes([session], idle=7.0, limit=7.0)[0][0]
            read_ms = (time.monotonic() - start) * 1000
        finally:
            session.close()
        try:
            code = srv.proc.wait(timeout=6)
        except subprocess.TimeoutExpired:
            code = "still running after 6 s"
        exit_s = time.monotonic() - start
        watch.after = {"rss": None, "fds": None, "health_ms": None, "health": "exited"}
        facts = {"client read": f"{what} after {read_ms:.0f} ms",
                 "server": f"exit {code} after {exit_s:.1f} s"}
        outcome = f"client read {what}; server exit {code}"
        return params, watch, facts, outcome


def attack_many_unknown_heartbeats(binary):
    """One heartbeat of 100 000 unknown instances."""
    keys = [{"regionId": REGION, "serviceId": "hostile.unknown", "instanceId": f"u-{n:08}"}
            for n in range(HEARTBEAT_KEYS)]
    body = dumps({"instances": keys}).encode()
    params = f"1 heartbeat.json of {HEARTBEAT_KEYS} unknown instances ({mb(len(body)):.1f} MB body)"
    with Server(binary, "many-unknown-heartbeats") as srv:
        watch = Watch(srv)
        conn = Conn(srv.port, timeout=60.0)
        try:
            start = time.monotonic()
            conn.sock.sendall(http_request("POST", "/api/registry/heartbeat.json", body))
            conn.sock.settimeout(0.05)
            reply = None
            while reply is None and time.monotonic() - start < 60:
                watch.sample()
                try:
                    conn._fill()
                except socket.timeout:
                    continue
                conn.sock.settimeout(60.0)
                reply = conn.read_reply()
            took = (time.monotonic() - start) * 1000
        finally:
            conn.close()
        watch.sample()
        watch.probe()
        watch.settle(1.0)
        if reply is None:
            facts = {"reply": "none within 60 s"}
            return params, watch, facts, "no reply"
        failed = (reply.json() or {}).get("failedInstances")
        facts = {"reply": f"{refusal(reply)}, {mb(len(reply.body)):.2f} MB in {took:.0f} ms",
                 "failedInstances": "null" if failed is None else f"{len(failed)} entries"}
        outcome = (f"{reply.status} {reply.error_code()}, reply {mb(len(reply.body)):.2f} MB, "
                   f"failed {'null' if failed is None else len(failed)}")
        return params, watch, facts, outcome


ATTACKS = {
    "pipelined-service": attack_pipelined_service,
    "pipelined-delta": attack_pipelined_delta,
    "held-sockets": attack_held_sockets,
    "metadata-churn": attack_metadata_churn,
    "metadata-churn-small": attack_metadata_churn_small,
    "ws-subscribers": attack_ws_subscribers,
    "subscribe-flood": attack_subscribe_flood,
    "second-server": attack_second_server,
    "text-plain-write": attack_text_plain_write,
    "sigterm-ws": attack_sigterm_ws,
    "many-unknown-heartbeats": attack_many_unknown_heartbeats,
}


# ---------------------------------------------------------------- output

def fmt(value, spec=".0f"):
    return "-" if value is None else format(value, spec)


def fmt_health(ms, status):
    if ms is None:
        return str(status)
    return f"{ms:.1f}" if status == 200 else f"{ms:.0f} ({status})"


def fmt_worst(watch):
    if not watch.probes:
        return "-"
    text = f"{watch.health_worst:.1f}"
    if watch.health_fails:
        kinds = sorted({str(s) for s in watch.health_fails})
        text += f" ({len(watch.health_fails)}/{watch.probes} {'/'.join(kinds)})"
    return text


def print_attack(name, params, watch, facts, outcome, seconds):
    print(f"\n== {name} ({seconds:.1f} s) ==")
    print(f"   {params}")
    rows = [("before", watch.before["rss"], watch.before["fds"],
             fmt_health(watch.before["health_ms"], watch.before["health"])),
            ("peak", watch.rss_peak, watch.fds_peak, f"worst {fmt_worst(watch)}"),
            ("after", watch.after["rss"], watch.after["fds"],
             fmt_health(watch.after["health_ms"], watch.after["health"]))]
    print(f"   {'':8}{'RSS MB':>9}{'fds':>7}   /health ms")
    for phase, rss, fds, probe in rows:
        print(f"   {phase:8}{fmt(rss, '.1f'):>9}{fmt(fds, 'd'):>7}   {probe}")
    if watch.capped:
        print(f"   (stopped early: RSS passed {RSS_CAP_MB} MB)")
    for key, value in facts.items():
        print(f"   {key}: {value}")
    print(f"   outcome: {outcome}")


def print_summary(rows):
    head = ["attack", "RSS MB before/peak/after", "fds before/peak/after",
            "/health worst ms", "outcome"]
    table = [head] + [
        [r["attack"],
         f"{fmt(r['rss'][0])} / {fmt(r['rss'][1])} / {fmt(r['rss'][2])}",
         f"{fmt(r['fds'][0], 'd')} / {fmt(r['fds'][1], 'd')} / {fmt(r['fds'][2], 'd')}",
         r["health_worst"], r["outcome"]] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head) - 1)]
    print("\n== summary ==")
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])


def main():
    global RESULTS_DIR, RSS_CAP_MB
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", required=True, help="the artemis binary to attack")
    parser.add_argument("--out", default=RESULTS_DIR, help="logs and JSON figures (%(default)s)")
    parser.add_argument("--rss-cap-mb", type=int, default=RSS_CAP_MB,
                        help="stop an attack early once the server's RSS passes this")
    parser.add_argument("attacks", nargs="*", metavar="ATTACK",
                        help=f"any of: {', '.join(ATTACKS)} (default: all)")
    args = parser.parse_args()
    unknown = [a for a in args.attacks if a not in ATTACKS]
    if unknown:
        parser.error(f"unknown attack(s) {unknown}; known: {', '.join(ATTACKS)}")
    RESULTS_DIR, RSS_CAP_MB = args.out, args.rss_cap_mb
    binary = os.path.abspath(args.bin)
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    print(f"binary: {binary} ({version.stdout.strip() or version.stderr.strip()}), "
          f"modified {time.ctime(os.path.getmtime(binary))}")
    print(f"server flags: server --addr 127.0.0.1:PORT {' '.join(COMMON_FLAGS)}; "
          f"{os.cpu_count()} CPUs")

    rows = []
    for name in args.attacks or list(ATTACKS):
        start = time.monotonic()
        try:
            params, watch, facts, outcome = ATTACKS[name](binary)
        except Exception as err:  # one attack's failure must not stop the others
            print(f"\n== {name}: FAILED: {type(err).__name__}: {err}")
            rows.append({"attack": name, "rss": [None] * 3, "fds": [None] * 3,
                         "health_worst": "-", "outcome": f"error: {type(err).__name__}: {err}"[:90]})
            continue
        print_attack(name, params, watch, facts, outcome, time.monotonic() - start)
        rows.append({"attack": name, "params": params, "facts": facts,
                     "rss": [watch.before["rss"], watch.rss_peak, watch.after["rss"]],
                     "fds": [watch.before["fds"], watch.fds_peak, watch.after["fds"]],
                     "health_worst": fmt_worst(watch), "outcome": outcome})
        sys.stdout.flush()
    print_summary(rows)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    label = binary.strip("/").replace("/", "_")
    with open(os.path.join(RESULTS_DIR, f"{label}.json"), "w") as f:
        json.dump({"binary": binary, "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
                   "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
