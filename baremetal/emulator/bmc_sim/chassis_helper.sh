#!/bin/sh
# Stateful chassis-control helper for ipmi_sim (lan.conf: chassis_control "<this> <statedir>").
# ipmi_sim runs it as "<this> <statedir> get power boot" or "... set power 1 boot pxe ...".
# State lives in files under <statedir> so tests can change it behind a client's back:
#   power     0 or 1
#   boot      none | pxe | default (ipmi_sim's name for the hard-disk selector) | cdrom | bios
#   slow      optional: seconds to sleep before answering (fault knob)
#   controls  append-only log of the set requests received (for tests)
# "get" prints one name:value line per item; "set" prints nothing. Exit 0 = success.
dir=$1
op=$2
shift 2
[ -f "$dir/slow" ] && sleep "$(cat "$dir/slow")"

show() {  # "name:value" from the state file, else the default; builtins only (no fork:
    # ipmi_sim runs this helper for every chassis request, and a fleet shares our CPU)
    value=$2
    [ -f "$dir/$1" ] && read -r value < "$dir/$1"
    printf '%s:%s\n' "$1" "$value"
}

put() {  # atomic write: readers never see a half-written file
    printf '%s\n' "$2" > "$dir/.$1.$$" && mv -f "$dir/.$1.$$" "$dir/$1"
}

case $op in
get)
    for name in "$@"; do
        case $name in
        power) show power 0 ;;
        boot) show boot none ;;
        *) echo "unknown item $name"; exit 1 ;;
        esac
    done
    ;;
set)
    while [ $# -ge 2 ]; do
        name=$1
        value=$2
        shift 2
        echo "$name $value" >> "$dir/controls"
        case $name in
        power) put power "$value" ;;
        boot) put boot "$value" ;;
        shutdown) put power 0 ;;   # soft off: the OS "shuts down" at once
        reset|identify) ;;         # reset keeps power as it is
        *) echo "unknown item $name"; exit 1 ;;
        esac
    done
    ;;
*)
    echo "usage: $0 <statedir> get|set ..."
    exit 1
    ;;
esac
exit 0
