#!/usr/bin/env bash
# Installs what sitevault's tests, demo and benchmarks need on a fresh Debian
# machine, idempotently: Debian packages with apt-get (only those missing, so
# a second run touches nothing) and Go tools with go install into .tools/bin.
#
#   scripts/deps.sh test    # servers the tests start: sshd, MariaDB, PHP + WordPress, VersityGW, Mailpit
#   scripts/deps.sh demo    # what make demo needs
#   scripts/deps.sh bench   # test deps plus the tools we compare against (restic, mydumper)
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-test}
# wordpress only Recommends its default theme and language files; the demo and the tests use both.
pkgs=(openssh-server openssh-client mariadb-server mariadb-client php-cli php-mysql wordpress wordpress-theme-twentytwentythree wordpress-l10n ca-certificates)
case "$what" in
  test|demo) ;;
  bench) pkgs+=(restic mydumper hyperfine time postgresql) ;;
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
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [[ -n $created_policy ]] && $sudo rm -f $policy
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
