#!/usr/bin/env bash
# A local Artemis cluster on loopback, for trying replication and for load runs against several
# nodes (artemis-loadgen --targets). Every node lists all of them in --cluster-nodes and keeps
# its log, pid and management store under a folder of its own (.cluster/ by default), so the
# script can stop, restart and inspect the cluster later. See `./cluster.sh help`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR=${CLUSTER_DIR:-$ROOT/.cluster}
BIN=${CLUSTER_BIN:-$ROOT/target/release/artemis}
SETTINGS=$DIR/cluster.env
START_TIMEOUT=${CLUSTER_START_TIMEOUT:-60}
STOP_TIMEOUT=10
LOG_LINES=${CLUSTER_LOG_LINES:-50}

usage() {
    cat <<EOF
Usage: ./cluster.sh COMMAND [ARGS]

A cluster of Artemis nodes on 127.0.0.1, its logs, pids and stores under ${DIR#"$ROOT"/}/.

Commands:
  start [N] [BASE_PORT]  start N nodes (default 3) on ports BASE_PORT.. (default 8080),
                         building target/release/artemis first if it is missing or older than
                         the sources; waits until every node answers /health, is up and
                         sees the others up
  status                 each node: its process, its status/node.json status, its instances
  logs [K] [-f]          the last $LOG_LINES lines of node K's log (1..N), or of every node's;
                         -f follows them
  stop                   SIGTERM every node, SIGKILL those still there after ${STOP_TIMEOUT} s
  restart                stop, then start as many nodes on the same ports as the last start
                         (cores and extra flags from this environment, as start takes them)
  clean                  stop, then remove ${DIR#"$ROOT"/}/ (logs and management stores)
  help                   this text

Cores: each node is pinned to its own share of the cores this shell may use (nproc / N each,
the rest left to the load generator); with fewer cores than nodes, on a 2-core machine for
one, every node runs on all of them and they share. ARTEMIS_CORES=0-3 gives every node that
list instead.

Environment:
  ARTEMIS_CORES          the --cores of every node (see above)
  ARTEMIS_EXTRA_ARGS     more server flags for every node, e.g. "--rate-limit false"
  CLUSTER_DIR            where logs, pids and stores go (default .cluster/)
  CLUSTER_BIN            the server binary to run instead of building target/release/artemis
  CLUSTER_START_TIMEOUT  seconds start waits for the nodes (default 60)
  CLUSTER_LOG_LINES      lines logs shows (default 50)

Exit status: 0 done, 1 failed (or, for status, a node down or not up), 2 bad usage.
EOF
}

die() {
    echo "cluster.sh: $*" >&2
    exit 1
}

bad_usage() {
    echo "cluster.sh: $* (see ./cluster.sh help)" >&2
    exit 2
}

is_count() {
    [[ $1 =~ ^[1-9][0-9]*$ ]]
}

node_dir() {
    echo "$DIR/node$1"
}

port_of() {
    echo $((BASE + $1 - 1))
}

url_of() {
    echo "http://127.0.0.1:$(port_of "$1")/"
}

# N and BASE of the last start; false when there is none.
load_settings() {
    [[ -f $SETTINGS ]] || return 1
    N=$(sed -n 's/^N=//p' "$SETTINGS")
    BASE=$(sed -n 's/^BASE=//p' "$SETTINGS")
    if ! is_count "$N" || ! is_count "$BASE"; then
        die "$SETTINGS is damaged; ./cluster.sh clean starts afresh"
    fi
}

# The pid node K was started with, or nothing.
started_pid() {
    local file pid
    file=$(node_dir "$1")/pid
    [[ -f $file ]] || return 0
    pid=$(<"$file")
    [[ $pid =~ ^[0-9]+$ ]] && echo "$pid"
    return 0
}

# The pid of node K when it is running (the server binary under that pid, not a process that
# took its number since), else nothing.
running_pid() {
    local pid
    pid=$(started_pid "$1")
    [[ -n $pid && -r /proc/$pid/comm ]] || return 0
    if [[ $(<"/proc/$pid/comm") == "$(basename "$BIN" | cut -c1-15)" ]]; then
        echo "$pid"
    fi
}

any_running() {
    local k
    for ((k = 1; k <= N; k++)); do
        [[ -n $(running_pid "$k") ]] && return 0
    done
    return 1
}

# The cores of node K as a --cores list, or nothing to leave the server's default.
cores_of() {
    if [[ -n ${ARTEMIS_CORES:-} ]]; then
        echo "$ARTEMIS_CORES"
        return
    fi
    local list part parts cpus=() per from
    list=$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status)
    IFS=, read -r -a parts <<<"$list"
    for part in "${parts[@]}"; do
        if [[ $part == *-* ]]; then
            mapfile -t -O "${#cpus[@]}" cpus < <(seq "${part%-*}" "${part#*-}")
        else
            cpus+=("$part")
        fi
    done
    per=$((${#cpus[@]} / N))
    if ((per == 0)); then
        per=${#cpus[@]}
        from=0
    else
        from=$(((${1} - 1) * per))
    fi
    local IFS=,
    echo "${cpus[*]:from:per}"
}

needs_build() {
    [[ ! -x $BIN ]] && return 0
    [[ -n $(find "$ROOT/src" "$ROOT/shards" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" \
        -newer "$BIN" -print -quit) ]]
}

build() {
    if [[ -n ${CLUSTER_BIN:-} ]]; then
        [[ -x $BIN ]] || die "CLUSTER_BIN=$BIN is not an executable"
        return
    fi
    needs_build || return 0
    echo "building $BIN (cargo build --release -p artemis) ..."
    (cd "$ROOT" && cargo build --release -p artemis) || die "the build failed"
}

port_taken() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The status node K gives in status/node.json (up, starting, ...), or nothing.
node_status() {
    curl -s --max-time 2 -X POST -H 'Content-Type: application/json' -d '{}' \
        "$(url_of "$1")api/status/node.json" 2>/dev/null |
        grep -o '"status":"[a-z-]*"' | head -n 1 | cut -d'"' -f4 || true
}

# The instances node K holds (artemis_active_instances), or nothing.
node_instances() {
    curl -s --max-time 2 "$(url_of "$1")metrics" 2>/dev/null |
        awk '/^artemis_active_instances[ {]/ {n += $NF; seen = 1} END {if (seen) print n}' || true
}

# Whether node K counts every node up: its cluster/up-registry-nodes.json lists all N (a node
# replicates only to the peers it saw up when it last asked them).
sees_all_up() {
    local listed
    listed=$(curl -s --max-time 2 -X POST -H 'Content-Type: application/json' -d '{}' \
        "$(url_of "$1")api/cluster/up-registry-nodes.json" 2>/dev/null | grep -o '"url":"' | wc -l)
    ((listed == N))
}

answers_health() {
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$(url_of "$1")health" 2>/dev/null) == 200 ]]
}

cmd_start() {
    (($# <= 2)) || bad_usage "start takes [N] [BASE_PORT]"
    N=${1:-3}
    BASE=${2:-8080}
    is_count "$N" || bad_usage "N must be a number of nodes, not '$N'"
    is_count "$BASE" || bad_usage "BASE_PORT must be a port, not '$BASE'"
    ((BASE + N - 1 <= 65535)) || bad_usage "ports $BASE..$((BASE + N - 1)) go past 65535"
    command -v curl >/dev/null || die "curl is needed to watch the nodes"
    local n=$N base=$BASE
    if load_settings && any_running; then
        die "a cluster of $N nodes from port $BASE is running; ./cluster.sh stop (or restart) first"
    fi
    N=$n BASE=$base
    local k port
    for ((k = 1; k <= N; k++)); do
        port=$(port_of "$k")
        port_taken "$port" && die "port $port is taken by another process"
    done
    build
    mkdir -p "$DIR"
    printf 'N=%s\nBASE=%s\n' "$N" "$BASE" >"$SETTINGS"
    local nodes="" extra=() cores
    for ((k = 1; k <= N; k++)); do
        nodes+="${nodes:+,}$(url_of "$k")"
    done
    read -r -a extra <<<"${ARTEMIS_EXTRA_ARGS:-}"
    for ((k = 1; k <= N; k++)); do
        local dir
        dir=$(node_dir "$k")
        mkdir -p "$dir/data"
        cores=$(cores_of "$k")
        echo "=== $(date '+%F %T') node $k: --addr 127.0.0.1:$(port_of "$k") --cores $cores" \
            "${extra[*]}" >>"$dir/artemis.log"
        nohup "$BIN" server --addr "127.0.0.1:$(port_of "$k")" --node-url "$(url_of "$k")" \
            --cluster-nodes "$nodes" --data-dir "$dir/data" --cores "$cores" "${extra[@]}" \
            </dev/null >>"$dir/artemis.log" 2>&1 &
        echo $! >"$dir/pid"
        echo "node $k: $(url_of "$k") (pid $!, cores $cores)"
    done
    wait_until_up
    echo "artemis-loadgen --targets $(targets)"
}

# Waits for every node to answer /health, then to be `up`, then to see every node up (so that
# a register on any node is replicated to all); a node that exits or takes longer than
# START_TIMEOUT fails the start, and the other nodes are stopped (their logs stay). A node just
# started may still be `nohup` under its pid: this one asks whether the pid lives.
wait_until_up() {
    local deadline=$((SECONDS + START_TIMEOUT)) k pending phase
    local -A what=([health]="answering /health" [up]=up [peers]="seeing every node up")
    for phase in health up peers; do
        while :; do
            pending=()
            for ((k = 1; k <= N; k++)); do
                if ! kill -0 "$(started_pid "$k")" 2>/dev/null; then
                    echo "cluster.sh: node $k exited; the end of its log:" >&2
                    tail -n 20 "$(node_dir "$k")/artemis.log" >&2
                    fail_start "node $k exited"
                fi
                case $phase in
                    health) answers_health "$k" || pending+=("$k") ;;
                    up) [[ $(node_status "$k") == up ]] || pending+=("$k") ;;
                    peers) sees_all_up "$k" || pending+=("$k") ;;
                esac
            done
            ((${#pending[@]} == 0)) && break
            if ((SECONDS >= deadline)); then
                fail_start "node(s) ${pending[*]} not ${what[$phase]} after $START_TIMEOUT s" \
                    "(./cluster.sh logs K)"
            fi
            sleep 0.2
        done
    done
    echo "all $N nodes are up, and each sees the others up"
}

fail_start() {
    cmd_stop >&2
    die "the start failed: $*"
}

targets() {
    local k list=""
    for ((k = 1; k <= N; k++)); do
        list+="${list:+,}http://127.0.0.1:$(port_of "$k")"
    done
    echo "$list"
}

cmd_status() {
    (($# == 0)) || bad_usage "status takes no arguments"
    load_settings || die "no cluster here (./cluster.sh start)"
    local k pid state status instances healthy=0
    printf '%-5s %-24s %-8s %-9s %-10s %s\n' node url pid process status instances
    for ((k = 1; k <= N; k++)); do
        pid=$(running_pid "$k")
        if [[ -n $pid ]]; then
            state=alive
            status=$(node_status "$k")
            instances=$(node_instances "$k")
        else
            state=down pid=- status="" instances=""
        fi
        [[ $state == alive && $status == up ]] || healthy=1
        printf '%-5s %-24s %-8s %-9s %-10s %s\n' "$k" "$(url_of "$k")" "$pid" "$state" \
            "${status:--}" "${instances:--}"
    done
    return "$healthy"
}

cmd_logs() {
    local follow=() k="" arg
    for arg in "$@"; do
        case $arg in
            -f) follow=(-F) ;;
            *) [[ -z $k ]] || bad_usage "logs takes [K] [-f]"; k=$arg ;;
        esac
    done
    load_settings || die "no cluster here (./cluster.sh start)"
    local files=()
    if [[ -n $k ]]; then
        if ! is_count "$k" || ((k > N)); then
            bad_usage "K must be a node from 1 to $N, not '$k'"
        fi
        files=("$(node_dir "$k")/artemis.log")
    else
        for ((k = 1; k <= N; k++)); do
            files+=("$(node_dir "$k")/artemis.log")
        done
    fi
    tail -n "$LOG_LINES" "${follow[@]}" "${files[@]}"
}

cmd_stop() {
    (($# == 0)) || bad_usage "stop takes no arguments"
    load_settings || {
        echo "no cluster here"
        return 0
    }
    local k pid pids=() nodes=()
    for ((k = 1; k <= N; k++)); do
        pid=$(running_pid "$k")
        if [[ -n $pid ]]; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid") nodes+=("$k")
        fi
    done
    if ((${#pids[@]} == 0)); then
        echo "no node is running"
    else
        local deadline=$((SECONDS + STOP_TIMEOUT)) left i
        while :; do
            left=()
            for i in "${!pids[@]}"; do
                [[ -n $(running_pid "${nodes[i]}") ]] && left+=("$i")
            done
            ((${#left[@]} == 0 || SECONDS >= deadline)) && break
            sleep 0.1
        done
        for i in "${left[@]}"; do
            kill -KILL "${pids[i]}" 2>/dev/null || true
            echo "node ${nodes[i]} (pid ${pids[i]}) did not stop within $STOP_TIMEOUT s: killed"
        done
        echo "stopped ${#pids[@]} node(s): ${nodes[*]}"
    fi
    for ((k = 1; k <= N; k++)); do
        rm -f "$(node_dir "$k")/pid"
    done
}

cmd_restart() {
    (($# == 0)) || bad_usage "restart takes no arguments"
    load_settings || die "no cluster to restart (./cluster.sh start)"
    local n=$N base=$BASE
    cmd_stop
    cmd_start "$n" "$base"
}

cmd_clean() {
    (($# == 0)) || bad_usage "clean takes no arguments"
    [[ -d $DIR ]] || {
        echo "nothing to clean"
        return 0
    }
    [[ -f $SETTINGS ]] || die "$DIR holds no cluster.env: not removing a folder this script did not make"
    cmd_stop
    rm -rf -- "$DIR"
    echo "removed $DIR"
}

main() {
    (($# > 0)) || {
        usage >&2
        exit 2
    }
    local command=$1
    shift
    case $command in
        start) cmd_start "$@" ;;
        status) cmd_status "$@" ;;
        logs) cmd_logs "$@" ;;
        stop) cmd_stop "$@" ;;
        restart) cmd_restart "$@" ;;
        clean) cmd_clean "$@" ;;
        help | -h | --help) usage ;;
        *) bad_usage "unknown command '$command'" ;;
    esac
}

main "$@"
