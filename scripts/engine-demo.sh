#!/usr/bin/env bash
# The engine demo (`make demo-engine`): sitevault's engine on a generated WordPress-like
# folder, on embedded defaults, in a private data home under .demo-engine/ (so it
# never touches ~/.local/share/sitevault). Re-running starts over.
#
# It creates the embedded repository (with its random key file), backs the
# folder up, changes it, backs it up again (only the changes are stored),
# lists the restore points, wrecks the folder, restores it, checks that the
# restored folder equals the original with diff -r, and verifies every byte
# of the repository with `check --read-data`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

sv=${SITEVAULT_BIN:-$root/bin/sitevault}
[[ -x $sv ]] || { echo "demo: $sv is missing; run make demo-engine (it builds it first)" >&2; exit 1; }

demo=$root/.demo-engine
rm -rf "$demo"
mkdir -p "$demo"
export SITEVAULT_HOME=$demo/home
unset SITEVAULT_PASSWORD SITEVAULT_REPOSITORY SITEVAULT_NEW_PASSWORD
site=$demo/site
original=$demo/original

if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
run() { printf '$ %s\n' "sitevault $*"; "$sv" "$@"; }

step "1. Create the embedded repository in a fresh data home ($SITEVAULT_HOME)"
echo "No password is given, so sitevault makes a random key file for it."
run init

step "2. Generate a small WordPress-like site folder ($site)"
go run ./bench/gen -out "$site" -seed 42 -size 40MiB -files 2000 2>&1 | sed 's/^/   /'
echo "   $(find "$site" -type f | wc -l) files, $(du -sh "$site" | cut -f1): plugins and themes (text that shares code), uploads (media)"

step "3. First backup: everything is read, deduplicated, compressed and encrypted"
run dir backup "$site" --site demo

step "4. Change the site: edit a plugin, add an upload, delete a theme file"
plugin=$(find "$site/wp-content/plugins" -name '*.php' | sort | head -1)
echo "// edited by the demo at $(date -u +%FT%TZ)" >>"$plugin"
head -c 2000000 /dev/urandom >"$site/wp-content/uploads/new-photo.jpg"
rm -f "$(find "$site/wp-content/themes" -name '*.css' | sort | head -1)"
echo "   edited $(basename "$plugin"), added new-photo.jpg (2 MB), removed a stylesheet"

step "5. Second backup: unchanged files are not even read, and only new data is stored"
run dir backup "$site" --site demo
echo "   (about 2 MB added: the new photo; the edited plugin is a few KiB)"

step "6. The restore points"
run snapshots

cp -a "$site" "$original"
step "7. Wreck the site: delete every plugin and overwrite wp-config.php"
rm -rf "$site/wp-content/plugins"
echo "<?php // hacked" >"$site/wp-config.php"
echo "   $(find "$site" -type f | wc -l) files left"

step "8. Restore the latest restore point into the site folder"
run dir restore latest "$site" --site demo

step "9. Compare with the state before the wreck (diff -r)"
if diff -r "$original" "$site"; then
  echo "   identical: every file is back, byte for byte"
else
  echo "demo: the restored site differs from the original" >&2
  exit 1
fi

step "10. Verify the repository: structure, and every blob read and authenticated"
run check --read-data

step "Done. Things to try next"
cat <<EOF
   export SITEVAULT_HOME=$SITEVAULT_HOME PATH=$(dirname "$sv"):\$PATH
   sitevault snapshots --json
   sitevault key list                      # the key file is one key; add a password too:
   SITEVAULT_NEW_PASSWORD=… sitevault key add
   sitevault forget demo --keep-last 1 --dry-run
   sitevault prune --dry-run
   sitevault dir restore <ID> /tmp/elsewhere   # any restore point, anywhere
   sitevault --help
   The key file is $SITEVAULT_HOME/repo.key: without it, the backups cannot be read.
EOF
