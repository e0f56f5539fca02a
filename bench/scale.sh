#!/usr/bin/env bash
# Engine at scale: a synthetic repository of many small blobs (bench/bigrepo,
# written through the engine) and the real binary's Open, an incremental
# backup of 1,000 new files, and check (structure), each under
# /usr/bin/time -v, with the load average before each run.
#
#   bench/scale.sh                        # 10 million blobs in /tmp/sitevault-scale
#   SCALE_BLOBS=1000000 bench/scale.sh    # smaller
#   SCALE_RUNS=3 bench/scale.sh           # rounds of the Open and backup measurements
#
# The repository is generated once per blob count and reused; the backup
# rounds each add a new folder of 1,000 files (so each adds 1,000 blobs).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${SCALE_DIR:-/tmp/sitevault-scale}
BLOBS=${SCALE_BLOBS:-10000000}
RUNS=${SCALE_RUNS:-3}
REPO=$DIR/repo-$BLOBS
export SITEVAULT_PASSWORD=${SITEVAULT_PASSWORD:-bench}
mkdir -p "$DIR"
go build -o "$DIR/sitevault" ./cmd/sitevault
go build -o "$DIR/bigrepo" ./bench/bigrepo

measure() { # name, command...
	local name=$1
	shift
	local load
	load=$(cut -d' ' -f1-3 /proc/loadavg)
	/usr/bin/time -v "$@" >"$DIR/out.txt" 2>"$DIR/time.txt" || { cat "$DIR/out.txt" "$DIR/time.txt"; exit 1; }
	local wall rss user sys
	wall=$(grep 'Elapsed (wall' "$DIR/time.txt" | awk '{print $NF}')
	rss=$(grep 'Maximum resident' "$DIR/time.txt" | awk '{print $NF}')
	user=$(grep 'User time' "$DIR/time.txt" | awk '{print $NF}')
	sys=$(grep 'System time' "$DIR/time.txt" | awk '{print $NF}')
	printf '| %s | %s | %s | %s | %d MiB | %s |\n' "$name" "$wall" "$user" "$sys" $((rss / 1024)) "$load"
}

if [ ! -f "$REPO/config" ]; then
	echo "generating $BLOBS blobs into $REPO"
	rm -rf "$REPO"
	/usr/bin/time -f "generator: %e s wall, %M KB max RSS" "$DIR/bigrepo" -repo "$REPO" -blobs "$BLOBS"
fi
echo "repository: $(du -sh "$REPO/data" | cut -f1) of packs, $(du -sh "$REPO/index" | cut -f1) in $(ls "$REPO/index" | wc -l) index files"
echo
echo "| what | wall | user s | sys s | max RSS | load before |"
echo "|---|---|---|---|---|---|"
for i in $(seq "$RUNS"); do
	measure "open + list restore points" "$DIR/sitevault" --repo "$REPO" snapshots
done
for i in $(seq "$RUNS"); do
	src=$DIR/inc-$(date +%s%N)
	mkdir -p "$src"
	for f in $(seq 1000); do printf '<?php // %s %d\n' "$src" "$f" >"$src/f$f.php"; done
	measure "backup of 1,000 new files" "$DIR/sitevault" --repo "$REPO" dir backup "$src" --site "inc-$i"
	rm -rf "$src"
done
measure "check (structure)" "$DIR/sitevault" --repo "$REPO" check
