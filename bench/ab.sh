#!/bin/bash
# Two builds side by side: saturation of the registry and of the no-op server, and the server CPU
# a heartbeat costs at a low rate, alternating the builds run by run so a noisy moment hits both.
#
#   bench/ab.sh BEFORE_DIR AFTER_DIR [ROUNDS]    # each dir holds artemis, artemis-noop, artemis-loadgen
#   python3 bench/ab_summary.py /tmp/artemis-ab  # the tables of docs/benchmarks.md
#
# Layouts: "shared" (server and load generator both on cores 0,1) and "own" (server on core 1,
# load generator on core 0). Saturation: artemis-loadgen --max, 16 connections, 1 s warm-up and
# 4 s measured, for heartbeat, discover and reregister over 1 000 instances in 100 services.
# Low rate: heartbeat at 1 000 requests/s for 8 s; the server's CPU time (utime + stime from
# /proc/PID/stat) across the run divided by the requests sent; in the layouts above, and in
# "own-busy" (own, with the load generator's --busy-poll, so that no reply has to wake it).
# Every run records the steal time of the machine and its load average. The binaries run as
# copies named reg, noop and lg, so that a clean-up by process name elsewhere on a shared machine
# does not stop them mid-run.
# Results: one JSON line per run in $OUT/sat.jsonl and $OUT/low.jsonl (OUT=/tmp/artemis-ab).
set -u
BEFORE=$1; AFTER=$2; ROUNDS=${3:-3}
OUT=${OUT:-/tmp/artemis-ab}
mkdir -p "$OUT/before" "$OUT/after"
for side in before after; do
    src=$BEFORE; [ $side = after ] && src=$AFTER
    cp "$src/artemis" "$OUT/$side/reg"
    cp "$src/artemis-noop" "$OUT/$side/noop"
    cp "$src/artemis-loadgen" "$OUT/$side/lg"
done
LG=$OUT/after/lg

# one SIDE KIND SCENARIO LAYOUT MODE: one measured run, as one JSON line (MODE: max or rate=N).
one() {
    local side=$1 kind=$2 scen=$3 layout=$4 mode=$5
    local bin=$OUT/$side port=$((19100 + RANDOM % 800)) dir sc lc pacing spid busy=
    dir=$(mktemp -d "$OUT/run.XXXX")
    case $layout in
        own) sc=1; lc=0 ;;
        own-busy) sc=1; lc=0; busy=--busy-poll ;;
        *) sc=0,1; lc=0,1 ;;
    esac
    if [ "$kind" = reg ]; then
        "$bin/reg" server --addr 127.0.0.1:$port --cores $sc --rate-limit false --lease-ttl 1h \
            --data-dir "$dir/data" >"$dir/server.log" 2>&1 &
    else
        "$bin/noop" --addr 127.0.0.1:$port --cores $sc >"$dir/server.log" 2>&1 &
    fi
    spid=$!
    for _ in $(seq 50); do grep -q "serving" "$dir/server.log" 2>/dev/null && break; sleep 0.1; done
    sleep 0.3
    if [ "$kind" = reg ]; then
        "$LG" --target http://127.0.0.1:$port --scenario heartbeat --prefill 1000 --services 100 \
            --rate 100 --duration 1s --warmup 0s --quiet >/dev/null 2>&1
    fi
    if [ "$mode" = max ]; then pacing="--max --duration 4s"; else pacing="--rate ${mode#rate=} --duration 8s"; fi
    local t0 t1 st0 st1 s0 s1
    t0=$(awk '{print $14+$15}' /proc/$spid/stat); st0=$(awk '/^cpu /{print $9}' /proc/stat); s0=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$LG" --target http://127.0.0.1:$port --scenario "$scen" --prefilled 1000 --services 100 $pacing \
        --warmup 1s --connections 16 --cores $lc $busy --json "$dir/lg.json" >"$dir/lg.txt" 2>&1
    t1=$(awk '{print $14+$15}' /proc/$spid/stat); st1=$(awk '/^cpu /{print $9}' /proc/stat); s1=$(date +%s.%N)
    kill $spid 2>/dev/null; wait $spid 2>/dev/null
    python3 - "$side" "$kind" "$scen" "$layout" "$mode" "$t0" "$t1" "$st0" "$st1" "$s0" "$s1" "$dir" <<'PY'
import json, os, sys
side, kind, scen, layout, mode, t0, t1, st0, st1, s0, s1, d = sys.argv[1:]
hz, wall = os.sysconf('SC_CLK_TCK'), float(s1) - float(s0)
run = dict(side=side, kind=kind, scen=scen, layout=layout, mode=mode, load=open('/proc/loadavg').read().split()[0],
           cpu_s=(int(t1) - int(t0)) / hz, wall=wall, steal=(int(st1) - int(st0)) / hz / wall / os.cpu_count())
try:
    total = json.load(open(d + '/lg.json'))['total']
    run.update(rate=total['rate'], ok=total['ok'], failed=total['failed'], p50=total['latency_us']['p50'],
               p99=total['latency_us']['p99'], p999=total['latency_us']['p999'])
except (OSError, ValueError, KeyError) as e:
    run.update(error=str(e), log=open(d + '/lg.txt').read()[-300:])
print(json.dumps(run))
PY
    rm -rf "$dir"
}

for _ in $(seq "$ROUNDS"); do
    for layout in shared own; do
        for scen in heartbeat discover reregister; do
            for side in before after; do
                for kind in noop reg; do one $side $kind $scen $layout max; done
            done
        done
    done
done >"$OUT/sat.jsonl"
for _ in $(seq "$ROUNDS"); do
    for layout in shared own own-busy; do
        for side in before after; do
            for kind in noop reg; do one $side $kind heartbeat $layout rate=1000; done
        done
    done
done >"$OUT/low.jsonl"
echo "results in $OUT/sat.jsonl and $OUT/low.jsonl"
