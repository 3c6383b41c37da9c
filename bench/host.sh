#!/usr/bin/env bash
# The host daemon's figures (issue: the host), with QEMU measured in the same run where it has a counterpart:
#   1. VMM process start to API-ready (median of 20 ms)   vs QEMU start to QMP-ready
#   2. API create+start to HOSTVM-GUEST-READY (ms)     vs QEMU launch to the same marker, same kernel
#   3. VMs created and started per second, for N VMs (default 50)
#   4. host memory overhead per idle VM: VMM RSS minus the guest RAM it touched (1 vCPU / 128 MiB)   vs QEMU's
#   5. idle density: how many idle 64 MiB guests run at once (up to MAX, default 200) and the host CPU they use
#      vs the same number of idle QEMU guests' CPU (up to QMAX, default 20, scaled per guest)
# Usage: bench/host.sh [N] [MAX] [QMAX]. Needs the guest images (./test.sh builds them), curl and socat (scripts/deps.sh).
# Run as root, the daemon jails its VMMs (the production set-up); as another user they run unjailed.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-50}
MAX=${2:-200}
QMAX=${3:-20}
G=${HOSTVM_GUEST_DIR:-$HOME/.cache/hostvm/guest/current}
H=src/HostVM.Cli/bin/Release/net10.0/hostvm
[ -x "$H" ] || dotnet build -c Release src/HostVM.Cli -nologo -v quiet >&2
# The VMM the daemon runs: the NativeAOT hostvm-vmm next to hostvm when it is there, else hostvm vmm.
if [ -x "$(dirname "$H")/hostvm-vmm" ]; then VMM=("$(dirname "$H")/hostvm-vmm"); else VMM=("$H" vmm); fi
work=$(mktemp -d /tmp/hostvm-bench-XXXXXX)
# Jailed VMMs name only jail paths on their command lines: they are found by the runtime directory in their environment.
cleanup() {
  pkill -9 -f "$work" 2>/dev/null || true
  for e in /proc/[0-9]*/environ; do grep -qz "^HOSTVM_RUNTIME_DIR=$work/run\$" "$e" 2>/dev/null && kill -9 "$(basename "$(dirname "$e")")" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
now_ms() { date +%s%3N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "== 1. process start to control-API ready (median of 20; bench/ready-probe.py starts each and probes its socket)"
for i in $(seq 20); do
  bench/ready-probe.py http "$work/api-$i.sock" "${VMM[@]}" --api-sock "$work/api-$i.sock" >>"$work/vmm-start"
  bench/ready-probe.py qmp "$work/qmp-$i.sock" qemu-system-riscv64 -machine virt -m 128M -nographic -S \
    -qmp "unix:$work/qmp-$i.sock,server=on,wait=off" -display none -serial none -monitor none >>"$work/qemu-start"
done
vmm=$(median <"$work/vmm-start"); qemu=$(median <"$work/qemu-start")
echo "${VMM[*]##*/}: ${vmm} ms   qemu (QMP): ${qemu} ms   ratio hostvm/qemu: $(awk "BEGIN{printf \"%.2f\", $vmm/$qemu}")   (Firecracker's anchor: ~12 ms)"

echo "== daemon"
mkdir -p "$work/data/import"
cp "$G/Image" "$G/initramfs.cpio.gz" "$work/data/import/"
"$H" serve --data-dir "$work/data" --runtime-dir "$work/run" --listen 127.0.0.1:0 --cpu-overcommit 128 >"$work/serve.out" 2>&1 &
until grep -q 'data in' "$work/serve.out" 2>/dev/null; do sleep 0.05; done
# The owner's Unix socket needs no token (the TCP API does).
api() { curl -sf --unix-socket "$work/run/hostvm.sock" -X "$1" "http://localhost$2" -H 'Content-Type: application/json' ${3:+-d "$3"}; }
api POST /v1/images '{"name":"guest","kernel":"Image","initrd":"initramfs.cpio.gz","boot_args":"console=ttyS0 quiet hostvm.mode=shell"}' >/dev/null
serial() { echo "$work/data/vms/$(api GET "/v1/vms/$1" | jq -r .id)/out/serial.log"; }

echo "== 2. API create+start to HOSTVM-GUEST-READY (median of 3)"
for i in 1 2 3; do
  t0=$(now_ms)
  api POST /v1/vms "{\"name\":\"boot$i\",\"image\":\"guest\",\"memory_mib\":128,\"start\":true}" >/dev/null
  log=$(serial boot$i)
  until grep -q HOSTVM-GUEST-READY "$log" 2>/dev/null; do sleep 0.01; done
  echo $(( $(now_ms) - t0 )) >>"$work/boot"
  api DELETE "/v1/vms/boot$i?force=true&purge=true" >/dev/null
  t0=$(now_ms)
  qemu-system-riscv64 -machine virt -m 128M -nographic -kernel "$G/Image" -initrd "$G/initramfs.cpio.gz" \
    -append "console=ttyS0 quiet hostvm.mode=shell" -bios "$G/fw_jump.bin" >"$work/qemu-boot.log" 2>&1 & qpid=$!
  until grep -q HOSTVM-GUEST-READY "$work/qemu-boot.log"; do sleep 0.01; done
  echo $(( $(now_ms) - t0 )) >>"$work/qemu-boot"; kill -9 $qpid; wait $qpid 2>/dev/null || true
done
b=$(median <"$work/boot"); qb=$(median <"$work/qemu-boot")
echo "hostvm API create+start to READY: ${b} ms   qemu launch to READY: ${qb} ms   ratio: $(awk "BEGIN{printf \"%.2f\", $b/$qb}")"

echo "== 3. $N VMs created and started through the API, one after another"
t0=$(now_ms)
for i in $(seq "$N"); do api POST /v1/vms "{\"name\":\"rate$i\",\"image\":\"guest\",\"memory_mib\":64,\"start\":true}" >/dev/null; done
t=$(( $(now_ms) - t0 ))
echo "$N VMs running (API answered) in ${t} ms: $(awk "BEGIN{printf \"%.2f\", $N*1000/$t}") VMs/s, $(awk "BEGIN{printf \"%.2f\", $N*1000/$t/$(nproc)}") per core (Firecracker's anchor: 5 per core per s)"
for i in $(seq "$N"); do api DELETE "/v1/vms/rate$i?force=true&purge=true" >/dev/null; done
# The same with a kernel that only waits for an interrupt (wfi; j .-4) and no disk to copy: what the host itself
# spends per VM (create, jail, VMM start, API-ready), without N Linux boots taking the cores meanwhile.
printf '\x73\x00\x50\x10\x6f\xf0\xdf\xff' >"$work/data/import/idle"
truncate -s 4096 "$work/data/import/idle"
printf 'RISCV\0\0\0' | dd of="$work/data/import/idle" bs=1 seek=48 conv=notrunc status=none
printf 'RSC\x05' | dd of="$work/data/import/idle" bs=1 seek=56 conv=notrunc status=none
api POST /v1/images '{"name":"wfi","kernel":"idle"}' >/dev/null
t0=$(now_ms)
for i in $(seq "$N"); do api POST /v1/vms "{\"name\":\"wfi$i\",\"image\":\"wfi\",\"memory_mib\":64,\"start\":true}" >/dev/null; done
t=$(( $(now_ms) - t0 ))
echo "$N idle-kernel VMs (no disk) running in ${t} ms: $(awk "BEGIN{printf \"%.2f\", $N*1000/$t}") VMs/s, $(awk "BEGIN{printf \"%.2f\", $N*1000/$t/$(nproc)}") per core"
for i in $(seq "$N"); do api DELETE "/v1/vms/wfi$i?force=true&purge=true" >/dev/null; done

echo "== 4. memory overhead of a 1 vCPU / 128 MiB VM (after boot, idle 25 s: the idle code trimmer's pass)"
api POST /v1/vms '{"name":"mem","image":"guest","memory_mib":128,"start":true}' >/dev/null
log=$(serial mem); until grep -q HOSTVM-SHELL-READY "$log" 2>/dev/null; do sleep 0.1; done; sleep 25
pid=$(api GET /v1/vms/mem | jq .pid)
# The guest RAM is the one mapping of 128 MiB and a little (the GC's huge reservations are not it);
# everything else resident is the VMM's own.
read -r total guest < <(awk '/^Size:/{size=$2} /^Rss:/{t+=$2; if(size>=131072 && size<=132096) g+=$2} END{print t, g+0}' "/proc/$pid/smaps")
echo "VMM RSS ${total} kB, guest RAM touched ${guest} kB, overhead $(( (total-guest)/1024 )) MiB (Firecracker's anchor: <= 5 MiB)"
api DELETE "/v1/vms/mem?force=true&purge=true" >/dev/null
qemu_guest() { # LOG MIB: an idle QEMU guest of the same kernel, its serial output in LOG
  qemu-system-riscv64 -machine virt -m "$2M" -nographic -kernel "$G/Image" -initrd "$G/initramfs.cpio.gz" \
    -append "console=ttyS0 quiet hostvm.mode=shell" -bios "$G/fw_jump.bin" >"$1" 2>&1 </dev/null &
}
qemu_guest "$work/qemu-mem.log" 128; qpid=$!
until grep -q HOSTVM-SHELL-READY "$work/qemu-mem.log"; do sleep 0.1; done; sleep 25
read -r qtotal qguest < <(awk '/^Size:/{size=$2} /^Rss:/{t+=$2; if(size>=131072 && size<=132096) g+=$2} END{print t, g+0}' "/proc/$qpid/smaps")
echo "QEMU RSS ${qtotal} kB, guest RAM touched ${qguest} kB, overhead $(( (qtotal-qguest)/1024 )) MiB   ratio hostvm/qemu: $(awk "BEGIN{printf \"%.2f\", ($total-$guest)/($qtotal-$qguest)}")"
kill -9 $qpid; wait $qpid 2>/dev/null || true

echo "== 5. idle density: 64 MiB guests started until $MAX run (or the host refuses)"
count=0
for i in $(seq "$MAX"); do
  api POST /v1/vms "{\"name\":\"idle$i\",\"image\":\"guest\",\"memory_mib\":64,\"start\":true}" >/dev/null || break
  count=$i
done
for i in $(seq "$count"); do log=$(serial idle$i); until grep -q HOSTVM-SHELL-READY "$log" 2>/dev/null; do sleep 0.2; done; done
sleep 10
pids=$(api GET /v1/vms | jq -r '.[] | select(.state=="running") | .pid')
ticks() { for p in $pids; do awk '{print $14+$15}' "/proc/$p/stat"; done | awk '{s+=$1} END{print s}'; }
rss() { for p in $pids; do awk '/VmRSS/{print $2}' "/proc/$p/status"; done | awk '{s+=$1} END{print int(s/1024)}'; }
c0=$(ticks); sleep 10; c1=$(ticks)
hz=$(getconf CLK_TCK)
echo "$count idle 64 MiB guests running; together they use $(awk "BEGIN{printf \"%.1f\", ($c1-$c0)/$hz/10*100}")% of one host core while idle, $(rss) MiB resident"
for i in $(seq "$count"); do api DELETE "/v1/vms/idle$i?force=true&purge=true" >/dev/null; done
hostvm_pct=$(awk "BEGIN{printf \"%.3f\", ($c1-$c0)/$hz/10*100}")

qpids=()
for i in $(seq "$QMAX"); do qemu_guest "$work/qemu-idle$i.log" 128; qpids+=($!); done # QEMU does not boot this kernel in 64 MiB
for i in $(seq "$QMAX"); do until grep -q HOSTVM-SHELL-READY "$work/qemu-idle$i.log" 2>/dev/null; do sleep 0.2; done; done
sleep 10
pids="${qpids[*]}"
c0=$(ticks); sleep 10; c1=$(ticks)
qemu_pct=$(awk "BEGIN{printf \"%.3f\", ($c1-$c0)/$hz/10*100}")
echo "$QMAX idle 128 MiB QEMU guests use ${qemu_pct}% of one core, $(rss) MiB resident; per idle guest: hostvm $(awk "BEGIN{printf \"%.3f\", $hostvm_pct/$count}")% vs qemu $(awk "BEGIN{printf \"%.3f\", $qemu_pct/$QMAX}")% of a core   ratio: $(awk "BEGIN{q=$qemu_pct/$QMAX; printf \"%.2f\", (q>0)?($hostvm_pct/$count)/q:0}")"
kill -9 "${qpids[@]}" 2>/dev/null || true
