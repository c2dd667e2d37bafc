#!/usr/bin/env bash
# The websocket API's end-to-end measurements (BENCHMARKS.md, "The websocket
# API"): fresh private PostgreSQL and Redis under $SATU_BENCH_HOME (default
# .satu-bench, ports SATU_PG_PORT 25433 and SATU_REDIS_PORT 26380, so a
# `make run` is left alone: the caller's SATU_HOME is never used, and a
# SATU_BENCH_HOME that is or contains it or .satu is refused), one
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
# Each run starts from empty databases: it deletes $SATU_BENCH_HOME and its
# services' data (services.sh purge) first. Everything runs on this machine: the
# load generator shares the cores with Satu, PostgreSQL and Redis.
# SATU_LOAD_ARGS adds flags to every `satu load` (e.g. "-cpuprofile /tmp/load.prof");
# SATU_BENCH_DURATION replaces the runs' 20 s; SATU_BENCH_PROGRESS their progress interval (5 s);
# SATU_PPROF_ADDR gives the server's profiles; SATU_BENCH_BIN runs a satu
# binary built before (to compare two versions in alternate runs); SATU_BENCH_SPLIT=1 runs the
# engine in a process of its own, SATU_BENCH_STANDBY=1 adds a standby engine that takes the
# snapshots (below).
set -euo pipefail
repo=$(realpath "$(dirname "$0")/../..")
# Made absolute here, so a relative SATU_BENCH_HOME or SATU_HOME is the
# caller's.
bench_home=$(realpath -m -- "${SATU_BENCH_HOME:-$repo/.satu-bench}")
for keep in "$(realpath -m -- "$repo/.satu")" ${SATU_HOME:+"$(realpath -m -- "$SATU_HOME")"}; do
	if [[ $keep == "$bench_home" || $keep == "${bench_home%/}"/* ]]; then
		echo "bench-ws: SATU_BENCH_HOME=$bench_home would delete $keep; choose another" >&2
		exit 2
	fi
done
cd "$repo"
export SATU_HOME=$bench_home SATU_PG_PORT=${SATU_PG_PORT:-25433} SATU_REDIS_PORT=${SATU_REDIS_PORT:-26380}
services="bash deploy/local/services.sh"
addr=127.0.0.1:${SATU_BENCH_PORT:-8090}

# Whatever ends the run (a failed build included), stop what it started.
pid= epid= spid=
cleanup() {
	local p
	for p in $pid $epid $spid; do kill "$p" 2>/dev/null || true; done
	for p in $pid $epid $spid; do wait "$p" 2>/dev/null || true; done
	$services stop >/dev/null
}
trap cleanup EXIT

# ready succeeds when the server answers GET /readyz with 200 (bash's
# /dev/tcp: curl may not be installed).
ready() {
	local status=
	{
		printf 'GET /readyz HTTP/1.0\r\nHost: %s\r\n\r\n' "$addr" >&3
		IFS= read -r -t 5 status <&3 || true
	} 2>/dev/null 3<>"/dev/tcp/${addr%:*}/${addr##*:}" || return 1
	[[ $status =~ ^HTTP/1\.[01]\ 200 ]]
}

$services purge >/dev/null
rm -rf "$SATU_HOME"
$services start >/dev/null
eval "$($services env)"
satu=${SATU_BENCH_BIN:-$SATU_HOME/bin/satu}
[[ -n ${SATU_BENCH_BIN:-} ]] || go build -o "$satu" ./cmd/satu

# SATU_BENCH_STANDBY=1 adds a standby engine (`satu engine`) and gives every
# engine SATU_SNAPSHOT_STANDBY=true, exported before the first one starts.
# The standby starts last, once `satu serve` answers, so that the leader
# takes the shard's lease first: `satu serve` itself or, with
# SATU_BENCH_SPLIT=1, the `satu engine` started before it. The standby,
# replaying the inbox, takes the snapshots, and the leader that answers the
# orders does not pause for them — how a shard is meant to run in
# production (docs/durability.md).
if [[ ${SATU_BENCH_STANDBY:-} == 1 ]]; then
	export SATU_SNAPSHOT_STANDBY=true
fi
# SATU_BENCH_SPLIT=1 runs the engine as its own process (`satu engine`, one
# Go processor) beside `satu serve -engine=false` (docs/durability.md).
if [[ ${SATU_BENCH_SPLIT:-} == 1 ]]; then
	GOMAXPROCS=1 SATU_LOG_LEVEL=warn "$satu" engine >"$SATU_HOME/engine.log" 2>&1 &
	epid=$!
	export SATU_ENGINE=false
fi
SATU_ADDR=$addr SATU_WS_IP_REQUESTS=0 SATU_WS_KEY_ORDERS=0 SATU_LOG_LEVEL=warn \
	"$satu" serve --keys-dir "$SATU_HOME/keys" >"$SATU_HOME/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	ready && break
	sleep 0.2
done
ready || { cat "$SATU_HOME/serve.log"; exit 1; }
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
