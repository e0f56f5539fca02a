#!/usr/bin/env bash
# Files over SFTP against local, as whole `sitevault` processes: the first
# backup of a registered site reached over SSH (a private OpenSSH sshd on
# loopback, as the tests start one) against the same site registered as
# local, each into a fresh local repository with production settings
# (default key derivation, chunker and pack size), as a user runs it.
#
#   bench/sftp.sh
#   BENCH_BINS="before=/tmp/sv-old after=/tmp/sv-new" bench/sftp.sh   # compare builds
#
# Goal (issue 11): a first backup over SFTP reaches at least half the local
# throughput (local time / SFTP time ≥ 0.5).
#
# Environment:
#   BENCH_DIR    work folder (default /tmp/sitevault-bench); the site is
#                generated once into $BENCH_DIR/sftp-site and reused
#   BENCH_SEED   seed of the tree (default 1)
#   BENCH_SIZE   size of the tree (default 300MiB)
#   BENCH_FILES  files in the tree (default 30000)
#   BENCH_RUNS   rounds (default 3); the order of the runs alternates
#                between rounds (forward, then backward)
#   BENCH_BINS   space-separated NAME=PATH sitevault binaries to compare;
#                default: this checkout, built into the work folder
#
# The site is bench/gen's WordPress-like tree plus the two core files
# discovery looks for and a wp-config.php naming a small database (20,000
# postmeta rows) on a private MariaDB that bench/sftpsite starts beside the
# sshd; the database part is the same for both sides and small. Each run is
# timed with GNU time (wall, user, system, max RSS); the load average is
# recorded before every round. Output: stdout and bench/out/sftp-<time>.txt.
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
command -v /usr/bin/time >/dev/null || { echo "bench: GNU time is missing; run scripts/deps.sh bench" >&2; exit 1; }

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

bins=${BENCH_BINS:-}
if [[ -z $bins ]]; then
  log "building sitevault"
  go build -o "$B/sitevault" ./cmd/sitevault
  bins="$(git describe --always --dirty)=$B/sitevault"
fi

# The servers: sshd and MariaDB, until fd 9 closes.
log "starting sshd and MariaDB"
go build -o "$B/sftpsite" ./bench/sftpsite
rm -f "$B/sftpsite.env" "$B/sftpsite.in"
mkfifo "$B/sftpsite.in"
"$B/sftpsite" -site "$site" -env "$B/sftpsite.env" <"$B/sftpsite.in" >"$B/sftpsite.log" 2>&1 &
srv=$!
exec 9>"$B/sftpsite.in"
trap 'exec 9>&-; wait $srv 2>/dev/null || true; rm -f "$B/sftpsite.in"' EXIT
for _ in $(seq 600); do [[ -s $B/sftpsite.env ]] && break; kill -0 $srv 2>/dev/null || { cat "$B/sftpsite.log" >&2; exit 1; }; sleep 0.1; done
# shellcheck disable=SC1091
source "$B/sftpsite.env"

export SITEVAULT_PASSWORD=bench-password
unset SITEVAULT_REPOSITORY SITEVAULT_SERVER
declare -A binpath
names=()
for nb in $bins; do
  name=${nb%%=*} binpath[$name]=${nb#*=}
  names+=("$name")
  home=$B/sftp-home-$name
  rm -rf "$home"
  sv() { "${binpath[$name]}" --home "$home" "$@"; }
  sv --repo "$B/sftp-repo-setup" init >/dev/null 2>&1 || true
  sv --repo "$B/sftp-repo-setup" site add local --path "$site" >/dev/null
  sv --repo "$B/sftp-repo-setup" site add sftp --ssh "$SSH_USER@$SSH_ADDR" --path "$site" --identity "$SSH_KEY" --yes >/dev/null
done
rm -rf "$B/sftp-repo-setup"

files=$(find "$site" -type f | wc -l)
bytes=$(find "$site" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
result=$out/sftp-$(date -u +%Y%m%dT%H%M%SZ).txt
exec > >(tee "$result")
echo "# bench/sftp.sh $(date -u +%FT%TZ) on $(nproc) cores, $(uname -sr); commit $(git describe --always --dirty)"
echo "# site: $stamp ($files files, $bytes bytes); binaries: $bins"
echo "# round name side seconds user sys maxrss_kib load1"

# Warm the page cache, so neither side pays for the first read from disk.
find "$site" -type f -print0 | xargs -0 cat >/dev/null

steps=()
for name in "${names[@]}"; do steps+=("$name local" "$name sftp"); done
for ((round = 1; round <= runs; round++)); do
  order=("${steps[@]}")
  if ((round % 2 == 0)); then
    order=(); for ((i = ${#steps[@]} - 1; i >= 0; i--)); do order+=("${steps[i]}"); done
  fi
  for step in "${order[@]}"; do
    read -r name side <<<"$step"
    repo=$B/sftp-repo-$name-$side
    rm -rf "$repo"
    "${binpath[$name]}" --home "$B/sftp-home-$name" --repo "$repo" init >/dev/null
    load=$(cut -d' ' -f1 /proc/loadavg)
    if ! /usr/bin/time -f '%e %U %S %M' -o "$B/time" "${binpath[$name]}" --home "$B/sftp-home-$name" --repo "$repo" -q backup "$side" >"$B/backup.out" 2>&1; then
      cat "$B/backup.out" >&2; echo "bench: backup $side ($name) failed" >&2; exit 1
    fi
    echo "$round $name $side $(cat "$B/time") $load"
  done
done

awk -v bytes="$bytes" '
  /^#/ {next}
  { t[$2" "$3] = t[$2" "$3] " " $4; cpu[$2" "$3] = cpu[$2" "$3] " " ($5 + $6); names[$2] = 1
    r[$1" "$2" "$3] = $4; rounds = ($1 > rounds) ? $1 : rounds }
  function median(s,   a, n, i, j, x) {
    n = split(s, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { x = a[i]; a[i] = a[j]; a[j] = x }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    printf "\n| build | local first backup | SFTP first backup | SFTP / local throughput (medians) | per round | goal ≥ 0.5 |\n|---|---|---|---|---|---|\n"
    for (n in names) {
      l = median(t[n" local"]); s = median(t[n" sftp"]); per = ""
      for (i = 1; i <= rounds; i++) per = per sprintf("%s%.2f", i > 1 ? ", " : "", r[i" "n" local"] / r[i" "n" sftp"])
      printf "| %s | %.2f s (%.0f MB/s; CPU %.2f s) | %.2f s (%.0f MB/s; CPU %.2f s) | %.2f | %s | %s |\n", n, l, bytes / l / 1e6, median(cpu[n" local"]), s, bytes / s / 1e6, median(cpu[n" sftp"]), l / s, per, (l / s >= 0.5) ? "met" : "not met"
    }
  }' "$result"
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
