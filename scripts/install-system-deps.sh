#!/usr/bin/env bash
# Install the Debian packages the tests and the demo need, if any is missing.
# ipmi_sim (openipmi) and ipmitool are the real IPMI peers, chromium drives the
# dashboard tests, systemd provides systemd-analyze for the unit-file check.
set -euo pipefail
need=()
nice_to_have=()
command -v ipmi_sim >/dev/null 2>&1 || need+=(openipmi)
command -v ipmitool >/dev/null 2>&1 || need+=(ipmitool)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v ss >/dev/null 2>&1 || need+=(iproute2)
# Optional: a CJK font, so Chinese text renders in the dashboard screenshots.
dpkg-query -W -f='${Status}' fonts-noto-cjk 2>/dev/null | grep -q "ok installed" \
    || nice_to_have=(fonts-noto-cjk)
if [ "$(id -u)" -ne 0 ]; then
    if [ ${#need[@]} -gt 0 ]; then
        echo "missing Debian packages: ${need[*]} (as root: apt-get install ${need[*]})" >&2
        exit 1
    fi
    exit 0
fi
need+=("${nice_to_have[@]}")
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
