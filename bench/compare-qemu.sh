#!/usr/bin/env bash
# Boots the same kernel and initramfs under `hostvm run` and under QEMU (TCG, plain RV64GC, the
# same OpenSBI), alternating, and prints min/median/max wall time of each and the ratio of the
# medians. Two workloads: boot to poweroff (initramfs.cpio.gz) and the CPU benchmark
# (bench-initramfs.cpio.gz). Also prints the guest instructions per second HostVM reached.
#
#   bench/compare-qemu.sh [runs=5]
#
# A benchmark, not a test: it prints figures; absolute times on a shared machine are noise,
# the ratio is the figure to watch.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
scripts/deps.sh
guest=$(guest/build.sh | tail -n 1)
dotnet build -c Release src/HostVM.Cli -nologo -v quiet >/dev/null
hostvm=(dotnet src/HostVM.Cli/bin/Release/net10.0/hostvm.dll)
qemu_cpu="rv64,h=false,sstc=false,zba=false,zbb=false,zbc=false,zbs=false,Zihintpause=false"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

run_hostvm() { # initramfs, log
  "${hostvm[@]}" run --firmware "$guest/fw_jump.bin" --kernel "$guest/Image" --initrd "$guest/$1" \
    --append "console=ttyS0" --memory 256M --timeout 600 --stats </dev/null >"$2" 2>"$2.err"
}
run_qemu() { # initramfs, log
  timeout 600 qemu-system-riscv64 -M virt -cpu "$qemu_cpu" -m 256M -smp 1 -nographic \
    -bios "$guest/fw_jump.bin" -kernel "$guest/Image" -initrd "$guest/$1" \
    -append "console=ttyS0" </dev/null >"$2" 2>&1
}
timed() { # name, command...
  local start end
  start=$(date +%s.%N)
  "${@:2}" || { echo "bench: $1 failed (see $out)" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$end - $start" | bc >>"$out/$1.times"
}

for workload in boot:initramfs.cpio.gz cpubench:bench-initramfs.cpio.gz; do
  name=${workload%%:*}; initrd=${workload#*:}
  for i in $(seq 1 "$runs"); do
    timed "$name-hostvm" run_hostvm "$initrd" "$out/$name-hostvm.$i.log"
    grep -q "HOSTVM-GUEST-READY" "$out/$name-hostvm.$i.log" || { echo "bench: HostVM run $i of $name did not reach the guest" >&2; exit 1; }
    grep -h "MIPS" "$out/$name-hostvm.$i.log.err" | sed 's/.*; //' >>"$out/$name-hostvm.mips"
    timed "$name-qemu" run_qemu "$initrd" "$out/$name-qemu.$i.log"
    grep -q "HOSTVM-GUEST-READY" "$out/$name-qemu.$i.log" || { echo "bench: QEMU run $i of $name did not reach the guest" >&2; exit 1; }
  done
  if [ "$name" = cpubench ]; then
    grep -h "HOSTVM-BENCH checksum" "$out/$name-hostvm.1.log" "$out/$name-qemu.1.log" | tr -d '\r' | sort -u | sed 's/^/bench: /'
  fi
done

python3 - "$out" "$runs" <<'PY'
import sys, statistics, re, os
out, runs = sys.argv[1], sys.argv[2]
def times(n): return [float(l) for l in open(os.path.join(out, n + ".times"))]
print(f"{'workload':10} {'engine':7} {'min s':>8} {'median s':>9} {'max s':>8}   ({runs} runs each, alternating)")
for w in ("boot", "cpubench"):
    med = {}
    for e in ("hostvm", "qemu"):
        t = times(f"{w}-{e}")
        med[e] = statistics.median(t)
        print(f"{w:10} {e:7} {min(t):8.2f} {med[e]:9.2f} {max(t):8.2f}")
    print(f"{w:10} ratio   HostVM/QEMU median = {med['hostvm'] / med['qemu']:.2f}x")
    mips = [float(re.search(r'([\d.]+) MIPS', l).group(1)) for l in open(os.path.join(out, f"{w}-hostvm.mips")) if 'MIPS' in l]
    if mips:
        print(f"{w:10} HostVM guest instructions per second: median {statistics.median(mips):.1f} M/s")
PY
