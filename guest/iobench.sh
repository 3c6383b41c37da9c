#!/bin/sh
# Disk and network throughput as the guest sees it, run by /init when the
# kernel command line has hostvm.mode=iobench (guest/iobench.sh in the
# repository; bench/compare-io.sh is the host side). Parameters, all
# optional, on the kernel command line:
#
#   hostvm.diskmb=N     MiB written then read on /dev/vda with dd bs=1M,
#                       O_DIRECT (default 64; 0 = no disk test); then 4 KiB
#                       random writes and reads (randio, O_DIRECT) within them
#   hostvm.randops=N    requests of each random test (default 2000; 0 = none)
#   hostvm.netport=P    TCP port on the host to send to (no port = no net test)
#   hostvm.nethost=A    the host's address (default 10.0.2.2, user networking)
#   hostvm.netmb=N      MiB sent (default 32)
#
# Markers (one line each, times in milliseconds of the guest's monotonic
# clock as dd measures it, or /proc/uptime for the network send):
#   HOSTVM-IOBENCH-START
#   HOSTVM-DISK-WRITE <bytes> <ms> <direct|fsync>
#   HOSTVM-DISK-READ <bytes> <ms> <direct|dropcaches>
#   HOSTVM-DISK-RANDWRITE <requests> <ms>   HOSTVM-DISK-RANDREAD <requests> <ms>
#   HOSTVM-DISK-SKIPPED <why>      HOSTVM-DISK-FAILED <why>
#   HOSTVM-NET-UP <address/prefix>
#   HOSTVM-NET-SEND <bytes> <ms>
#   HOSTVM-NET-REPLY <what the host's listener answered>
#   HOSTVM-NET-SKIPPED <why>       HOSTVM-NET-FAILED <why>
#   HOSTVM-IOBENCH-DONE

cmdline_value() { # KEY [DEFAULT]
    for word in $(cat /proc/cmdline); do
        case $word in "$1="*) echo "${word#*=}" && return 0 ;; esac
    done
    echo "${2:-}"
}

# dd_result LOG: "<bytes> <ms>" from busybox dd's last status line,
# "67108864 bytes (64.0MB) copied, 1.234567 seconds, 51.8MB/s".
dd_result() {
    awk '/ copied, / { for (i = 2; i <= NF; i++) if ($i ~ /^second/) { printf "%d %d\n", $1, $(i - 1) * 1000 + 0.5; exit } }' "$1"
}

uptime_ms() { awk '{ printf "%d\n", $1 * 1000 + 0.5 }' /proc/uptime; }

disk_bench() {
    local mb dev=/dev/vda r ops what
    mb=$(cmdline_value hostvm.diskmb 64)
    [ "$mb" -gt 0 ] 2>/dev/null || { echo "HOSTVM-DISK-SKIPPED hostvm.diskmb=$mb"; return 0; }
    [ -b $dev ] || { echo "HOSTVM-DISK-SKIPPED no $dev"; return 0; }
    if dd if=/dev/zero of=$dev bs=1M count="$mb" oflag=direct 2>/tmp/dd-write.log; then
        echo "HOSTVM-DISK-WRITE $(dd_result /tmp/dd-write.log) direct"
    elif dd if=/dev/zero of=$dev bs=1M count="$mb" conv=fsync 2>/tmp/dd-write.log; then
        echo "HOSTVM-DISK-WRITE $(dd_result /tmp/dd-write.log) fsync"
    else
        echo "HOSTVM-DISK-FAILED write: $(tail -n 1 /tmp/dd-write.log)"
        return 0
    fi
    if dd if=$dev of=/dev/null bs=1M count="$mb" iflag=direct 2>/tmp/dd-read.log; then
        echo "HOSTVM-DISK-READ $(dd_result /tmp/dd-read.log) direct"
    else
        sync
        echo 3 >/proc/sys/vm/drop_caches
        if dd if=$dev of=/dev/null bs=1M count="$mb" 2>/tmp/dd-read.log; then
            echo "HOSTVM-DISK-READ $(dd_result /tmp/dd-read.log) dropcaches"
        else
            echo "HOSTVM-DISK-FAILED read: $(tail -n 1 /tmp/dd-read.log)"
        fi
    fi
    ops=$(cmdline_value hostvm.randops 2000)
    [ "$ops" -gt 0 ] 2>/dev/null || return 0
    for what in write read; do
        if r=$(randio $dev $what "$ops" "$mb" 2>/tmp/randio.err); then
            echo "HOSTVM-DISK-RAND$(echo $what | tr a-z A-Z) $r"
        else
            echo "HOSTVM-DISK-FAILED random $what: $(tail -n 1 /tmp/randio.err)"
        fi
    done
}

net_bench() {
    local port host mb addr t0 t1 r err
    port=$(cmdline_value hostvm.netport)
    host=$(cmdline_value hostvm.nethost 10.0.2.2)
    mb=$(cmdline_value hostvm.netmb 32)
    [ -n "$port" ] || { echo "HOSTVM-NET-SKIPPED no hostvm.netport"; return 0; }
    [ -e /sys/class/net/eth0 ] || { echo "HOSTVM-NET-FAILED no eth0"; return 0; }
    if ! udhcpc -i eth0 -q -n -t 5 -T 2 >/tmp/udhcpc.log 2>&1; then
        echo "HOSTVM-NET-FAILED udhcpc: $(tail -n 1 /tmp/udhcpc.log)"
        return 0
    fi
    addr=$(ip -4 addr show dev eth0 | awk '/inet / { print $2; exit }')
    echo "HOSTVM-NET-UP $addr"
    t0=$(uptime_ms)
    # nc half-closes the connection when dd's data ends; the listener then
    # answers with what it counted and closes, which ends nc.
    dd if=/dev/zero bs=64k count=$((mb * 16)) 2>/tmp/dd-net.log | nc "$host" "$port" >/tmp/nc.out 2>/tmp/nc.err
    r=$?
    t1=$(uptime_ms)
    if [ $r -ne 0 ]; then
        # busybox nc (1.10 style) says nothing on a refused connection
        err=$(tail -n 1 /tmp/nc.err)
        echo "HOSTVM-NET-FAILED nc $host $port exit $r${err:+: $err}"
        return 0
    fi
    echo "HOSTVM-NET-SEND $(dd_result /tmp/dd-net.log | cut -d' ' -f1) $((t1 - t0))"
    echo "HOSTVM-NET-REPLY $(head -n 1 /tmp/nc.out)"
}

echo HOSTVM-IOBENCH-START
disk_bench
net_bench
echo HOSTVM-IOBENCH-DONE
