#!/usr/bin/env bash
# The websocket API's end-to-end measurements (BENCHMARKS.md, "The websocket
# API"): fresh private PostgreSQL and Redis under $SATU_HOME (default
# .satu-bench, ports 25433 and 26380, so a `make run` is left alone), one
# `satu serve` with its per-address and per-key rate limits off (one load
# generator sends everything from one address), then `satu load` runs:
#
#   bash deploy/local/bench-ws.sh throughput   # 64 connections, 4 in flight each, unpaced, 20 s
#   bash deploy/local/bench-ws.sh latency RATE # 64 connections paced at RATE orders/s, 20 s
#   bash deploy/local/bench-ws.sh batch N [RATE] # as throughput (or latency), N orders per request
#   bash deploy/local/bench-ws.sh idle         # 10,000 idle logged-on connections for 20 s
#   bash deploy/local/bench-ws.sh subscribers [N] # 1,000 depth@100ms subscribers under unpaced orders (N per request)
#   bash deploy/local/bench-ws.sh updates [N]     # the same load with one per-command depth subscriber
#
# Each run starts from empty databases. Everything runs on this machine: the
# load generator shares the cores with Satu, PostgreSQL and Redis.
# SATU_LOAD_ARGS adds flags to every `satu load` (e.g. "-cpuprofile /tmp/load.prof");
# SATU_BENCH_DURATION replaces the runs' 20 s; SATU_BENCH_PROGRESS their progress interval (5 s);
# SATU_PPROF_ADDR gives the server's profiles; SATU_BENCH_BIN runs a satu
# binary built before (to compare two versions in alternate runs); SATU_BENCH_SPLIT=1 runs the
# engine in a process of its own, SATU_BENCH_STANDBY=1 adds a standby engine that takes the
# snapshots (below).
set -euo pipefail
cd "$(dirname "$0")/../.."
export SATU_HOME=${SATU_HOME:-$PWD/.satu-bench} SATU_PG_PORT=${SATU_PG_PORT:-25433} SATU_REDIS_PORT=${SATU_REDIS_PORT:-26380}
services="bash deploy/local/services.sh"
addr=127.0.0.1:${SATU_BENCH_PORT:-8090}

$services stop >/dev/null 2>&1 || true
rm -rf "$SATU_HOME"
$services start >/dev/null
eval "$($services env)"
satu=${SATU_BENCH_BIN:-$SATU_HOME/bin/satu}
[[ -n ${SATU_BENCH_BIN:-} ]] || go build -o "$satu" ./cmd/satu

# SATU_BENCH_SPLIT=1 runs the engine as its own process (`satu engine`, one
# Go processor) beside `satu serve -engine=false` (docs/durability.md).
epid=
if [[ ${SATU_BENCH_SPLIT:-} == 1 ]]; then
	GOMAXPROCS=1 SATU_LOG_LEVEL=warn "$satu" engine >"$SATU_HOME/engine.log" 2>&1 &
	epid=$!
	export SATU_ENGINE=false
fi
# SATU_BENCH_STANDBY=1 adds a standby engine (`satu engine`, started once
# the server leads the shard), and both take SATU_SNAPSHOT_STANDBY=true: the
# standby, replaying the inbox, takes the snapshots, and the leader that
# answers the orders does not pause for them — how a shard is meant to run
# in production (docs/durability.md).
if [[ ${SATU_BENCH_STANDBY:-} == 1 ]]; then
	export SATU_SNAPSHOT_STANDBY=true
fi
SATU_ADDR=$addr SATU_WS_IP_REQUESTS=0 SATU_WS_KEY_ORDERS=0 SATU_LOG_LEVEL=warn \
	"$satu" serve --keys-dir "$SATU_HOME/keys" >"$SATU_HOME/serve.log" 2>&1 &
pid=$!
spid=
trap 'kill $pid $epid $spid 2>/dev/null; wait $pid $epid $spid 2>/dev/null; $services stop >/dev/null' EXIT
for _ in $(seq 100); do
	curl -sf "http://$addr/readyz" >/dev/null && break
	sleep 0.2
done
curl -sf "http://$addr/readyz" >/dev/null || { cat "$SATU_HOME/serve.log"; exit 1; }
if [[ ${SATU_BENCH_STANDBY:-} == 1 ]]; then
	SATU_LOG_LEVEL=info "$satu" engine >"$SATU_HOME/standby.log" 2>&1 &
	spid=$!
fi

dur=${SATU_BENCH_DURATION:-20s}
load() { "$satu" load ${SATU_LOAD_ARGS:-} -addr "$addr" -operator-key "$SATU_HOME/keys/operator.token" -mid 30000000 "$@"; }
echo "$(date -u +%FT%TZ) $(nproc) cores, $(go version | cut -d' ' -f3), load average $(cut -d' ' -f1-3 /proc/loadavg)"
case ${1:-} in
throughput) load -conns 64 -inflight "${2:-4}" -rate 0 -duration "$dur" -progress "${SATU_BENCH_PROGRESS:-5s}" ;;
latency) load -conns 64 -inflight 4 -rate "${2:?latency needs a rate}" -duration "$dur" -progress "${SATU_BENCH_PROGRESS:-5s}" ;;
batch) load -conns 64 -inflight 4 -batch "${2:?batch needs a number of orders per request}" -rate "${3:-0}" -duration "$dur" -progress "${SATU_BENCH_PROGRESS:-5s}" ;;
idle) load -conns 0 -idle 10000 -duration "$dur" ;;
subscribers) load -conns 64 -inflight 4 -batch "${2:-1}" -rate 0 -duration "$dur" -progress "${SATU_BENCH_PROGRESS:-5s}" -subscribers 1000 -stream btckzt@depth@100ms -count-updates ;;
updates) load -conns 64 -inflight 4 -batch "${2:-1}" -rate 0 -duration "$dur" -progress "${SATU_BENCH_PROGRESS:-5s}" -subscribers 1 -stream btckzt@depth ;;
*)
	echo "usage: bash deploy/local/bench-ws.sh throughput | latency RATE | batch N [RATE] | idle | subscribers [N] | updates [N]" >&2
	exit 2
	;;
esac
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
