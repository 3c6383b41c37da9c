#!/usr/bin/env bash
# The VMM process alone (issue: a small VMM), `hostvm vmm` (JIT) beside `hostvm-vmm` (NativeAOT):
#   1. process start to control-API ready: median of N (default 20) wall-clock ms, and the CPU time
#      the VMM itself used until then (its threads' schedstat), which a loaded machine does not inflate
#   2. host memory beside a booted, idle 1 vCPU / 128 MiB guest: RSS minus the guest RAM it touched
#      (as bench/host.sh counts it), and the anonymous part of it (heap, stacks, relocated data): what
#      each further VMM adds, since the executable's and libraries' file pages are shared
#   3. the host CPU that idle VMM uses over S seconds (default 30), utime + stime
# Usage: bench/vmm.sh [N] [S]. Needs the guest images (./test.sh builds them) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
S=${2:-30}
G=${HOSTVM_GUEST_DIR:-$HOME/.cache/hostvm/guest/current}
out=src/HostVM.Cli/bin/Release/net10.0
[ -x "$out/hostvm-vmm" ] || dotnet build -c Release src/HostVM.Cli -nologo -v quiet >&2
work=$(mktemp -d /tmp/hostvm-bench-vmm-XXXXXX)
trap 'pkill -9 -f "$work" 2>/dev/null || true; rm -rf "$work"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
cat >"$work/vm.json" <<JSON
{"boot-source": {"kernel_image_path": "$G/Image", "initrd_path": "$G/initramfs.cpio.gz", "boot_args": "console=ttyS0 quiet hostvm.mode=shell"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 128}, "entropy": {}}
JSON

for tag in jit aot; do
  if [ $tag = jit ]; then name="hostvm vmm"; cmd=("$out/hostvm" vmm); else name=hostvm-vmm; cmd=("$out/hostvm-vmm"); fi
  echo "== $name"
  for i in $(seq "$N"); do
    s="$work/$tag-$i.sock"; t0=$(date +%s%N)
    "${cmd[@]}" --api-sock "$s" >/dev/null 2>&1 & pid=$!
    until curl -sf --unix-socket "$s" http://localhost/ >/dev/null 2>&1; do sleep 0.001; done
    t1=$(date +%s%N)
    cpu=$(cat /proc/$pid/task/*/schedstat | awk '{s+=$1} END{print s}')
    echo "$(( (t1 - t0) / 1000 )) $(( cpu / 1000 ))" >>"$work/$tag-start"
    kill -9 $pid; wait $pid 2>/dev/null || true
  done
  wall=$(awk '{print $1/1000}' "$work/$tag-start" | median); cpu=$(awk '{print $2/1000}' "$work/$tag-start" | median)
  echo "1. start to API-ready: median ${wall} ms wall, ${cpu} ms of the VMM's CPU (median of $N)"

  "${cmd[@]}" --config-file "$work/vm.json" --api-sock "$work/$tag-vm.sock" --serial-log "$work/$tag-serial.log" 2>"$work/$tag-vmm.log" & pid=$!
  for _ in $(seq 1200); do grep -q HOSTVM-SHELL-READY "$work/$tag-serial.log" 2>/dev/null && break; sleep 0.1; done
  grep -q HOSTVM-SHELL-READY "$work/$tag-serial.log" || { echo "the guest did not reach its shell" >&2; cat "$work/$tag-vmm.log" >&2; exit 1; }
  sleep 5
  # The guest RAM is the one mapping of 128 MiB and a little; everything else resident is the VMM's own.
  read -r total guest anonymous < <(awk '/^Size:/{size=$2; g=(size>=131072 && size<=132096)}
    /^Rss:/{t+=$2; if(g) gr+=$2} /^Anonymous:/{if(!g) a+=$2} END{print t, gr+0, a}' "/proc/$pid/smaps")
  echo "2. idle 128 MiB guest: RSS ${total} kB, guest RAM touched ${guest} kB, overhead $(( (total - guest) / 1024 )) MiB, of which anonymous $(( anonymous / 1024 )) MiB"
  c0=$(awk '{print $14+$15}' "/proc/$pid/stat"); sleep "$S"; c1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  echo "3. idle CPU over ${S} s: $(awk "BEGIN{printf \"%.2f\", ($c1-$c0)/$(getconf CLK_TCK)/$S*100}")% of one core ($(grep Threads "/proc/$pid/status" | awk '{print $2}') threads)"
  kill $pid; wait $pid 2>/dev/null || true
done
