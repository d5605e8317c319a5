#!/usr/bin/env bash
# Install Debian's Chromium (+ chromedriver) for the Playwright browser tests.
#
# Idempotent: does nothing when /usr/bin/chromium already exists.
# Playwright is driven against this system Chromium (executable_path=/usr/bin/chromium);
# `playwright install` is NOT used because it downloads a browser build from outside
# the package registries.
set -euo pipefail

CHROMIUM_BIN=/usr/bin/chromium
PACKAGES=(chromium chromium-driver)

if [[ -x "$CHROMIUM_BIN" ]]; then
    echo "install-browser: $CHROMIUM_BIN already present ($("$CHROMIUM_BIN" --version 2>/dev/null || echo 'version unknown')); nothing to do."
    exit 0
fi

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "install-browser: ERROR: not root and sudo is not available; cannot install ${PACKAGES[*]}." >&2
        echo "install-browser: run as root: apt-get install --no-install-recommends ${PACKAGES[*]}" >&2
        exit 1
    fi
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: ERROR: apt-get not found; this script supports Debian/Ubuntu only." >&2
    exit 1
fi

echo "install-browser: installing ${PACKAGES[*]} with apt-get ..."
if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update; then
    echo "install-browser: ERROR: apt-get update failed." >&2
    exit 1
fi
if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${PACKAGES[@]}"; then
    echo "install-browser: ERROR: apt-get install ${PACKAGES[*]} failed." >&2
    exit 1
fi

if [[ ! -x "$CHROMIUM_BIN" ]]; then
    echo "install-browser: ERROR: packages installed but $CHROMIUM_BIN is still missing." >&2
    exit 1
fi
echo "install-browser: OK: $("$CHROMIUM_BIN" --version 2>/dev/null || echo "$CHROMIUM_BIN")"
