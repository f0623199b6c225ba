#!/usr/bin/env bash
# What the tests need beyond pip: Debian's chromium (headless page tests) and the project's own
# calendar validation kit, tests/kit/ (its README.md): the python parsers and feed clients in
# tests/kit/.venv, Mozilla's ical.js in tests/kit/node_modules (npm ci from package-lock.json),
# and the libical driver compiled into tests/kit/build/ against Debian's libical-dev.
# Missing Debian packages are installed when run as root. Re-running skips what is done.
set -euo pipefail
kit="$(cd "$(dirname "${BASH_SOURCE[0]}")/kit" && pwd)"
say() { echo "tests/setup.sh: $*"; }
checksum() { sha256sum "$@" | sha256sum | cut -c1-64; }
done_for() { [ "$(cat "$1" 2>/dev/null)" = "$(checksum "${@:2}")" ]; }  # STAMP FILE...

need=()
command -v chromium >/dev/null || need+=(chromium)
{ command -v node && command -v npm; } >/dev/null || need+=(nodejs npm)
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
pkg-config --exists libical 2>/dev/null || need+=(libical-dev)
command -v faketime >/dev/null || need+=(faketime)  # clock steps
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "install these Debian packages (as root): ${need[*]}" >&2
    exit 1
  fi
  say "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${need[@]}" >/dev/null 2>&1 || {
    apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null
  }
fi

cd "$kit"
if [ ! -x .venv/bin/python ] || ! done_for .venv/installed requirements.txt; then
  say "installing tests/kit/requirements.txt into tests/kit/.venv"
  [ -x .venv/bin/python ] || { rm -rf .venv && python3 -m venv .venv; }
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt \
    >.venv/pip.log 2>&1 || { cat .venv/pip.log >&2; exit 1; }
  checksum requirements.txt >.venv/installed
fi
if ! done_for node_modules/installed package-lock.json; then
  say "npm ci in tests/kit (ical.js)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  checksum package-lock.json >node_modules/installed
fi
if [ ! build/libical-check -nt drivers/libical_check.c ]; then
  say "compiling tests/kit/build/libical-check against libical $(pkg-config --modversion libical)"
  mkdir -p build
  # shellcheck disable=SC2046  # pkg-config's flags are meant to split
  cc -O2 -Wall -o build/libical-check drivers/libical_check.c \
    -DLIBICAL_FULL_VERSION="\"$(pkg-config --modversion libical)\"" \
    $(pkg-config --cflags --libs libical)
fi
say "chromium and the calendar kit (tests/kit/icscheck, tests/kit/feedcheck) are ready"
