#!/usr/bin/env bash
# Restore writes only what differs: whole `sitevault` processes, timed back
# to back in one run with alternating order.
#
#   bench/restore-delta.sh
#
# One backup of the generated tree (bench/gen), then per round:
#   full   `sitevault dir restore` into an empty folder
#   delta  `sitevault dir restore` into a folder holding the point where 1 %
#          of the files had one byte changed with size and mtime kept (the
#          hardest case: a folder the restore wrote, every file of the point
#          is read and hashed)
#   inplace the same change in the folder that was backed up (a copy of the
#          tree, backed up as site "inplace"), restored in place: a user
#          wrecking their site and restoring it. Files the backup read and
#          nothing wrote since (same inode, size, mtime and ctime) are not
#          read; the changed ones (their ctime moved) are.
# and the figures that do not depend on load: files written and files left
# in place, from restore's summary. Wall times and peak RSS come from GNU
# time; the load average is printed before and after.
#
# Environment: BENCH_PASSWORD (keyfile: embedded defaults, opened by the
# generated key file; env: a typed password's slot), BENCH_DIR (default /tmp/sitevault-bench-delta), BENCH_SEED (1),
# BENCH_SIZE (512MiB), BENCH_FILES (16000), BENCH_RUNS (3), BENCH_CHANGED
# (percent of files changed, 1), BENCH_BASE (a sitevault binary of an
# earlier commit: its full restore into an empty folder is timed too, as
# "full-base", to compare with today's).
set -euo pipefail
cd "$(dirname "$0")/.."

B=${BENCH_DIR:-/tmp/sitevault-bench-delta}
seed=${BENCH_SEED:-1}
size=${BENCH_SIZE:-512MiB}
nfiles=${BENCH_FILES:-16000}
runs=${BENCH_RUNS:-3}
pct=${BENCH_CHANGED:-1}
tree=$B/tree
mkdir -p "$B"
log() { printf 'bench: %s\n' "$*" >&2; }

stamp="seed=$seed size=$size files=$nfiles"
if [[ ! -f $B/tree.stamp || $(cat "$B/tree.stamp") != "$stamp" ]]; then
  log "generating the tree ($stamp)"
  rm -rf "$tree"
  go run ./bench/gen -out "$tree" -seed "$seed" -size "$size" -files "$nfiles"
  echo "$stamp" >"$B/tree.stamp"
fi
go build -o "$B/sitevault" ./cmd/sitevault
sv=$B/sitevault
export SITEVAULT_HOME=$B/sv-home
unset SITEVAULT_REPOSITORY SITEVAULT_PASSWORD
# keyfile (default): embedded defaults, the repository in the data home
# opened by the key file init generates; env: its own path and a typed
# password's slot (scrypt N=2^16) from $SITEVAULT_PASSWORD.
case ${BENCH_PASSWORD:-keyfile} in
  keyfile) REPO=() ;;
  env) REPO=(--repo "$B/repo"); export SITEVAULT_PASSWORD=bench-password ;;
  *) echo "BENCH_PASSWORD: keyfile or env" >&2; exit 2 ;;
esac
rm -rf "$B/repo" "$B/sv-home" "$B"/full-* "$B/delta"
"$sv" init "${REPO[@]}" >/dev/null
"$sv" "${REPO[@]}" dir backup "$tree" --site bench >/dev/null
rm -rf "$B/site"
cp -a "$tree" "$B/site"
"$sv" "${REPO[@]}" dir backup "$B/site" --site inplace >/dev/null
log "load before: $(uptime)"

# change ROOT ROUND: one byte of every (100/pct)th file, size and mtime kept.
change() {
  python3 - "$1" "$pct" "$2" <<'PY'
import os, sys
root, pct, rnd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
paths = [p for p in paths if os.path.getsize(p) > 0]
step = max(1, 100 // pct)
n = 0
for p in paths[rnd % step::step]:
    st = os.stat(p)
    with open(p, 'r+b') as f:
        f.seek(st.st_size // 2); b = f.read(1); f.seek(st.st_size // 2); f.write(bytes([b[0] ^ 1]))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    n += 1
print(n)
PY
}

# timed NAME TARGET [BINARY [SITE]]: runs the restore, prints "NAME secs rssKiB written unchanged".
timed() {
  local out
  out=$( { /usr/bin/time -f 'TIME %e %M %U %S' "${3:-$sv}" "${REPO[@]}" dir restore latest "$2" --site "${4:-bench}"; } 2>&1 )
  local t rss w u us sy
  read -r _ t rss us sy < <(grep '^TIME' <<<"$out")
  w=$(sed -n 's/^  \([0-9]*\) files, .*/\1/p' <<<"$out")
  u=$(sed -n 's/^  \([0-9]*\) files already right.*/\1/p' <<<"$out")
  echo "$1 $t $rss ${w:-0} ${u:-0} $(awk -v a="$us" -v b="$sy" 'BEGIN { print a + b }')"
}

"$sv" "${REPO[@]}" dir restore latest "$B/delta" --site bench >/dev/null  # the populated folder
results=()
for ((r = 1; r <= runs; r++)); do
  changed=$(change "$B/delta" "$r")
  change "$B/site" "$r" >/dev/null
  if ((r % 2)); then order="full delta inplace"; else order="inplace delta full"; fi
  if [[ -n ${BENCH_BASE:-} ]]; then
    if ((r % 2)); then order="$order full-base"; else order="full-base $order"; fi
  fi
  n0=${#results[@]}
  for k in $order; do
    case $k in
    # A new folder each time, all deleted at the end: ext4 creates files
    # slowly for a while after a large tree was deleted, so deleting the
    # previous round's restore first would slow the next (see "Benchmark
    # hygiene" in docs/benchmarks.md).
    full) results+=("$(timed full "$B/full-$r")") ;;
    full-base) results+=("$(timed full-base "$B/full-base-$r" "$BENCH_BASE")") ;;
    delta) results+=("$(timed delta "$B/delta")") ;;
    inplace) results+=("$(timed inplace "$B/site" "$sv" inplace)") ;;
    esac
  done
  log "round $r: $changed files changed; ${results[*]:n0}"
done
log "load after: $(uptime)"
rm -rf "$B"/full-*
printf '%s\n' "${results[@]}" | awk -v files="$(find "$tree" -type f | wc -l)" -v bytes="$(du -sb "$tree" | cut -f1)" '
  { t[$1] = t[$1] " " $2; rss[$1] = $3; w[$1] = $4; u[$1] = $5; c[$1] = c[$1] " " $6 }
  function med(s,   a, n) { n = split(s, a, " "); asort(a); return a[int((n + 1) / 2)] }
  END {
    printf "tree: %d files, %.0f MiB\n", files, bytes / 1048576
    printf "| restore | median wall s | runs (s) | median CPU s (user+sys) | runs (s) | peak RSS MiB | files written | files already right |\n|---|---|---|---|---|---|---|---|\n"
    for (k in t) printf "| %s | %.2f |%s | %.2f |%s | %.0f | %d | %d |\n", k, med(t[k]), t[k], med(c[k]), c[k], rss[k] / 1024, w[k], u[k]
    printf "delta / full (medians): wall %.3f, CPU %.3f\n", med(t["delta"]) / med(t["full"]), med(c["delta"]) / med(c["full"])
    printf "inplace / full (medians): wall %.3f, CPU %.3f\n", med(t["inplace"]) / med(t["full"]), med(c["inplace"]) / med(c["full"])
    if ("full-base" in t) printf "full / full-base (medians): wall %.3f, CPU %.3f\n", med(t["full"]) / med(t["full-base"]), med(c["full"]) / med(c["full-base"])
  }'
