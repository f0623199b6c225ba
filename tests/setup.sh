#!/usr/bin/env bash
# What the tests need beyond pip: Debian's chromium (headless page tests) and the shared
# icscheck/feedcheck kit (third-party .ics parsers, vdirsyncer, khal). Re-running is cheap.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kit="$here/../../shared/tools/icscheck"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium >/dev/null 2>&1 || {
      apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null
    }
  else
    echo "tests/setup.sh: install Debian's chromium (apt-get install chromium)" >&2
    exit 1
  fi
fi
[ -x "$kit/.venv/bin/python" ] && [ -d "$kit/node_modules" ] && [ -x "$kit/build/libical-check" ] \
  || "$kit/setup.sh" >/dev/null
echo "tests/setup.sh: chromium and the icscheck kit are ready"
