#!/usr/bin/env bash
# Private PostgreSQL and Redis instances for running and testing Satu locally.
#
#   bash deploy/local/services.sh ensure   # install postgresql / redis-server if missing
#   bash deploy/local/services.sh start    # ensure, then start both (reuses running ones)
#   bash deploy/local/services.sh stop     # stop both (no error when not running)
#   bash deploy/local/services.sh status   # one line per service
#   bash deploy/local/services.sh env      # eval "$(bash deploy/local/services.sh env)"
#
# State lives under $SATU_HOME (default: <repo root>/.satu). Ports:
# SATU_PG_PORT (25432), SATU_REDIS_PORT (26379); database SATU_PG_DB (satu).
# Redis's append-only file: SATU_REDIS_APPENDFSYNC (everysec; always = no loss
# window) and SATU_REDIS_AOF_REWRITE_PERCENTAGE (400: rewrite once the file has
# grown to five times its size after the last rewrite; docs/durability.md).
# The distribution's own postgresql/redis-server services are never used.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/../.." && pwd)
SATU_HOME=${SATU_HOME:-$repo_root/.satu}
[[ $SATU_HOME == /* ]] || SATU_HOME=$PWD/$SATU_HOME
PG_PORT=${SATU_PG_PORT:-25432}
PG_DB=${SATU_PG_DB:-satu}
REDIS_PORT=${SATU_REDIS_PORT:-26379}
REDIS_APPENDFSYNC=${SATU_REDIS_APPENDFSYNC:-everysec}
REDIS_AOF_REWRITE=${SATU_REDIS_AOF_REWRITE_PERCENTAGE:-400}

REDIS_DIR=$SATU_HOME/redis
REDIS_CONF=$REDIS_DIR/redis.conf
PG_LOCATION_FILE=$SATU_HOME/pgdata-location

say() { printf '%s\n' "$*"; }
die() {
	printf 'services: %s\n' "$*" >&2
	exit 1
}
is_root() { [[ $(id -u) -eq 0 ]]; }

# ---------------------------------------------------------------- binaries

# pg_bindir prints the directory holding initdb, pg_ctl and postgres: the
# one matching an existing data dir's version, else initdb's on PATH, else
# the highest version under /usr/lib/postgresql/*/bin.
pg_bindir() {
	local data version dir initdb
	data=$(pg_data_dir)
	if [[ -f $data/PG_VERSION ]]; then
		version=$(<"$data/PG_VERSION")
		if [[ -x /usr/lib/postgresql/$version/bin/pg_ctl ]]; then
			say "/usr/lib/postgresql/$version/bin"
			return 0
		fi
	fi
	if initdb=$(command -v initdb); then
		dir=$(dirname "$(readlink -f "$initdb")")
		if [[ -x $dir/pg_ctl && -x $dir/postgres ]]; then
			say "$dir"
			return 0
		fi
	fi
	dir=$(
		for d in /usr/lib/postgresql/*/bin; do
			if [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]]; then
				say "$d"
			fi
		done | sort -V | tail -n 1
	)
	[[ -n $dir ]] || return 1
	say "$dir"
}

redis_server_bin() {
	local p
	# (bash's command -v also prints a non-executable match: check again.)
	for p in "$(command -v redis-server || true)" /usr/bin/redis-server /usr/local/bin/redis-server; do
		if [[ -n $p && -f $p && -x $p ]]; then
			say "$p"
			return 0
		fi
	done
	return 1
}

redis_cli() {
	local cli
	cli=$(command -v redis-cli || true)
	[[ -n $cli ]] || cli=/usr/bin/redis-cli
	"$cli" -h 127.0.0.1 "$@"
}

# as_pg runs a command as the postgres OS user when we are root (initdb and
# postgres refuse to run as root), else as ourselves. From / so that a
# working directory the postgres user cannot read does not matter.
as_pg() {
	if ! is_root; then
		"$@"
	elif command -v runuser >/dev/null; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && su postgres -s /bin/sh -c "$(printf '%q ' "$@")")
	fi
}

cmd_ensure() {
	local -a missing=()
	local bindir
	bindir=$(pg_bindir) || missing+=(postgresql)
	redis_server_bin >/dev/null || missing+=(redis-server)
	if [[ ${#missing[@]} -eq 0 ]] && ! command -v redis-cli >/dev/null && [[ ! -x /usr/bin/redis-cli ]]; then
		missing+=(redis-tools)
	fi
	if [[ ${#missing[@]} -eq 0 ]]; then
		say "services: postgresql ($bindir) and redis-server present"
		return 0
	fi
	if ! is_root; then
		die "missing: ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}"
	fi
	say "services: installing ${missing[*]}"
	# Keep apt from starting the distribution's own services: we never use
	# them (our instances have their own data dirs and ports).
	local policy=/usr/sbin/policy-rc.d added_policy=
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		added_policy=1
	fi
	local rc=0
	{
		apt-get update -qq &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
	} || rc=$?
	[[ -z $added_policy ]] || rm -f "$policy"
	[[ $rc -eq 0 ]] || die "apt-get install ${missing[*]} failed (exit $rc)"
	bindir=$(pg_bindir) || die "postgresql installed but no initdb under /usr/lib/postgresql/*/bin"
	redis_server_bin >/dev/null || die "redis-server installed but not found"
	say "services: installed ${missing[*]}"
}

# ---------------------------------------------------------------- PostgreSQL

# pg_data_dir prints the data dir: $SATU_HOME/pg, or the one recorded in
# $SATU_HOME/pgdata-location when it had to go elsewhere. Its socket dir
# (run/) and log (pg.log) sit beside it.
pg_data_dir() {
	if [[ -s $PG_LOCATION_FILE ]]; then
		cat "$PG_LOCATION_FILE"
	else
		say "$SATU_HOME/pg"
	fi
}

# pg_place_data_dir decides, before the first initdb, where the data dir
# goes: as root, the postgres user must be able to reach it, which it
# cannot under e.g. /root (mode 700); then it goes under /var/tmp.
pg_place_data_dir() {
	[[ ! -s $PG_LOCATION_FILE && ! -d $SATU_HOME/pg ]] || return 0
	is_root || return 0
	as_pg test -x "$SATU_HOME" && return 0
	local hash base
	hash=$(printf '%s' "$SATU_HOME" | sha256sum | cut -c1-12)
	base=/var/tmp/satu-$hash
	if [[ -e $base ]]; then
		[[ -d $base && ! -L $base && $(stat -c %u "$base") -eq 0 ]] ||
			die "$base exists and is not a directory owned by root; remove it"
	else
		mkdir -m 755 "$base"
	fi
	say "$base/pg" >"$PG_LOCATION_FILE"
	say "postgres: the postgres user cannot reach $SATU_HOME; data dir is $base/pg (noted in $PG_LOCATION_FILE)"
}

# pg_running succeeds when our data dir's server runs.
pg_running() {
	local data bindir
	data=$(pg_data_dir)
	[[ -f $data/PG_VERSION ]] || return 1
	bindir=$(pg_bindir) || return 1
	as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1
}

# pg_running_port prints the port of the running server (postmaster.pid).
pg_running_port() {
	sed -n 4p "$(pg_data_dir)/postmaster.pid" 2>/dev/null || true
}

start_pg() {
	local bindir data base run log out port
	pg_place_data_dir
	data=$(pg_data_dir)
	base=$(dirname "$data")
	run=$base/run
	log=$base/pg.log
	bindir=$(pg_bindir) || die "no PostgreSQL server binaries (run: bash $0 ensure)"

	mkdir -p "$run"
	touch "$log"
	if is_root; then
		chown postgres:postgres "$run" "$log"
	fi
	if [[ ! -f $data/PG_VERSION ]]; then
		mkdir -p "$data"
		chmod 700 "$data"
		if is_root; then
			chown postgres:postgres "$data"
		fi
		out=$(as_pg "$bindir/initdb" -D "$data" -A trust -U postgres -E UTF8 --locale=C 2>&1) ||
			die "initdb failed:"$'\n'"$out"
	fi

	if pg_running; then
		port=$(pg_running_port)
		[[ $port == "$PG_PORT" ]] ||
			die "postgres already runs from $data on port $port, not $PG_PORT; run: bash $0 stop"
	else
		# Unix sockets are optional (we connect over TCP); their path is
		# limited to 107 bytes.
		local sockdir=$run
		if ((${#run} + 20 > 107)); then
			sockdir=
			say "postgres: $run is too long for a Unix socket path; TCP only"
		fi
		# Durable (fsync, synchronous_commit and full-page writes stay on);
		# checkpoints spaced for a write-heavy ledger: with the default 1 GB
		# of WAL, sustained settlement checkpointed every 25 s and each one
		# showed in the settlement lag (BENCHMARKS.md).
		if ! as_pg "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 start \
			-o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='$sockdir' -c max_wal_size=8GB -c checkpoint_timeout=15min" >/dev/null; then
			tail -n 20 "$log" >&2 || true
			die "postgres failed to start (log: $log)"
		fi
	fi

	local psql=$bindir/psql
	[[ -x $psql ]] || psql=psql
	local -a q=("$psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1)
	if [[ -z $("${q[@]}" -Atc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'") ]]; then
		"${q[@]}" -c "CREATE DATABASE \"$PG_DB\""
	fi
	say "postgres: running on 127.0.0.1:$PG_PORT, database $PG_DB (data $data, log $log)"
}

stop_pg() {
	local data bindir
	data=$(pg_data_dir)
	if pg_running; then
		bindir=$(pg_bindir)
		as_pg "$bindir/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
		say "postgres: stopped"
	else
		say "postgres: not running"
	fi
}

# ---------------------------------------------------------------- Redis

# redis_port prints the port of our instance: the generated config's when
# there is one (the instance may have been started with another
# SATU_REDIS_PORT), else the configured one.
redis_port() {
	local p=
	[[ -f $REDIS_CONF ]] && p=$(awk '$1 == "port" { print $2 }' "$REDIS_CONF")
	say "${p:-$REDIS_PORT}"
}

# redis_state prints "ours" when our instance answers on port $1, "other"
# when another redis-server does, "down" otherwise.
redis_state() {
	local port=$1 dir
	if [[ $(redis_cli -p "$port" ping 2>/dev/null) != PONG ]]; then
		say down
		return 0
	fi
	dir=$(redis_cli -p "$port" config get dir 2>/dev/null | sed -n 2p) || true
	if [[ -n $dir && $(readlink -f "$dir") == "$(readlink -f "$REDIS_DIR")" ]]; then
		say ours
	else
		say other
	fi
}

start_redis() {
	local state redis_bin
	redis_bin=$(redis_server_bin) || die "no redis-server (run: bash $0 ensure)"
	state=$(redis_state "$(redis_port)")
	if [[ $state == ours && $(redis_port) != "$REDIS_PORT" ]]; then
		die "redis already runs on port $(redis_port), not $REDIS_PORT; run: bash $0 stop"
	fi
	if [[ $state != ours ]]; then
		[[ $(redis_state "$REDIS_PORT") == down ]] ||
			die "port $REDIS_PORT is taken by another redis-server; set SATU_REDIS_PORT"
		mkdir -p "$REDIS_DIR"
		cat >"$REDIS_CONF" <<EOF
# Generated by deploy/local/services.sh; rewritten on each start.
port $REDIS_PORT
bind 127.0.0.1
protected-mode yes
dir "$REDIS_DIR"
appendonly yes
appendfsync $REDIS_APPENDFSYNC
auto-aof-rewrite-percentage $REDIS_AOF_REWRITE
save ""
daemonize yes
pidfile "$REDIS_DIR/redis.pid"
logfile "$REDIS_DIR/redis.log"
EOF
		"$redis_bin" "$REDIS_CONF" || die "redis-server failed to start (log: $REDIS_DIR/redis.log)"
		local i
		for ((i = 0; i < 100; i++)); do
			[[ $(redis_state "$REDIS_PORT") == ours ]] && break
			sleep 0.1
		done
		if [[ $(redis_state "$REDIS_PORT") != ours ]]; then
			tail -n 20 "$REDIS_DIR/redis.log" >&2 || true
			die "redis-server did not answer on 127.0.0.1:$REDIS_PORT within 10 s (log: $REDIS_DIR/redis.log)"
		fi
	fi
	say "redis: running on 127.0.0.1:$REDIS_PORT (dir $REDIS_DIR, log $REDIS_DIR/redis.log)"
}

stop_redis() {
	local port pid i
	port=$(redis_port)
	if [[ $(redis_state "$port") != ours ]]; then
		say "redis: not running"
		return 0
	fi
	pid=$(cat "$REDIS_DIR/redis.pid" 2>/dev/null || true)
	redis_cli -p "$port" shutdown >/dev/null 2>&1 || true
	# Wait for the port to close and the process to be gone.
	for ((i = 0; i < 100; i++)); do
		if [[ $(redis_state "$port") == down ]] && { [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; }; then
			break
		fi
		sleep 0.1
	done
	[[ $(redis_state "$port") == down ]] || die "redis-server on port $port did not stop"
	say "redis: stopped"
}

# ---------------------------------------------------------------- commands

cmd_start() {
	cmd_ensure
	mkdir -p "$SATU_HOME"
	start_pg
	start_redis
}

cmd_stop() {
	stop_pg
	stop_redis
}

cmd_status() {
	local port
	if pg_running; then
		say "postgres: running on 127.0.0.1:$(pg_running_port) (data $(pg_data_dir))"
	else
		say "postgres: stopped (port $PG_PORT)"
	fi
	port=$(redis_port)
	case $(redis_state "$port") in
	ours) say "redis: running on 127.0.0.1:$port (dir $REDIS_DIR)" ;;
	other) say "redis: stopped (port $port is used by another redis-server)" ;;
	*) say "redis: stopped (port $port)" ;;
	esac
}

cmd_env() {
	# Quoted: an unquoted '?' is a glob character.
	say "export SATU_PG_URL='postgres://postgres@127.0.0.1:$PG_PORT/$PG_DB?sslmode=disable'"
	say "export SATU_REDIS_ADDR='127.0.0.1:$REDIS_PORT'"
}

# check_redis_settings refuses bad Redis settings before anything starts.
check_redis_settings() {
	[[ $REDIS_APPENDFSYNC =~ ^(always|everysec|no)$ ]] ||
		die "SATU_REDIS_APPENDFSYNC must be always, everysec or no, not \"$REDIS_APPENDFSYNC\""
	[[ $REDIS_AOF_REWRITE =~ ^[0-9]{1,6}$ ]] ||
		die "SATU_REDIS_AOF_REWRITE_PERCENTAGE must be a whole number (0: no automatic rewrite), not \"$REDIS_AOF_REWRITE\""
}

usage() {
	say "usage: bash $0 ensure|start|stop|status|env" >&2
	exit 2
}

[[ $# -eq 1 ]] || usage
case $1 in
ensure) cmd_ensure ;;
start)
	check_redis_settings
	cmd_start
	;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
*) usage ;;
esac
