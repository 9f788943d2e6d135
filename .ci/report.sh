#!/usr/bin/env bash
# Installs headless Chromium for tests/report/test_chromium.py, which skips without one.
# Idempotent: does nothing when `chromium` is already on PATH. Debian's package (apt-get, root or
# sudo); Ubuntu's `chromium` is a snap stub that does not run in containers.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
$sudo apt-get update -q
# env, not a plain assignment: sudo drops the caller's environment.
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
chromium --version
