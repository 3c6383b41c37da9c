#!/usr/bin/env bash
# Instant clones (issue: storage): the API time to make a VM from an image whose disk is 1 GiB and 10 GiB, and to clone a
# stopped VM (--clone-of), against QEMU's own way to make an overlay in the same run (qemu-img create -b), and a full copy
# of the disk (what HostVM did before overlays) for scale. Medians of 10, and the total for 50 VMs made one after another
# from the one image (and 50 clones of one VM); times in ms.
# API time is the request's own time as curl reports it (time_total: connect, request, the daemon's work, the answer),
# not the curl process's start, which costs more than the request on this machine. qemu-img's is its process's wall time,
# since making an overlay is all that process does.
# Usage: bench/clone.sh [SIZES...] (default: 1G 10G). Needs the guest images (./test.sh builds them), curl, jq, qemu-img.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1G 10G)
G=${HOSTVM_GUEST_DIR:-$HOME/.cache/hostvm/guest/current}
H=src/HostVM.Cli/bin/Release/net10.0/hostvm
[ -x "$H" ] || dotnet build -c Release src/HostVM.Cli -nologo -v quiet >&2
work=$(mktemp -d /tmp/hostvm-clone-XXXXXX)
cleanup() {
  pkill -f "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
now_ms() { echo "${EPOCHREALTIME/./}" | awk '{printf "%.2f\n", $1 / 1000}'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk "BEGIN{printf \"%.2f\", $1/$2}"; }

mkdir -p "$work/data/import"
"$H" serve --data-dir "$work/data" --runtime-dir "$work/run" --listen 127.0.0.1:0 >"$work/serve.out" 2>&1 &
until grep -q 'data in' "$work/serve.out" 2>/dev/null; do sleep 0.05; done
api() { curl -sf --unix-socket "$work/run/hostvm.sock" -X "$1" "http://localhost$2" -H 'Content-Type: application/json' ${3:+-d "$3"}; }
# One call, and its API time in ms.
api_ms() { curl -sf -o /dev/null -w '%{time_total}\n' --unix-socket "$work/run/hostvm.sock" -X "$1" "http://localhost$2" -H 'Content-Type: application/json' -d "$3" | awk '{printf "%.2f\n", $1 * 1000}'; }
total() { awk '{t += $1} END {printf "%.0f\n", t}'; }
cp "$G/Image" "$G/initramfs.cpio.gz" "$work/data/import/"

printf '%-6s %10s %10s %12s %10s %10s %10s %14s %14s\n' base "vm create" "clone-of" "qemu-img -b" "full copy" "create/qi" "clone/qi" "50 creates" "50 clones"
for size in "${sizes[@]}"; do
  name=base-$(echo "$size" | tr 'A-Z' 'a-z')
  disk="$work/data/import/$name.raw"
  # A sparse disk of the size with 64 MiB of data at its start: what a small distribution's image looks like.
  truncate -s "$size" "$disk"
  dd if=/dev/urandom of="$disk" bs=1M count=64 conv=notrunc status=none
  api POST /v1/images "{\"name\":\"$name\",\"kernel\":\"Image\",\"initrd\":\"initramfs.cpio.gz\",\"disk\":\"$name.raw\"}" >/dev/null
  : >"$work/create" ; : >"$work/clone" ; : >"$work/qemu"
  api POST /v1/vms "{\"name\":\"src-$name\",\"image\":\"$name\"}" >/dev/null
  for i in $(seq 10); do
    api_ms POST /v1/vms "{\"name\":\"c$i-$name\",\"image\":\"$name\"}" >>"$work/create"
    api_ms POST /v1/vms "{\"name\":\"k$i-$name\",\"clone_of\":\"src-$name\"}" >>"$work/clone"
    t0=$(now_ms); qemu-img create -q -f qcow2 -b "$disk" -F raw "$work/overlay-$i.qcow2"; t1=$(now_ms)
    awk "BEGIN{print $t1 - $t0}" >>"$work/qemu"
  done
  for i in $(seq 10); do api DELETE "/v1/vms/c$i-$name?purge=true" >/dev/null; api DELETE "/v1/vms/k$i-$name?purge=true" >/dev/null; done
  # 50 VMs from the one image, then 50 clones of the one VM, each call after the last has answered.
  fifty=$(for i in $(seq 50); do api_ms POST /v1/vms "{\"name\":\"f$i-$name\",\"image\":\"$name\"}"; done | total)
  fifty_clones=$(for i in $(seq 50); do api_ms POST /v1/vms "{\"name\":\"g$i-$name\",\"clone_of\":\"src-$name\"}"; done | total)
  t0=$(now_ms); cp --sparse=always "$disk" "$work/copy.raw"; sync -f "$work/copy.raw"; t1=$(now_ms)
  copy=$(awk "BEGIN{print $t1 - $t0}")
  c=$(median <"$work/create"); k=$(median <"$work/clone"); q=$(median <"$work/qemu")
  printf '%-6s %10s %10s %12s %10s %10s %10s %14s %14s\n' "$size" "$c" "$k" "$q" "$copy" "$(ratio "$c" "$q")" "$(ratio "$k" "$q")" "$fifty" "$fifty_clones"
  for i in $(seq 50); do api DELETE "/v1/vms/f$i-$name?purge=true" >/dev/null; api DELETE "/v1/vms/g$i-$name?purge=true" >/dev/null; done
  api DELETE "/v1/vms/src-$name?purge=true" >/dev/null
  api DELETE "/v1/images/$name" >/dev/null
  rm -f "$disk" "$work/copy.raw" "$work"/overlay-*.qcow2
done
echo "(vm create and clone-of: the API call's own time (HTTP, checks, files, fsyncs, the inventory's commit); qemu-img: its process (the overlay file alone); 50: the sum over 50 calls)"
