#!/usr/bin/env bash
# Side-by-side benchmark: sitevault's engine (`sitevault dir backup/restore`
# on a local repository) against restic (Debian's package, repository format
# v2, compression auto) on the same generated WordPress-like tree, in one run.
#
#   bench/run.sh                    # or: make bench (installs restic and GNU time first)
#
# Environment:
#   BENCH_DIR    work folder (default /tmp/sitevault-bench); the tree is
#                generated once into $BENCH_DIR/tree and reused
#   BENCH_SEED   seed of the tree (default 1)
#   BENCH_SIZE   size of the tree (default 1.1GiB)
#   BENCH_FILES  files in the tree (default 32000)
#   BENCH_RUNS   rounds; the table shows each figure's median (default 3)
#
# Measured per tool: first backup, backup of the unchanged tree, restore
# (wall time, and peak memory as GNU time's maximum resident set size), and
# the repository's size on disk. The two tools take turns going first: in
# odd rounds sitevault runs each step first, in even rounds restic does. The
# page cache is warmed first so that neither tool pays for the first read of
# the tree from disk. The results table (markdown) goes to stdout and to
# bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

B=${BENCH_DIR:-/tmp/sitevault-bench}
seed=${BENCH_SEED:-1}
size=${BENCH_SIZE:-1.1GiB}
nfiles=${BENCH_FILES:-32000}
tree=$B/tree
out=$root/bench/out
mkdir -p "$B" "$out"

for tool in restic /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing; run scripts/deps.sh bench (make bench does)" >&2; exit 1; }
done

log() { printf 'bench: %s\n' "$*" >&2; }

# The tree, generated once (deterministic: same seed, same bytes).
stamp="seed=$seed size=$size files=$nfiles"
if [[ ! -f $B/tree.stamp || $(cat "$B/tree.stamp") != "$stamp" ]]; then
  log "generating the tree ($stamp) into $tree"
  rm -rf "$tree"
  go run ./bench/gen -out "$tree" -seed "$seed" -size "$size" -files "$nfiles"
  echo "$stamp" >"$B/tree.stamp"
fi
tree_bytes=$(find "$tree" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
tree_files=$(find "$tree" -type f | wc -l)

log "building sitevault"
go build -o "$B/sitevault" ./cmd/sitevault
sv=$B/sitevault

warm() { find "$tree" -type f -print0 | xargs -0 cat >/dev/null; }
load_before=$(cut -d' ' -f1-3 /proc/loadavg)


# measure NAME CMD… runs CMD under GNU time and appends its seconds and max
# RSS (KiB) to the round's figures.
declare -A all_secs all_rss secs rss
measure() {
  local name=$1; shift
  local tf=$B/time.$name
  log "$name: $*"
  if ! /usr/bin/time -v -o "$tf" "$@" >"$B/out.$name" 2>&1; then
    cat "$B/out.$name" >&2
    echo "bench: $name failed" >&2
    exit 1
  fi
  local t m
  t=$(awk -F': ' '/Elapsed \(wall clock\)/ {
      n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$tf")
  m=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tf")
  all_secs[$name]+="$t "
  all_rss[$name]+="$m "
  log "$name: $t s, max RSS $m KiB"
}
median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# The steps, one function per tool and step ($round names the restore folder).
sv_first() { measure sv_first "$sv" --repo "$B/sv-repo" dir backup "$tree" --site bench; }
restic_first() { measure restic_first restic --repo "$B/restic-repo" --compression auto backup --host bench "$tree"; }
sv_unchanged() { measure sv_unchanged "$sv" --repo "$B/sv-repo" dir backup "$tree" --site bench; }
restic_unchanged() { measure restic_unchanged restic --repo "$B/restic-repo" --compression auto backup --host bench "$tree"; }
sv_restore() { measure sv_restore "$sv" --repo "$B/sv-repo" dir restore latest "$B/sv-restore-$round" --site bench; }
restic_restore() { measure restic_restore restic --repo "$B/restic-repo" restore latest --target "$B/restic-restore-$round"; }

# Each round creates both repositories, then runs each step for sitevault
# and for restic back to back, so that a change of load on a shared machine
# weighs on both alike: sitevault first in odd rounds, restic first in even
# rounds, so that neither always gets the warmer (or the colder) page cache
# or the quieter moment. The load average is recorded before each round;
# the table shows the median of the rounds and lists each round's seconds.
runs=${BENCH_RUNS:-3}
round_loads=""
export SITEVAULT_HOME=$B/sv-home SITEVAULT_PASSWORD=bench-password
export RESTIC_PASSWORD=bench-password RESTIC_CACHE_DIR=$B/restic-cache
unset SITEVAULT_REPOSITORY
for ((round = 1; round <= runs; round++)); do
  log "round $round of $runs"
  round_loads+="round $round: $(cut -d' ' -f1-3 /proc/loadavg); "
  # Restores go into fresh folders and none is deleted during the run:
  # right after a 32,000-file tree is deleted, ext4 creates files several
  # times slower for minutes, which would be measured as restore time.
  rm -rf "$B/sv-home" "$B/sv-repo" "$B/restic-repo" "$B/restic-cache"
  "$sv" init --repo "$B/sv-repo" >/dev/null
  restic init --repo "$B/restic-repo" --repository-version 2 >/dev/null
  warm

  for step in first unchanged restore; do
    if ((round % 2)); then "sv_$step"; "restic_$step"; else "restic_$step"; "sv_$step"; fi
  done
done
for name in "${!all_secs[@]}"; do
  secs[$name]=$(median <<<"${all_secs[$name]}")
  rss[$name]=$(median <<<"${all_rss[$name]}")
done

sv_repo=$(du -sb "$B/sv-repo" | cut -f1)
restic_repo=$(du -sb "$B/restic-repo" | cut -f1)
log "verifying the restored trees"
sv_ok=yes restic_ok=yes
for ((round = 1; round <= runs; round++)); do
  diff -r "$tree" "$B/sv-restore-$round" >/dev/null || sv_ok=NO
  diff -r "$tree" "$B/restic-restore-$round$tree" >/dev/null || restic_ok=NO
done
rm -rf "$B"/sv-restore* "$B"/restic-restore*

# --- the table ---
sv_version=$(cd "$root" && git describe --always --dirty 2>/dev/null || echo unknown)
restic_version=$(restic version | awk '{print $2}')
date_utc=$(date -u '+%Y-%m-%d %H:%M UTC')
max() { if (($1 > $2)); then echo "$1"; else echo "$2"; fi; }
sv_peak=$(max "${rss[sv_first]}" "$(max "${rss[sv_unchanged]}" "${rss[sv_restore]}")")
restic_peak=$(max "${rss[restic_first]}" "$(max "${rss[restic_unchanged]}" "${rss[restic_restore]}")")

table=$(awk -v tb="$tree_bytes" -v tf="$tree_files" \
  -v s1="${secs[sv_first]}" -v s2="${secs[sv_unchanged]}" -v s3="${secs[sv_restore]}" \
  -v r1="${secs[restic_first]}" -v r2="${secs[restic_unchanged]}" -v r3="${secs[restic_restore]}" \
  -v sm1="${rss[sv_first]}" -v sm2="${rss[sv_unchanged]}" -v sm3="${rss[sv_restore]}" \
  -v rm1="${rss[restic_first]}" -v rm2="${rss[restic_unchanged]}" -v rm3="${rss[restic_restore]}" \
  -v sp="$sv_peak" -v rp="$restic_peak" \
  -v sr="$sv_repo" -v rr="$restic_repo" -v sok="$sv_ok" -v rok="$restic_ok" '
function mib(b) { return sprintf("%.1f MiB", b / 1048576) }
function tput(t) { return t > 0 ? sprintf("%.1f MiB/s", tb / 1048576 / t) : "-" }
function st(ok) { return ok ? "**met**" : "not met" }
BEGIN {
  printf "Tree: %d files, %s.\n\n", tf, mib(tb)
  print "| measure | sitevault | restic | sitevault / restic | goal | status |"
  print "|---|---|---|---|---|---|"
  printf "| first backup | %.2f s (%s) | %.2f s (%s) | %.2f× throughput | ≥ 2× throughput | %s |\n", s1, tput(s1), r1, tput(r1), r1 / s1, st(r1 / s1 >= 2)
  printf "| unchanged tree | %.2f s | %.2f s | %.2f× time | ≤ 0.3× time | %s |\n", s2, r2, s2 / r2, st(s2 / r2 <= 0.3)
  printf "| restore | %.2f s (%s) | %.2f s (%s) | %.2f× throughput | ≥ 1× throughput | %s |\n", s3, tput(s3), r3, tput(r3), r3 / s3, st(r3 / s3 >= 1)
  printf "| repository size | %s | %s | %.3f× | ≤ 1× | %s |\n", mib(sr), mib(rr), sr / rr, st(sr <= rr)
  printf "| peak memory (max RSS) | %s | %s | %.2f× | ≤ 1× | %s |\n", mib(sp * 1024), mib(rp * 1024), sp / rp, st(sp <= rp)
  printf "| … first / unchanged / restore | %s / %s / %s | %s / %s / %s | | | |\n", mib(sm1*1024), mib(sm2*1024), mib(sm3*1024), mib(rm1*1024), mib(rm2*1024), mib(rm3*1024)
  printf "| restored tree equals source (diff -r) | %s | %s | | yes | |\n", sok, rok
}')

machine=$(printf '%s, %s cores (nproc), %s RAM, disk: %s' \
  "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" "$(nproc)" \
  "$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)" \
  "$(df -h "$B" | awk 'NR==2 {print $1 " (" $2 ", " $5 " used)"}')")

report=$(cat <<EOF
## Results $date_utc

- machine: $machine
- sitevault $sv_version ($(go version | awk '{print $3}')); restic $restic_version (repository v2, compression auto)
- load average before the run: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine slows both tools alike, not always equally)
- command: \`bench/run.sh\` (BENCH_SEED=$seed BENCH_SIZE=$size BENCH_FILES=$nfiles BENCH_RUNS=$runs), work folder $B

Median of $runs rounds (sitevault ran first in odd rounds, restic first in even rounds; load average before each round: ${round_loads%; }). Each round's seconds, in order:

| step | sitevault | restic |
|---|---|---|
| first backup | ${all_secs[sv_first]} | ${all_secs[restic_first]} |
| unchanged tree | ${all_secs[sv_unchanged]} | ${all_secs[restic_unchanged]} |
| restore | ${all_secs[sv_restore]} | ${all_secs[restic_restore]} |

$table
EOF
)
echo "$report"
stamp_file=$(date -u +%Y%m%dT%H%M%SZ)
echo "$report" >"$out/results-$stamp_file.md"
cp "$out/results-$stamp_file.md" "$out/latest.md"
log "written to bench/out/results-$stamp_file.md"
