#!/usr/bin/env bash
# Issue 3's SFTP benchmark: backing up a WordPress site's files through an
# ssh connection (SFTP over a real OpenSSH sshd on loopback, started by the
# benchmark) against the same backup through a local connection, into a
# local repository with production settings (default chunker and pack size).
#
#   bench/sftp.sh
#
# Goals: an unchanged 30,000-file site over SFTP costs at most 2x the local
# backup; a first backup over SFTP reaches at least half the local throughput.
#
# Environment:
#   BENCH_DIR    work folder (default /tmp/sitevault-bench); the site is
#                generated once into $BENCH_DIR/sftp-site and reused
#   BENCH_SEED   seed of the tree (default 1)
#   BENCH_SIZE   size of the tree (default 300MiB)
#   BENCH_FILES  files in the tree (default 30000)
#   BENCH_RUNS   rounds (go test -count; default 3)
#
# The site is bench/gen's WordPress-like tree plus the two core files
# discovery looks for (wp-includes/version.php, wp-settings.php). The go test
# benchmark output and a summary go to stdout and bench/out/sftp-<time>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

B=${BENCH_DIR:-/tmp/sitevault-bench}
seed=${BENCH_SEED:-1}
size=${BENCH_SIZE:-300MiB}
nfiles=${BENCH_FILES:-30000}
runs=${BENCH_RUNS:-3}
site=$B/sftp-site
out=$root/bench/out
mkdir -p "$B" "$out"
log() { printf 'bench: %s\n' "$*" >&2; }

stamp="seed=$seed size=$size files=$nfiles"
if [[ ! -f $B/sftp-site.stamp || $(cat "$B/sftp-site.stamp") != "$stamp" ]]; then
  log "generating the site ($stamp) into $site"
  rm -rf "$site"
  go run ./bench/gen -out "$site" -seed "$seed" -size "$size" -files "$nfiles"
  mkdir -p "$site/wp-includes"
  printf "<?php\n\$wp_version = '6.4.3';\n" >"$site/wp-includes/version.php"
  printf "<?php\n// core\n" >"$site/wp-settings.php"
  echo "$stamp" >"$B/sftp-site.stamp"
fi
# Warm the page cache, so neither side pays for the first read from disk.
find "$site" -type f -print0 | xargs -0 cat >/dev/null

result=$out/sftp-$(date -u +%Y%m%dT%H%M%SZ).txt
{
  echo "# bench/sftp.sh $(date -u +%FT%TZ) on $(nproc) cores, $(uname -sr); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# site: $stamp ($(find "$site" -type f | wc -l) files)"
  SITEVAULT_BENCH_SITE=$site go test -run '^$' -bench 'BenchmarkSiteFiles' -benchtime 1x -count "$runs" -timeout 60m ./internal/site/
} | tee "$result"

# Summary: medians of each sub-benchmark.
awk '
  /^BenchmarkSiteFiles\// {
    name=$1; sub(/-[0-9]+$/, "", name); sub(/^BenchmarkSiteFiles\//, "", name)
    ns[name] = ns[name] " " $3
    for (i = 4; i <= NF; i++) if ($(i+1) == "MB/s") mbs[name] = mbs[name] " " $i
  }
  function median(s,   a, n, i, j, t) {
    n = split(s, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    lf = median(ns["local/first"]) / 1e9; sf = median(ns["sftp/first"]) / 1e9
    lu = median(ns["local/unchanged"]) / 1e9; su = median(ns["sftp/unchanged"]) / 1e9
    lm = median(mbs["local/first"]); sm = median(mbs["sftp/first"])
    printf "\n| step | local | SFTP (loopback) | ratio | goal |\n|---|---|---|---|---|\n"
    printf "| first backup | %.2f s (%.0f MB/s) | %.2f s (%.0f MB/s) | %.2f of local throughput | >= 0.5 |\n", lf, lm, sf, sm, sm / lm
    printf "| unchanged site | %.2f s | %.2f s | %.2fx local time | <= 2x |\n", lu, su, su / lu
  }' "$result" | tee -a "$result"
