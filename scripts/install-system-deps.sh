#!/usr/bin/env bash
# Install the Debian packages the tests and the demo need, if any is missing.
# ipmi_sim (openipmi) and ipmitool are the real IPMI peers, chromium drives the
# dashboard tests, systemd provides systemd-analyze for the unit-file check,
# promtool checks the /metrics exposition and the alert rules.
set -euo pipefail
need=()
nice_to_have=()
command -v ipmi_sim >/dev/null 2>&1 || need+=(openipmi)
command -v ipmitool >/dev/null 2>&1 || need+=(ipmitool)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v ss >/dev/null 2>&1 || need+=(iproute2)
want_promtool=0
command -v promtool >/dev/null 2>&1 || want_promtool=1
# Optional: a CJK font, so Chinese text renders in the dashboard screenshots.
dpkg-query -W -f='${Status}' fonts-noto-cjk 2>/dev/null | grep -q "ok installed" \
    || nice_to_have=(fonts-noto-cjk)
if [ "$(id -u)" -ne 0 ]; then
    if [ ${#need[@]} -gt 0 ]; then
        echo "missing Debian packages: ${need[*]} (as root: apt-get install ${need[*]})" >&2
        exit 1
    fi
    [ "$want_promtool" -eq 0 ] || echo "promtool missing: the promtool check is skipped" >&2
    exit 0
fi
need+=("${nice_to_have[@]}")
if [ ${#need[@]} -eq 0 ] && [ "$want_promtool" -eq 0 ]; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ ${#need[@]} -gt 0 ]; then
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# promtool alone, taken out of Debian's prometheus package: no package ships it by
# itself, and installing that one brings a Prometheus server whose init.d script and
# systemd unit start it (on a machine without a policy-rc.d that forbids it).
if [ "$want_promtool" -eq 1 ]; then
    tmp=$(mktemp -d) && chmod 755 "$tmp"  # readable by apt's _apt user
    (cd "$tmp" && apt-get download -qq prometheus >/dev/null)
    dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp" ./usr/bin/promtool
    install -m 0755 "$tmp/usr/bin/promtool" /usr/local/bin/promtool
    rm -rf "$tmp"
fi
