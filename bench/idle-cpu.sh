#!/usr/bin/env bash
# Boots the Linux guest to an idle shell prompt under HostVM, then measures how much host CPU the
# VM process uses over a quiet window (per thread and in total): an idle guest should cost ~0%.
#
#   bench/idle-cpu.sh [seconds=10] [hostvm run options...]
set -euo pipefail
cd "$(dirname "$0")/.."
window=${1:-10}
shift || true
scripts/deps.sh
guest=$(guest/build.sh | tail -n 1)
dotnet build -c Release src/HostVM.Cli -nologo -v quiet >/dev/null
log=$(mktemp)
fifo=$(mktemp -u)
mkfifo "$fifo"
trap 'rm -f "$log" "$fifo"; kill $pid 2>/dev/null || true' EXIT
dotnet src/HostVM.Cli/bin/Release/net10.0/hostvm.dll run --kernel "$guest/Image" --initrd "$guest/initramfs.cpio.gz" \
  --append "console=ttyS0 hostvm.shell=1" --timeout $((window + 120)) "$@" <"$fifo" >"$log" 2>&1 &
pid=$!
exec 3>"$fifo" # keep the console's stdin open
for _ in $(seq 1 120); do grep -q "starting a shell" "$log" && break; sleep 1; done
grep -q "starting a shell" "$log" || { echo "idle: the guest did not reach its shell" >&2; cat "$log" >&2; exit 1; }
sleep 3 # let the boot's last work settle
ticks=$(getconf CLK_TCK)
snapshot() { for t in /proc/$pid/task/*; do echo "$(basename "$t") $(tr ' ' _ <"$t/comm") $(awk '{print $14+$15}' "$t/stat")"; done | sort; }
before=$(snapshot); total_before=$(awk '{print $14+$15}' /proc/$pid/stat)
sleep "$window"
after=$(snapshot); total_after=$(awk '{print $14+$15}' /proc/$pid/stat)
echo "idle guest, ${window} s window: host CPU used by the VM process, per thread (% of one core):"
join <(echo "$before") <(echo "$after") | awk -v t="$ticks" -v w="$window" '$5>$3 {printf "  %-20s %5.2f%%\n", $2, ($5-$3)/t/w*100}'
echo "$total_before $total_after" | awk -v t="$ticks" -v w="$window" '{printf "  total                %5.2f%%\n", ($2-$1)/t/w*100}'
