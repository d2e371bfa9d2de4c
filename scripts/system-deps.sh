#!/usr/bin/env bash
# System packages the full test suite needs: Debian's Chromium (browser tests, driven by
# Playwright through /usr/bin/chromium — no browser download) and PostgreSQL's server
# binaries (the PostgreSQL store tests start a throwaway server). Installs what is missing
# when run as root on Debian/Ubuntu; otherwise says what to install and carries on.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
  || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "system-deps: please install: ${need[*]} (Debian/Ubuntu: sudo apt-get install ${need[*]})" >&2
fi
