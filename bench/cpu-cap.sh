#!/usr/bin/env bash
# Boots the CPU-benchmark guest (busy from the first instruction) under `hostvm run --cpu-cap` for
# each cap, and measures over a window how much host CPU its hart thread gets, from the host
# kernel's own accounting (/proc/PID/task/TID/schedstat: time on a CPU, time runnable but waiting
# for one). Prints cap vs measured, in % of one host core.
#
#   bench/cpu-cap.sh [seconds=5] [caps="10 25 50 100"]
set -euo pipefail
cd "$(dirname "$0")/.."
window=${1:-5}
caps=${2:-10 25 50 100}
warmup=2
scripts/deps.sh
guest=$(guest/build.sh | tail -n 1)
dotnet build -c Release src/HostVM.Cli -nologo -v quiet >/dev/null
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null || true' EXIT
hart_schedstat() { # pid -> "on_cpu_ns waiting_ns" of its hart0 thread
  for t in /proc/$1/task/*; do
    [ "$(cat "$t/comm" 2>/dev/null)" = hart0 ] && { awk '{print $1, $2}' "$t/schedstat"; return; }
  done
  echo "cpu-cap: no hart0 thread in process $1" >&2; exit 1
}
echo "busy guest (bench-initramfs), 1 hart, ${window} s window after ${warmup} s; % of one host core"
printf '  %-8s %10s %10s %10s\n' cap measured waiting "cap-meas"
for cap in $caps; do
  dotnet src/HostVM.Cli/bin/Release/net10.0/hostvm.dll run --firmware "$guest/fw_jump.bin" --kernel "$guest/Image" \
    --initrd "$guest/bench-initramfs.cpio.gz" --append console=ttyS0 --cpu-cap "$cap" --timeout $((window + warmup + 30)) \
    </dev/null >/dev/null 2>&1 &
  pid=$!
  sleep $warmup
  read -r cpu0 wait0 < <(hart_schedstat $pid); t0=$(date +%s%N)
  sleep "$window"
  read -r cpu1 wait1 < <(hart_schedstat $pid); t1=$(date +%s%N)
  kill $pid; wait $pid 2>/dev/null || true; pid=
  awk -v c="$cap" -v a="$cpu0" -v b="$cpu1" -v wa="$wait0" -v wb="$wait1" -v t0="$t0" -v t1="$t1" \
    'BEGIN { m = (b - a) / (t1 - t0) * 100; printf "  %-8s %9.1f%% %9.1f%% %+9.1f\n", c "%", m, (wb - wa) / (t1 - t0) * 100, c - m }'
done
