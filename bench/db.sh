#!/usr/bin/env bash
# Side-by-side database benchmark: sitevault's mysql.Backup/Restore against
# mariadb-dump --single-transaction, `mariadb < dump.sql`, mydumper and
# myloader, in one run, on a generated WordPress database (a 1M-row
# postmeta-like table plus the other core tables) in a private MariaDB
# started for the run (own port, socket and temporary data directory; a
# system server is never touched).
#
#   bench/db.sh                     # scripts/deps.sh bench installs mydumper
#
# Environment:
#   BENCH_DB_ROWS  rows of wp_postmeta (default 1000000)
#   BENCH_RUNS     rounds; the table shows each figure's median (default 3)
#   BENCH_DIR      work folder (default: a temporary one, removed at the end)
#
# Measured: full backup (time; bytes stored); after 1% of the rows change,
# sitevault's incremental backup (time; bytes added to the repository)
# against a new mariadb-dump; restore against `mariadb < dump.sql` and
# myloader. Every sitevault restore and client load is checked with CHECKSUM
# TABLE. The table (markdown) goes to stdout and to bench/out/db-latest.md.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in mariadbd mariadb-install-db mariadb mariadb-dump; do
  command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] || {
    echo "bench: $tool is missing; run scripts/deps.sh bench" >&2; exit 1; }
done
command -v mydumper >/dev/null || echo "bench: mydumper is missing (scripts/deps.sh bench); its columns stay empty" >&2

args=(-rows "${BENCH_DB_ROWS:-1000000}" -runs "${BENCH_RUNS:-3}" -out bench/out
  -command "bench/db.sh (BENCH_DB_ROWS=${BENCH_DB_ROWS:-1000000} BENCH_RUNS=${BENCH_RUNS:-3})")
[[ -n ${BENCH_DIR:-} ]] && args+=(-dir "$BENCH_DIR")
go build -o /tmp/sitevault-dbbench.$$ ./bench/dbbench
trap 'rm -f /tmp/sitevault-dbbench.$$' EXIT
/tmp/sitevault-dbbench.$$ "${args[@]}"
