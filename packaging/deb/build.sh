#!/usr/bin/env bash
# Build dist/bm-agent_<version>_<arch>.deb from this tree (docs/operations.md §1).
#
#   packaging/deb/build.sh [--out DIR] [--python PYTHON] [install.sh options...]
#
# The package carries the whole virtual environment /opt/bm-agent, built by install.sh
# --root with PYTHON (default /usr/bin/python3): build on the Debian/Ubuntu release you
# install on, since the venv links to that interpreter. Dependencies come from PyPI, or
# offline from --wheelhouse DIR. The maintainer scripts create the bm-agent user, the
# config, key and store (postinst), back the store up before an upgrade (preinst), stop
# the service on removal (prerm) and remove data only on purge (postrm).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE_DIR=$(cd "$HERE/../.." && pwd)
OUT="$SOURCE_DIR/dist"
PYTHON=/usr/bin/python3
PASS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=${2:?}; shift 2 ;;
        --python) PYTHON=${2:?}; shift 2 ;;
        *) PASS+=("$1"); shift ;;
    esac
done
command -v dpkg-deb >/dev/null || { echo "build.sh: dpkg-deb is missing" >&2; exit 1; }

VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$SOURCE_DIR/pyproject.toml" | head -n 1)
ARCH=$(dpkg --print-architecture)
PYVER=$("$PYTHON" -c 'import sys; print("python%d.%d" % sys.version_info[:2])')
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT

# Debian policy: units in /usr/lib/systemd/system, commands in /usr/bin (not /usr/local).
UNIT_DIR=/usr/lib/systemd/system BIN_LINK=/usr/bin/bm-agent \
    bash "$HERE/../install.sh" --root "$STAGE" --no-init --python "$PYTHON" "${PASS[@]}"
rm -rf "$STAGE/etc/bm-agent" "$STAGE/var/lib/bm-agent"  # postinst makes them, owned right

install -d -m 0755 "$STAGE/DEBIAN"
SIZE=$(du -sk "$STAGE" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@PYTHON@/$PYVER/" \
    -e "s/@SIZE@/$SIZE/" "$HERE/control.in" >"$STAGE/DEBIAN/control"
for script in preinst postinst prerm postrm; do
    install -m 0755 "$HERE/$script" "$STAGE/DEBIAN/$script"
done
mkdir -p "$OUT"
DEB="$OUT/bm-agent_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group --build "$STAGE" "$DEB" >/dev/null
echo "build.sh: $DEB"
