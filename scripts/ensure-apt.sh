#!/bin/sh
# Install Debian packages whose command is missing: ensure-apt.sh cmd:package ...
# A package with no command (a library) is written dpkg:package and checked with dpkg.
# CI runs as root on a fresh Debian machine; a developer without root gets a clear message.
set -eu
missing=""
for pair in "$@"; do
    cmd=${pair%%:*}
    pkg=${pair#*:}
    if [ "$cmd" = dpkg ]; then
        dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
    else
        command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "ensure-apt: missing packages:$missing (run: sudo apt-get install -y$missing)" >&2
    exit 1
fi
echo "ensure-apt: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
