#!/usr/bin/env bash
# Service at scale: `sitevault serve` with N small simulated WordPress sites
# (one folder and one table prefix each, all in one private MariaDB),
# registered through the HTTP API, every daily window starting at the same
# minute and lasting BENCH_WINDOW (a day compressed into minutes); first one
# serve process on the SQLite catalog, then two on a private PostgreSQL
# (same per-process concurrency, one shared repository). Private servers
# only: a MariaDB or PostgreSQL already running on the machine is never used.
#
#   bench/service.sh                        # 1,000 sites; scripts/deps.sh bench installs PostgreSQL
#   BENCH_SITES=50 bench/service.sh         # a quick run
#
# Environment:
#   BENCH_SITES        sites (default 1000)
#   BENCH_WINDOW       every site's window (default 5m)
#   BENCH_CONCURRENCY  --concurrency of each serve process (default 2)
#   BENCH_MODES        sqlite,postgres (default both)
#   BENCH_PARALLEL     API requests at once while registering (default 4)
#   BENCH_DIR          work folder (default: a temporary one, removed at the end)
#
# Measured, from outside the processes: jobs per minute; the delay from each
# site's moment in its window (window start + schedule.Offset) to its job's
# start; the job's wall time against the backup's own time (the service's
# overhead); the hand-off between jobs; jobs per worker and sites backed up
# twice; the memory (VmRSS, VmHWM) of each serve process; the CPU time of
# serve, mariadbd and PostgreSQL and of the whole machine. The table
# (markdown) goes to stdout and to bench/out/service-latest.md.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in mariadbd mariadb-install-db; do
  command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] || {
    echo "bench: $tool is missing; run scripts/deps.sh bench" >&2; exit 1; }
done
if [[ ${BENCH_MODES:-sqlite,postgres} == *postgres* ]]; then
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null || {
    echo "bench: PostgreSQL is missing; run scripts/deps.sh bench" >&2; exit 1; }
fi

n=${BENCH_SITES:-1000}
window=${BENCH_WINDOW:-5m}
conc=${BENCH_CONCURRENCY:-2}
modes=${BENCH_MODES:-sqlite,postgres}
par=${BENCH_PARALLEL:-4}
tmp=$(mktemp -d /tmp/sitevault-svcbench-bin.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/sitevault" ./cmd/sitevault
go build -o "$tmp/svcbench" ./bench/svcbench
args=(-sitevault "$tmp/sitevault" -n "$n" -window "$window" -concurrency "$conc" -modes "$modes" -parallel "$par"
  -out bench/out -command "bench/service.sh (BENCH_SITES=$n BENCH_WINDOW=$window BENCH_CONCURRENCY=$conc BENCH_MODES=$modes)")
[[ -n ${BENCH_DIR:-} ]] && args+=(-dir "$BENCH_DIR")
"$tmp/svcbench" "${args[@]}"
