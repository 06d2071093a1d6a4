#!/usr/bin/env bash
# Make sure Debian's Chromium is installed (the site check drives it headless with Playwright).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: Chromium is needed for the site check; install it (Debian/Ubuntu: apt-get install chromium) and re-run" >&2
  exit 1
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
chromium --version
