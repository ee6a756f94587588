#!/usr/bin/env bash
# The visualizer's end-to-end tests drive Debian's Chromium with playwright-core. Install it when missing
# (Debian/Ubuntu with apt, as root or with sudo); never download a browser build of our own.
set -euo pipefail
if [ -x /usr/bin/chromium ] || [ -n "${LAPIDARY_CHROMIUM:-}" ]; then exit 0; fi
echo "lapidary: /usr/bin/chromium is missing; installing Debian's chromium for the browser tests" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
