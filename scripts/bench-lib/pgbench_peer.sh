#!/usr/bin/env bash
# W6's peer: a throwaway PostgreSQL, 16 pgbench clients, one UPDATE per transaction
# (durable commit: fsync and synchronous_commit on, PostgreSQL's defaults).
#
#   scripts/bench-lib/pgbench_peer.sh DURATION WARMUP OUT.json
#
# Writes {"tps": ..., "latency_avg_ms": ..., "clients": 16, "version": ...} to OUT.json. Needs root
# (PostgreSQL runs as the postgres user); installs Debian's postgresql when missing.
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
duration=$1
warmup=$2
out=$3
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  ensure_packages __none__:postgresql
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
id postgres >/dev/null 2>&1 || { echo "pgbench peer: no postgres user" >&2; exit 1; }

work=$(mktemp -d)
chown postgres "$work"
port=$(free_port)
as_postgres() { su postgres -s /bin/bash -c "$*"; }
cleanup() {
  as_postgres "'$bindir/pg_ctl' -D '$work/data' -m immediate stop" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

as_postgres "'$bindir/initdb' -D '$work/data' -U postgres --auth=trust -E UTF8 --locale=C.UTF-8" >/dev/null
as_postgres "'$bindir/pg_ctl' -D '$work/data' -l '$work/log' -w -o \"-p $port -k '$work' -c listen_addresses=127.0.0.1\" start" >/dev/null
pg() { as_postgres "cd '$work' && $*"; }
pg "'$bindir/pgbench' -h 127.0.0.1 -p $port -U postgres -i -q -s 1 postgres" >/dev/null 2>&1
cat >"$work/update.sql" <<'SQL'
\set aid random(1, 100000)
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;
SQL
chown postgres "$work/update.sql"
# Warm-up, then the measured run: 16 clients, one thread per core.
threads=$(nproc)
pg "'$bindir/pgbench' -h 127.0.0.1 -p $port -U postgres -n -c 16 -j $threads -T $warmup -f update.sql postgres" >/dev/null 2>&1
pg "'$bindir/pgbench' -h 127.0.0.1 -p $port -U postgres -n -c 16 -j $threads -T $duration -f update.sql postgres" \
  >"$work/result.txt" 2>&1
version=$("$bindir/postgres" --version | awk '{print $3}')
python3 - "$work/result.txt" "$out" "$version" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
tps = float(re.search(r"tps = ([0-9.]+)", text).group(1))
latency = re.search(r"latency average = ([0-9.]+) ms", text)
json.dump({"tps": tps, "latency_avg_ms": float(latency.group(1)) if latency else None, "clients": 16,
           "version": sys.argv[3]},
          open(sys.argv[2], "w"))
print("pgbench: %.0f tps" % tps, file=sys.stderr)
PY
