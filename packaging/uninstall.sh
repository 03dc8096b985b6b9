#!/usr/bin/env bash
# Remove bm-agent (docs/operations.md). Keeps the config, the secrets key and the store
# unless --purge is given (then the bm-agent user goes too).
#
#   sudo packaging/uninstall.sh [--root DIR] [--purge]
set -euo pipefail

ROOT=""
PURGE=0
PREFIX=${PREFIX:-/opt/bm-agent}
CONF_DIR=${CONF_DIR:-/etc/bm-agent}
STATE_DIR=${STATE_DIR:-/var/lib/bm-agent}
UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}
BIN_LINK=${BIN_LINK:-/usr/local/bin/bm-agent}
SERVICE_USER=bm-agent

while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
        --purge) PURGE=1; shift ;;
        -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
        *) echo "uninstall.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ -n "$ROOT" ]; then
    ROOT=$(cd "$ROOT" && pwd)
    [ "$ROOT" = / ] && ROOT=""
fi
if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
    echo "uninstall.sh: run as root (or use --root DIR)" >&2
    exit 1
fi

if [ -z "$ROOT" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl disable --now bm-agent.service 2>/dev/null || true
fi
rm -f "$ROOT$UNIT_DIR/bm-agent.service"
if [ -z "$ROOT" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi
if [ -L "$ROOT$BIN_LINK" ]; then
    rm -f "$ROOT$BIN_LINK"
fi
rm -rf "$ROOT$PREFIX"
echo "uninstall.sh: removed $PREFIX and the unit"

if [ "$PURGE" = 1 ]; then
    rm -rf "$ROOT$CONF_DIR" "$ROOT$STATE_DIR"
    if [ -z "$ROOT" ] && getent passwd "$SERVICE_USER" >/dev/null; then
        userdel "$SERVICE_USER"
    fi
    echo "uninstall.sh: purged $CONF_DIR, $STATE_DIR and the $SERVICE_USER user"
else
    echo "uninstall.sh: kept $CONF_DIR (config, secrets key) and $STATE_DIR (store, backups)"
fi
