#!/usr/bin/env bash
# Overload and attacks, measured with the load generator against the release server
# (docs/benchmarks.md, "Under attack and overload"). Each part starts a fresh server on a free
# port and prints the load generator's tables; the JSON reports and samples go to $OUT (default
# bench/results/overload).
#   bench/overload.sh [saturation|attack|garbage|expiry]...   (default: all four)
# Expects `cargo build --release --workspace` done; CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/release"
out="${OUT:-bench/results/overload}"
mkdir -p "$out"
server_pid=
servers=0
# A part that fails leaves no server behind.
trap '[ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null' EXIT

# Starts `artemis server ARGS` on a free port; sets $server_pid and $target.
start_server() {
    servers=$((servers + 1))
    local log="$out/server-$servers.log"
    rm -f "$log"
    "$bin/artemis" server --addr 127.0.0.1:0 "$@" >"$log" 2>&1 &
    server_pid=$!
    until grep -q "serving on" "$log" 2>/dev/null; do sleep 0.1; done
    target="http://$(sed -n 's/.*serving on \([0-9.:]*\):.*/\1/p' "$log")"
}
stop_server() { kill "$server_pid"; wait "$server_pid" || true; server_pid=; }
rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$server_pid/status"; }
load() { echo "# load average $(cut -d' ' -f1-3 /proc/loadavg)"; }
loadgen() { "$bin/artemis-loadgen" --target "$target" --quiet "$@"; }
field() { jq -r "$1" "$2"; }

# Saturation with --max, then twice that rate open loop on 256 connections, probing /health and
# /metrics and sampling the server's RSS every second.
saturation() {
    start_server --lease-ttl 1h
    loadgen --scenario discover --prefill 10000 --services 1000 --max --duration 5s --json "$out/sat.json"
    local sat rate
    sat=$(field .achieved_rate "$out/sat.json")
    rate=$(awk -v s="$sat" 'BEGIN { printf "%d", 2 * s }')
    echo "saturation $sat/s; open loop at $rate/s"; load
    echo "RSS before: $(rss)"
    (while sleep 1; do echo "RSS during: $(rss)"; done) &
    local sampler=$!
    loadgen --scenario discover --prefill 10000 --prefilled 10000 --services 1000 --rate "$rate" \
        --connections 256 --duration 10s --probe 250ms --json "$out/overload.json"
    kill "$sampler"
    sleep 2
    echo "RSS after: $(rss)"; load
    stop_server
}

# Well-behaved discovery at 5000/s on a fresh server, without and with `--attack $2`, alternating,
# twice each; further arguments go to the measured runs. Reports go to $out/$1-ROUND-KIND.json.
alternate() {
    local name=$1 hostile=$2
    shift 2
    start_server
    loadgen --prefill 1000 --rate 100 --duration 1s >/dev/null
    for round in 1 2; do
        for attack in none "$hostile"; do
            local args=()
            [ "$attack" = none ] || args=(--attack "$attack")
            load; echo "RSS $(rss), attack: $attack"
            loadgen --prefill 1000 --prefilled 1000 --rate 5000 "$@" \
                "${args[@]}" --json "$out/$name-$round-${attack%%=*}.json"
        done
    done
    stop_server
}

# 10 000 idle connections and 100 slowloris connections; the 5 s warm-up covers the server
# accepting the 10 000.
attack() { alternate attack "idle=10000,slowloris=100" --warmup 5s --duration 8s --probe 250ms; }

# 4 connections sending a burst of random bytes every millisecond.
garbage() { alternate garbage "garbage=4" --duration 10s; }

# 100 000 instances heartbeated every 2 s for 14 s, then not at all, under a discovery load
# that runs through their expiry; the instance count sampled every 100 ms. Self-preservation
# on, then off.
expiry() {
    for preservation in true false; do
        start_server --lease-ttl 5s --clean-interval 100ms --eviction-batch 5000 \
            --self-preservation "$preservation"
        local samples="$out/expiry-$preservation.samples"
        load
        loadgen --scenario heartbeat --prefill 100000 --services 10000 --batch 100 \
            --interval 2s --warmup 0s --duration 14s --json "$out/expiry-$preservation-heartbeat.json" &
        local heartbeats=$!
        sleep 4
        loadgen --scenario discover --prefill 100000 --prefilled 100000 --services 10000 \
            --rate 2000 --warmup 0s --duration 25s --probe 250ms \
            --json "$out/expiry-$preservation-discover.json" &
        local discovery=$!
        wait "$heartbeats"
        echo "heartbeats stopped at $(date +%s.%N)" >"$samples"
        for _ in $(seq 150); do
            echo "$(date +%s.%N) $(curl -s "$target/metrics" | awk '/^artemis_active_instances / {print $2}')" >>"$samples"
            sleep 0.1
        done
        wait "$discovery"
        echo "self-preservation $preservation: instances after the heartbeats stopped (s, count):"
        awk 'NR == 1 { t0 = $4; next } { printf "%.1f %s\n", $1 - t0, $2 }' "$samples" \
            | awk '$2 != last { print; last = $2 }'
        jq -r '"discovery through the expiry: ok \(.ops[0].ok) failed \(.ops[0].failed) p50 \(.ops[0].latency_us.p50)us p99 \(.ops[0].latency_us.p99)us p99.9 \(.ops[0].latency_us.p999)us max \(.ops[0].latency_us.max)us"' \
            "$out/expiry-$preservation-discover.json"
        curl -s "$target/metrics" | grep -E '^artemis_(leases_expired_total|self_preservation_safe)'
        load
        stop_server
    done
}

for part in "${@:-saturation attack garbage expiry}"; do
    for p in $part; do "$p"; done
done
