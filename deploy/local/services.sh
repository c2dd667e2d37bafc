#!/usr/bin/env bash
# Private PostgreSQL and Redis instances for running and testing Satu locally.
#
#   bash deploy/local/services.sh ensure   # install postgresql / redis-server if missing
#   bash deploy/local/services.sh start    # ensure, then start both (reuses running ones)
#   bash deploy/local/services.sh stop     # stop both (no error when not running)
#   bash deploy/local/services.sh purge    # stop both and delete their data (the rest of $SATU_HOME stays)
#   bash deploy/local/services.sh status   # one line per service
#   bash deploy/local/services.sh env      # eval "$(bash deploy/local/services.sh env)"
#
# State lives under $SATU_HOME (default: <repo root>/.satu). Ports:
# SATU_PG_PORT (25432), SATU_REDIS_PORT (26379); database SATU_PG_DB (satu).
# Redis's append-only file: SATU_REDIS_APPENDFSYNC (everysec; always = no loss
# window) and SATU_REDIS_AOF_REWRITE_PERCENTAGE (400: rewrite once the file has
# grown to five times its size after the last rewrite; docs/durability.md).
# The distribution's own postgresql/redis-server services are never used.
#
# As root, when the postgres user cannot reach $SATU_HOME (e.g. under /root),
# PostgreSQL's data dir goes to /var/tmp/satu-<hash of $SATU_HOME>/pg instead
# (noted in $SATU_HOME/pgdata-location). `purge` deletes it; so does the next
# `start` once $SATU_HOME has been removed, rather than reusing an old ledger.
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
# apt: how long to wait for another apt (e.g. unattended-upgrades on a fresh
# machine) to release its locks, and how often to retry `apt-get update`.
APT_LOCK_TIMEOUT=300
APT_RETRY_INTERVAL=5
POLICY_RC=/usr/sbin/policy-rc.d

say() { printf '%s\n' "$*"; }
die() {
	printf 'services: %s\n' "$*" >&2
	exit 1
}
is_root() { [[ $(id -u) -eq 0 ]]; }

# ---------------------------------------------------------------- binaries

# pg_bindir prints the directory holding initdb, pg_ctl and postgres: the
# one matching the version of an existing data dir ($1, default ours), else
# initdb's on PATH, else the highest version under /usr/lib/postgresql/*/bin.
pg_bindir() {
	local data=${1:-} version dir initdb
	[[ -n $data ]] || data=$(pg_data_dir)
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
	# them (our instances have their own data dirs and ports). The file goes
	# again however this script ends (error, Ctrl-C, kill): left behind, it
	# would keep every later package install on the machine from starting
	# its services.
	local added_policy=
	if [[ ! -e $POLICY_RC ]]; then
		trap 'rm -f "$POLICY_RC"' EXIT
		printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
		chmod 755 "$POLICY_RC"
		added_policy=1
	fi
	local rc=0
	{
		apt_update &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
				-o DPkg::Lock::Timeout="$APT_LOCK_TIMEOUT" "${missing[@]}"
	} || rc=$?
	if [[ -n $added_policy ]]; then
		rm -f "$POLICY_RC"
		trap - EXIT
	fi
	[[ $rc -eq 0 ]] || die "apt-get install ${missing[*]} failed (exit $rc)"
	bindir=$(pg_bindir) || die "postgresql installed but no initdb under /usr/lib/postgresql/*/bin"
	redis_server_bin >/dev/null || die "redis-server installed but not found"
	say "services: installed ${missing[*]}"
}

# apt_update runs `apt-get update`, waiting up to APT_LOCK_TIMEOUT seconds
# while another apt holds the package lists' lock: DPkg::Lock::Timeout, which
# `apt-get install` honours, does not cover `apt-get update`'s lock (apt 2.6).
apt_update() {
	local deadline=$((SECONDS + APT_LOCK_TIMEOUT)) out waiting=
	while ! out=$(apt-get update -qq 2>&1); do
		# The lock's path, unlike apt's message, is the same in every language.
		if [[ $out != *lists/lock* ]] || ((SECONDS >= deadline)); then
			printf '%s\n' "$out" >&2
			return 1
		fi
		if [[ -z $waiting ]]; then
			say "services: another apt holds the package lists' lock; waiting up to $APT_LOCK_TIMEOUT s"
			waiting=1
		fi
		sleep "$APT_RETRY_INTERVAL"
	done
	[[ -z $out ]] || printf '%s\n' "$out" >&2
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

# relocated_base prints where, as root, the data dir of $SATU_HOME goes
# when the postgres user cannot reach $SATU_HOME (its data dir is then
# <that>/pg, its socket dir <that>/run, its log <that>/pg.log).
relocated_base() {
	local hash
	hash=$(printf '%s' "$SATU_HOME" | sha256sum | cut -c1-12)
	say "/var/tmp/satu-$hash"
}

# remove_relocated deletes $1, a relocated_base, after stopping a server
# still running from it.
remove_relocated() {
	local base=$1 bindir
	[[ -e $base || -L $base ]] || return 0
	[[ -d $base && ! -L $base && $(stat -c %u "$base") -eq 0 ]] ||
		die "$base exists and is not a directory owned by root; remove it"
	if [[ -f $base/pg/PG_VERSION ]] && bindir=$(pg_bindir "$base/pg") &&
		as_pg "$bindir/pg_ctl" -D "$base/pg" status >/dev/null 2>&1; then
		as_pg "$bindir/pg_ctl" -D "$base/pg" -m fast -w -t 60 stop >/dev/null ||
			die "postgres running from $base/pg did not stop"
		say "postgres: stopped the server running from $base/pg"
	fi
	rm -rf "$base"
}

# pg_place_data_dir decides, before the first initdb, where the data dir
# goes: as root, the postgres user must be able to reach it, which it
# cannot under e.g. /root (mode 700); then it goes under /var/tmp.
pg_place_data_dir() {
	[[ ! -s $PG_LOCATION_FILE && ! -d $SATU_HOME/pg ]] || return 0
	is_root || return 0
	local base
	base=$(relocated_base)
	# $SATU_HOME has no data dir: one under $base belonged to an earlier
	# $SATU_HOME at this path, since removed. Reusing it would bring back
	# that ledger beside an empty Redis.
	if [[ -e $base || -L $base ]]; then
		say "postgres: $SATU_HOME is new; removing $base, left by an earlier one"
		remove_relocated "$base"
	fi
	as_pg test -x "$SATU_HOME" && return 0
	mkdir -m 755 "$base"
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
# when another redis-server does, "down" otherwise. Ours: its dir is
# $REDIS_DIR, or (that dir removed, as Redis then reports no dir) its
# pidfile is the one our config names.
redis_state() {
	local port=$1 dir pidfile
	if [[ $(redis_cli -p "$port" ping 2>/dev/null) != PONG ]]; then
		say down
		return 0
	fi
	dir=$(redis_cli -p "$port" config get dir 2>/dev/null | sed -n 2p) || true
	pidfile=$(redis_cli -p "$port" config get pidfile 2>/dev/null | sed -n 2p) || true
	if [[ -n $dir && $(readlink -m "$dir") == "$(readlink -m "$REDIS_DIR")" ]] ||
		[[ $pidfile == "$REDIS_DIR/redis.pid" ]]; then
		say ours
	else
		say other
	fi
}

start_redis() {
	local state redis_bin
	redis_bin=$(redis_server_bin) || die "no redis-server (run: bash $0 ensure)"
	state=$(redis_state "$(redis_port)")
	if [[ $state == ours && ! -f $REDIS_CONF ]]; then
		# Started from an earlier $SATU_HOME at this path, removed since:
		# reusing it would bring back its data beside a new PostgreSQL.
		say "redis: $SATU_HOME is new; stopping the instance an earlier one left running"
		stop_redis >/dev/null
		state=down
	fi
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

# cmd_purge stops both and deletes their data: Redis's, and PostgreSQL's
# with its log and socket dir, under $SATU_HOME or relocated (as root, also
# a relocated one of an earlier $SATU_HOME at this path that was removed
# while its record was lost).
cmd_purge() {
	local base
	cmd_stop
	if is_root; then
		base=$(relocated_base)
		if [[ -s $PG_LOCATION_FILE && $(<"$PG_LOCATION_FILE") != "$base/pg" ]]; then
			die "$PG_LOCATION_FILE names $(<"$PG_LOCATION_FILE"), not $base/pg; remove it by hand"
		fi
		remove_relocated "$base"
	elif [[ -s $PG_LOCATION_FILE ]]; then
		die "$SATU_HOME's data dir is $(<"$PG_LOCATION_FILE"), made as root: purge as root"
	fi
	rm -rf "$SATU_HOME/pg" "$SATU_HOME/run" "$SATU_HOME/pg.log" "$REDIS_DIR" "$PG_LOCATION_FILE"
	say "services: deleted the PostgreSQL and Redis data of $SATU_HOME"
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
	say "usage: bash $0 ensure|start|stop|purge|status|env" >&2
	exit 2
}

# Sourced (services_test.go does, to try functions on their own): define
# the functions only.
if [[ ${BASH_SOURCE[0]} != "$0" ]]; then
	return 0
fi

[[ $# -eq 1 ]] || usage
case $1 in
ensure) cmd_ensure ;;
start)
	check_redis_settings
	cmd_start
	;;
stop) cmd_stop ;;
purge) cmd_purge ;;
status) cmd_status ;;
env) cmd_env ;;
*) usage ;;
esac
