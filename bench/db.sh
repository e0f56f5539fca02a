#!/usr/bin/env bash
# Side-by-side database benchmark, every tool timed as a whole process: the
# `sitevault` binary (backup of a registered site, restore of its database,
# each opening a repository made with the default key derivation) against
# mariadb-dump --single-transaction, `mariadb < dump.sql`, mydumper and
# myloader, in one run, on a generated WordPress database (a 1M-row
# postmeta-like table plus the other core tables) in a private MariaDB
# started for the run (own port, socket and temporary data directory; a
# system server is never touched).
#
#   bench/db.sh                     # scripts/deps.sh bench installs mydumper
#   BENCH_BINS="before=/tmp/sv-old after=/tmp/sv-new" bench/db.sh   # compare builds
#
# Environment:
#   BENCH_DB_ROWS  rows of wp_postmeta (default 1000000)
#   BENCH_RUNS     rounds; the table shows each figure's median, and lists
#                  every run (default 3); the tools run sitevault first in
#                  odd rounds and last in even rounds
#   BENCH_DIR      work folder (default: a temporary one, removed at the end)
#   BENCH_BINS     space-separated NAME=PATH sitevault binaries to compare;
#                  default: this checkout, built for the run
#   BENCH_PASSWORD keyfile (default): embedded defaults, the repository in the
#                  data home opened by the key file `sitevault init` makes;
#                  env: a password in $SITEVAULT_PASSWORD (a typed password's
#                  slot, stretched with scrypt N=2^16)
#
# Cases (goals of issue 11): full backup into a fresh repository (≤ 1.0×
# mariadb-dump's time); backup after 1% of wp_postmeta changed in one region
# (clustered) and after 1% changed evenly across the key range (scattered),
# each ≤ 0.5× mariadb-dump's time and ≤ 5% of the full backup's stored
# bytes; restore of the database (≤ 0.5× `mariadb < dump.sql`). Every load
# is checked with CHECKSUM TABLE. The load average is recorded before every
# run. The table (markdown) goes to stdout and to bench/out/db-latest.md.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in mariadbd mariadb-install-db mariadb mariadb-dump; do
  command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] || {
    echo "bench: $tool is missing; run scripts/deps.sh bench" >&2; exit 1; }
done
command -v mydumper >/dev/null || echo "bench: mydumper is missing (scripts/deps.sh bench); its columns stay empty" >&2

tmp=$(mktemp -d /tmp/sitevault-dbbench-bin.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
bins=${BENCH_BINS:-}
if [[ -z $bins ]]; then
  echo "bench: building sitevault" >&2
  go build -o "$tmp/sitevault" ./cmd/sitevault
  bins="$(git describe --always --dirty)=$tmp/sitevault"
fi
go build -o "$tmp/dbbench" ./bench/dbbench

args=(-rows "${BENCH_DB_ROWS:-1000000}" -runs "${BENCH_RUNS:-3}" -out bench/out -bins "$bins"
  -password "${BENCH_PASSWORD:-keyfile}" -commit "$(git rev-parse --short HEAD)"
  -command "bench/db.sh (BENCH_DB_ROWS=${BENCH_DB_ROWS:-1000000} BENCH_RUNS=${BENCH_RUNS:-3} BENCH_PASSWORD=${BENCH_PASSWORD:-keyfile})")
[[ -n ${BENCH_DIR:-} ]] && args+=(-dir "$BENCH_DIR")
"$tmp/dbbench" "${args[@]}"
