#!/bin/sh
# Install Debian packages whose command is missing: ensure-apt.sh cmd:package ...
# CI runs as root on a fresh Debian machine; a developer without root gets a clear message.
set -eu
missing=""
for pair in "$@"; do
    cmd=${pair%%:*}
    pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg"
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
