#!/usr/bin/env bash
# Install or upgrade bm-agent on a Debian/Ubuntu café server (docs/operations.md).
#
#   sudo packaging/install.sh [options]
#
# What it does, in order (every step is idempotent, so running it again upgrades):
#   1. a system user and group `bm-agent` (no login, home /var/lib/bm-agent);
#   2. on upgrade: an online backup of the store with the old code, into
#      /var/lib/bm-agent/backups/ (skip with --no-backup);
#   3. a virtual environment in /opt/bm-agent with the agent installed by pip
#      (from this source tree, or --wheel FILE; --wheelhouse DIR for offline machines);
#   4. /etc/bm-agent/agent.toml, the secrets key /etc/bm-agent/secrets.key (0600, owned by
#      bm-agent) and the store /var/lib/bm-agent/agent.db through `bm-agent init`, only when
#      there is no config yet; the first admin's password goes to
#      /etc/bm-agent/initial-admin-password (0600) unless --admin-password-file is given;
#   5. `bm-agent upgrade-check`: refuses to go on when the store is newer than this code;
#   6. the hardened unit /etc/systemd/system/bm-agent.service, enabled and (re)started.
#
# --root DIR stages everything under DIR instead (like DESTDIR: the files name the final
# paths, the venv's scripts point at /opt/bm-agent): no user is created, nothing is chowned,
# systemctl is not called. CI runs it that way; packaging/deb/build.sh builds the .deb so.
set -euo pipefail

ROOT=""
PREFIX=${PREFIX:-/opt/bm-agent}
CONF_DIR=${CONF_DIR:-/etc/bm-agent}
STATE_DIR=${STATE_DIR:-/var/lib/bm-agent}
UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}
BIN_LINK=${BIN_LINK:-/usr/local/bin/bm-agent}
SERVICE_USER=bm-agent
PYTHON=${PYTHON:-python3}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE_DIR=$(dirname "$HERE")
WHEEL=""
WHEELHOUSE=""
OFFLINE=0
SYSTEM_SITE=0
DO_INIT=1
DO_START=1
DO_BACKUP=1
ADMIN=admin
ADMIN_PASSWORD_FILE=""
INIT_ARGS=()

usage() {
    cat <<EOF
usage: $0 [options]

  --root DIR                 stage under DIR (no useradd, chown or systemctl)
  --prefix DIR               virtual environment (default $PREFIX; env PREFIX)
  --wheel FILE               install this bm-agent wheel instead of the source tree
  --wheelhouse DIR           install offline from the wheels in DIR (pip --no-index)
  --offline                  never ask a package index (dependencies must be present)
  --system-site-packages     let the venv see the system Python's packages
  --python PYTHON            interpreter for the venv, 3.11+ (default $PYTHON)
  --admin NAME               first admin user (default admin)
  --admin-password-file FILE its password (default: generated into
                             $CONF_DIR/initial-admin-password)
  --node-url URL             [node] url of the DBC bare-metal node
  --node-dat FILE            [node] node_dat: the node's dat/node.dat
  --client-url URL           [node] client_url of a DBC client node
  --listen HOST:PORT         [api] listen (default 127.0.0.1:8700)
  --no-init                  do not create a config, key, store or admin
  --no-start                 install and enable the unit but do not (re)start it
  --no-backup                no backup of the store before an upgrade
  -h, --help                 this text
EOF
}

die() { echo "install.sh: error: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
        --prefix) PREFIX=${2:?}; shift 2 ;;
        --wheel) WHEEL=${2:?}; shift 2 ;;
        --wheelhouse) WHEELHOUSE=${2:?}; shift 2 ;;
        --offline) OFFLINE=1; shift ;;
        --system-site-packages) SYSTEM_SITE=1; shift ;;
        --python) PYTHON=${2:?}; shift 2 ;;
        --admin) ADMIN=${2:?}; shift 2 ;;
        --admin-password-file) ADMIN_PASSWORD_FILE=${2:?}; shift 2 ;;
        --node-url) INIT_ARGS+=(--node-url "${2:?}"); shift 2 ;;
        --node-dat) INIT_ARGS+=(--node-dat "${2:?}"); shift 2 ;;
        --client-url) INIT_ARGS+=(--client-url "${2:?}"); shift 2 ;;
        --listen) INIT_ARGS+=(--listen "${2:?}"); shift 2 ;;
        --no-init) DO_INIT=0; shift ;;
        --no-start) DO_START=0; shift ;;
        --no-backup) DO_BACKUP=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" ;;
    esac
done

for path in "$PREFIX" "$CONF_DIR" "$STATE_DIR" "$UNIT_DIR" "$BIN_LINK"; do
    case "$path" in /*) ;; *) die "$path must be an absolute path" ;; esac
done
if [ -n "$ROOT" ]; then
    mkdir -p "$ROOT"
    ROOT=$(cd "$ROOT" && pwd)
    [ "$ROOT" = / ] && ROOT=""
fi
REAL_SYSTEM=0
[ -z "$ROOT" ] && REAL_SYSTEM=1
if [ "$REAL_SYSTEM" = 1 ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root (or stage with --root DIR)"
fi

VENV="$ROOT$PREFIX"
CONFIG="$CONF_DIR/agent.toml"
KEY_FILE="$CONF_DIR/secrets.key"
STORE="$STATE_DIR/agent.db"

check_python() {
    "$PYTHON" - <<'EOF' || die "$PYTHON is not Python 3.11+ with the venv module (apt-get install python3-venv)"
import sys, venv, ensurepip  # noqa: F401  Debian ships ensurepip in python3-venv
sys.exit(0 if sys.version_info >= (3, 11) else 1)
EOF
}

ensure_user() {
    [ "$REAL_SYSTEM" = 1 ] || return 0
    if ! getent passwd "$SERVICE_USER" >/dev/null; then
        useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
            --shell /usr/sbin/nologin --comment "bm-agent service" "$SERVICE_USER"
        say "created system user $SERVICE_USER"
    fi
}

# bm-agent as installed, with the store and key paths redirected into the staging root
# (the environment wins over the config file, agent/config/settings.py), so that `init` writes the
# final paths into agent.toml but creates the files under $ROOT.
agent_cli() {
    BM_AGENT_STORE_PATH="$ROOT$STORE" BM_AGENT_SECRETS_KEY_FILE="$ROOT$KEY_FILE" \
        "$VENV/bin/python" "$VENV/bin/bm-agent" --config "$ROOT$CONFIG" "$@"
}

backup_before_upgrade() {
    if [ "$DO_BACKUP" = 0 ] || [ ! -f "$VENV/bin/bm-agent" ] || [ ! -f "$ROOT$STORE" ] \
        || [ ! -f "$ROOT$CONFIG" ]; then
        return 0
    fi
    local dest
    dest="$ROOT$STATE_DIR/backups/pre-upgrade-$(date -u +%Y%m%dT%H%M%SZ).db"
    mkdir -p "$(dirname "$dest")"
    chmod 0700 "$(dirname "$dest")"
    say "backing up the store with the installed version first: $dest"
    agent_cli backup "$dest" || die "backup failed; fix it or rerun with --no-backup"
}

pip_index_args() {
    if [ -n "$WHEELHOUSE" ]; then
        echo "--no-index --find-links $WHEELHOUSE"
    elif [ "$OFFLINE" = 1 ]; then
        echo "--no-index"
    fi
}

build_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        local opts=()
        [ "$SYSTEM_SITE" = 1 ] && opts+=(--system-site-packages)
        mkdir -p "$(dirname "$VENV")"
        "$PYTHON" -m venv "${opts[@]}" "$VENV"
        say "created virtual environment $PREFIX"
    fi
    local target=$WHEEL build_dir="" index
    index=$(pip_index_args)
    if [ -z "$target" ]; then
        # Build from a copy: pip would otherwise leave build/ and *.egg-info in the tree.
        build_dir=$(mktemp -d)
        cp -r "$SOURCE_DIR"/pyproject.toml "$SOURCE_DIR"/README.md "$SOURCE_DIR"/agent \
            "$SOURCE_DIR"/baremetal "$SOURCE_DIR"/boot_hooks "$build_dir"/
        find "$build_dir" -name __pycache__ -prune -exec rm -rf {} +
        target=$build_dir
    fi
    local compile=()
    [ -n "$ROOT" ] && compile=(--no-compile)  # compiled below with the final paths
    # shellcheck disable=SC2086  # $index is a list of words
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $index \
        "${compile[@]}" "$target"
    # The version rarely changes between builds: force our own code in (deps untouched).
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $index \
        "${compile[@]}" --force-reinstall --no-deps "$target"
    if [ -n "$build_dir" ]; then rm -rf "$build_dir"; fi
    if [ -n "$ROOT" ]; then relocate_venv; fi
    say "installed $("$VENV/bin/python" -m pip show dbc-baremetal-agent 2>/dev/null \
        | sed -n 's/^Version: /bm-agent /p') into $PREFIX"
}

# In a staging root the venv was made at $ROOT$PREFIX: point its scripts and config at
# $PREFIX, and compile the bytecode with the final paths.
relocate_venv() {
    local file
    for file in "$VENV"/bin/* "$VENV/pyvenv.cfg"; do
        [ -f "$file" ] && [ ! -L "$file" ] || continue
        if grep -Iq "$VENV" "$file" 2>/dev/null; then
            sed -i "s|$VENV|$PREFIX|g" "$file"
        fi
    done
    "$VENV/bin/python" -m compileall -q -j 0 -s "$ROOT" -p / "$VENV"/lib/python3*/site-packages \
        >/dev/null || say "warning: some files of the venv did not compile"
}

make_dirs() {
    install -d -m 0755 "$ROOT$UNIT_DIR" "$ROOT$(dirname "$BIN_LINK")" \
        "$ROOT$PREFIX/share/doc/bm-agent"
    install -d -m 0750 "$ROOT$CONF_DIR" "$ROOT$STATE_DIR"
    if [ "$REAL_SYSTEM" = 1 ]; then
        chown root:"$SERVICE_USER" "$CONF_DIR"
        chown "$SERVICE_USER:$SERVICE_USER" "$STATE_DIR"
    fi
    install -m 0644 "$SOURCE_DIR/docs/operations.md" "$ROOT$PREFIX/share/doc/bm-agent/"
    ln -sfn "$PREFIX/bin/bm-agent" "$ROOT$BIN_LINK"
}

admin_password_file() {
    if [ -n "$ADMIN_PASSWORD_FILE" ]; then
        echo "$ADMIN_PASSWORD_FILE"
        return
    fi
    local file="$ROOT$CONF_DIR/initial-admin-password"
    if [ ! -s "$file" ]; then
        (umask 077 && "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(15))' >"$file")
    fi
    echo "$file"
}

init_config() {
    [ "$DO_INIT" = 1 ] || return 0
    if [ -f "$ROOT$CONFIG" ]; then
        say "keeping $CONFIG"
        return 0
    fi
    local password_file
    password_file=$(admin_password_file)
    agent_cli init --store "$STORE" --key-file "$KEY_FILE" --admin "$ADMIN" \
        --password-file "$password_file" "${INIT_ARGS[@]}"
    if [ -z "$ADMIN_PASSWORD_FILE" ]; then
        say "admin '$ADMIN' password is in $CONF_DIR/initial-admin-password (root only);" \
            "change it with: bm-agent users passwd $ADMIN"
    fi
}

fix_ownership() {
    [ "$REAL_SYSTEM" = 1 ] || return 0
    if [ -f "$CONFIG" ]; then
        chown root:"$SERVICE_USER" "$CONFIG"
        chmod 0640 "$CONFIG"
    fi
    if [ -f "$KEY_FILE" ]; then
        chown "$SERVICE_USER:$SERVICE_USER" "$KEY_FILE"
        chmod 0600 "$KEY_FILE"
    fi
    chown -R "$SERVICE_USER:$SERVICE_USER" "$STATE_DIR"
}

upgrade_check() {
    if [ ! -f "$ROOT$CONFIG" ] || [ ! -f "$ROOT$STORE" ]; then
        return 0
    fi
    agent_cli upgrade-check || die "the store cannot be used by this version (see above);" \
        "the service was not restarted"
}

install_unit() {
    local unit="$ROOT$UNIT_DIR/bm-agent.service"
    sed -e "s|/opt/bm-agent|$PREFIX|g" -e "s|/etc/bm-agent|$CONF_DIR|g" \
        -e "s|/var/lib/bm-agent|$STATE_DIR|g" "$HERE/bm-agent.service" >"$unit.tmp"
    chmod 0644 "$unit.tmp"
    mv "$unit.tmp" "$unit"
    if [ "$REAL_SYSTEM" = 0 ]; then
        return 0
    fi
    if ! command -v systemctl >/dev/null || [ ! -d /run/systemd/system ]; then
        say "systemd is not running here: start the agent with" \
            "runuser -u $SERVICE_USER -- $PREFIX/bin/bm-agent --config $CONFIG serve"
        return 0
    fi
    systemctl daemon-reload
    systemctl enable bm-agent.service >/dev/null
    if [ "$DO_START" = 1 ]; then
        systemctl restart bm-agent.service
        say "bm-agent.service (re)started; logs: journalctl -u bm-agent -f"
    fi
}

check_python
ensure_user
backup_before_upgrade
build_venv
make_dirs
init_config
fix_ownership
upgrade_check
install_unit
say "done"
