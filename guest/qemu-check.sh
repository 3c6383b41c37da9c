#!/usr/bin/env bash
# Boots the guest images under QEMU (the reference HostVM must match) and
# checks the console markers: 1 hart, 4 harts, and the CPU benchmark.
# Each boot must power off by itself within 120 s.
#
# Usage: guest/qemu-check.sh [CURRENT-DIR]   (default: runs guest/build.sh)
# Console logs: ${HOSTVM_CACHE:-$HOME/.cache/hostvm}/guest/logs/qemu-*.log,
# each line prefixed with the seconds since QEMU started.
set -euo pipefail

GUEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GUEST_CACHE=${HOSTVM_CACHE:-$HOME/.cache/hostvm}/guest
# shellcheck source=lib/common.sh
. "$GUEST_DIR/lib/common.sh"

CURRENT=${1:-$("$GUEST_DIR/build.sh" | tail -n1)}
mkdir -p "$GUEST_CACHE/logs"
ensure_packages qemu-system-misc

# The CPU HostVM emulates: RV64GC without the extensions QEMU 7.2 adds by
# default (hypervisor, Sstc, bit manipulation, Zihintpause).
QEMU_CPU=rv64,h=false,sstc=false,zba=false,zbb=false,zbc=false,zbs=false,Zihintpause=false

FAILED=0

seconds_since() { # seconds_since START-MICROSECONDS -> "12.345"
    local us=$((${EPOCHREALTIME/./} - $1))
    printf '%d.%03d' $((us / 1000000)) $((us % 1000000 / 1000))
}

# boot NAME SMP INITRD: runs QEMU, writes a timestamped console log.
boot() {
    local name=$1 smp=$2 initrd=$3 log=$GUEST_CACHE/logs/qemu-$1.log rc=0 us line
    local start=${EPOCHREALTIME/./}
    timeout 120 qemu-system-riscv64 -M virt -cpu "$QEMU_CPU" -m 256M -smp "$smp" \
        -nographic -bios "$CURRENT/fw_jump.bin" -kernel "$CURRENT/Image" \
        -initrd "$initrd" -append "console=ttyS0 earlycon" </dev/null 2>&1 |
        while IFS= read -r line; do
            # builtins only: a fork per line would make the stamps lag
            us=$((${EPOCHREALTIME/./} - start))
            printf '%4d.%03d %s\n' $((us / 1000000)) $((us % 1000000 / 1000)) "${line%$'\r'}"
        done >"$log" || rc=$?
    LAST_RC=$rc
    LAST_TIME=$(seconds_since "$start")
    LAST_LOG=$log
}

# at MARKER-REGEX: seconds at which the first console line matching it came.
at() { grep -m1 -E "^ *[0-9.]+ $1" "$LAST_LOG" | awk '{print $1}'; }

expect() { # expect DESCRIPTION MARKER-REGEX
    if grep -qE "^ *[0-9.]+ $2" "$LAST_LOG"; then
        printf '  ok    %s (at %ss)\n' "$1" "$(at "$2")" >&2
    else
        printf '  FAIL  %s: no line matching /%s/ in %s\n' "$1" "$2" "$LAST_LOG" >&2
        FAILED=1
    fi
}

expect_poweroff() {
    if [ "$LAST_RC" -eq 0 ]; then
        printf '  ok    powered off by itself after %ss\n' "$LAST_TIME" >&2
    else
        printf '  FAIL  QEMU exit status %s (124 = still running after 120 s); log %s\n' "$LAST_RC" "$LAST_LOG" >&2
        FAILED=1
    fi
}

WORKLOAD_MD5=$(cat "$GUEST_DIR/workload-expected-md5.txt")
BENCH_SUM=$(cat "$GUEST_DIR/bench/expected-checksum.txt")

for smp in 1 4; do
    progress "qemu: initramfs, -smp $smp"
    boot "smp$smp" "$smp" "$CURRENT/initramfs.cpio.gz"
    expect "HOSTVM-GUEST-READY" 'HOSTVM-GUEST-READY$'
    expect "HOSTVM-CPUS: $smp" "HOSTVM-CPUS: $smp\$"
    expect "workload md5 $WORKLOAD_MD5" "HOSTVM-WORKLOAD-OK $WORKLOAD_MD5\$"
    expect_poweroff
done

progress "qemu: bench-initramfs, -smp 1"
boot bench 1 "$CURRENT/bench-initramfs.cpio.gz"
expect "HOSTVM-GUEST-READY" 'HOSTVM-GUEST-READY$'
expect "bench checksum $BENCH_SUM" "HOSTVM-BENCH checksum=$BENCH_SUM\$"
expect_poweroff
if [ "$FAILED" -eq 0 ]; then
    ready=$(at 'HOSTVM-GUEST-READY$')
    done_at=$(at 'HOSTVM-BENCH checksum=')
    printf '  bench: %ss from HOSTVM-GUEST-READY to the checksum; guest clock: %s\n' \
        "$(awk -v a="$ready" -v b="$done_at" 'BEGIN { printf "%.3f", b - a }')" "$(grep -m1 -o 'HOSTVM-BENCH-TIME .*' "$LAST_LOG")" >&2
fi

if [ "$FAILED" -ne 0 ]; then
    die "QEMU check failed (logs in $GUEST_CACHE/logs/qemu-*.log)"
fi
progress "qemu: all checks passed"
