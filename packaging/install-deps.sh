#!/bin/sh
# The Debian packages that building and smoke-testing the artefacts need (Debian 12, as
# root), beyond lab/install-deps.sh's: the system Python's venv (the .deb's venv and the
# build venv), its shared library and binutils (PyInstaller), pipx (the pipx smoke test),
# what the .deb depends on (its smoke test installs it with dpkg -i). None runs a daemon.
set -eu

updated=""
ensure() {
    missing=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "packaging/install-deps.sh: missing packages:$missing; run as root to install them" >&2
        exit 1
    fi
    echo "Installing:$missing"
    [ -n "$updated" ] || apt-get update -qq
    updated=yes
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

ensure python3-venv
pyver=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
ensure "libpython$pyver" binutils pipx ca-certificates adduser
