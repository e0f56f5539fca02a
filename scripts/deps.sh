#!/usr/bin/env bash
# Installs what sitevault's tests, demo and benchmarks need on a fresh Debian
# machine, idempotently: Debian packages with apt-get (only those missing, so
# a second run touches nothing) and Go tools with go install into .tools/bin.
#
#   scripts/deps.sh test    # servers the tests start: sshd, MariaDB, PostgreSQL, PHP + WordPress, VersityGW, Mailpit;
#                           # php-zip (make connector builds the plugin's zip) and php-codesniffer (its PSR-12 check);
#                           # chromium (the dashboard's browser tests) with fonts-dejavu-core so pages render text
#   scripts/deps.sh demo    # what make demo needs
#   scripts/deps.sh bench   # test deps plus the tools we compare against (restic, mydumper) and PostgreSQL (bench/service.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-test}
# wordpress only Recommends its default theme and language files; the demo and the tests use both.
pkgs=(openssh-server openssh-client mariadb-server mariadb-client php-cli php-mysql wordpress wordpress-theme-twentytwentythree wordpress-l10n ca-certificates)
# The catalog's PostgreSQL tests start their own server from the postgresql
# package's programs (postgresql-client comes with it); the demo uses SQLite.
case "$what" in
  test) pkgs+=(postgresql php-zip php-codesniffer chromium fonts-dejavu-core) ;;
  demo) ;;
  bench) pkgs+=(postgresql restic mydumper hyperfine time) ;;
  *) echo "usage: $0 test|demo|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  # Debian's mariadb-server and openssh-server try to start their system
  # services; we run private servers instead, so tell invoke-rc.d not to.
  policy=/usr/sbin/policy-rc.d
  created_policy=""
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee $policy >/dev/null; $sudo chmod +x $policy; created_policy=1
  fi
  # Installing a postgresql-NN package for the first time creates a "main"
  # cluster (in /var/lib/postgresql, on port 5432) unless postgresql-common's
  # createcluster.conf says create_main_cluster = false. That file includes
  # createcluster.d/*.conf, so a drop-in there is honoured even on a fresh
  # machine, where the package installs createcluster.conf itself. Clusters
  # that already exist are never touched.
  nocluster=/etc/postgresql-common/createcluster.d/sitevault-no-main-cluster.conf
  created_nocluster=""
  if [[ " ${missing[*]} " == *" postgresql "* && ! -e $nocluster ]]; then
    $sudo mkdir -p "$(dirname $nocluster)"
    printf '# Written by sitevault scripts/deps.sh while it installs PostgreSQL.\ncreate_main_cluster = false\n' | $sudo tee $nocluster >/dev/null
    created_nocluster=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [[ -n $created_policy ]] && $sudo rm -f $policy
  [[ -n $created_nocluster ]] && $sudo rm -f $nocluster
fi

# Go tools, pinned, built once into .tools/bin. The demo needs none.
mkdir -p .tools/bin
if [[ $what != demo && ! -x .tools/bin/versitygw ]]; then
  echo "deps: building versitygw (S3 server for the tests)"
  GOBIN="$PWD/.tools/bin" go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi
if [[ $what != demo && ! -x .tools/bin/mailpit ]]; then
  echo "deps: building mailpit (SMTP server for the notification tests)"
  # v1.27.11 is the fallback for a toolchain the newer release does not build with.
  GOBIN="$PWD/.tools/bin" go install github.com/axllent/mailpit@v1.33.1 ||
    GOBIN="$PWD/.tools/bin" go install github.com/axllent/mailpit@v1.27.11
fi
