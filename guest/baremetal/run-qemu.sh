#!/usr/bin/env bash
# Runs every bare-metal test program on QEMU, the reference they are held to.
# Usage: guest/baremetal/run-qemu.sh [build directory]   (default: build.sh's output)
# Prints one line per program and exits non-zero if any of them fails.
# QEMU's exit status is the test device's verdict: 0 = pass, N = test case N failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR=${1:-$("$HERE/build.sh" | tail -n1)}
CPU=rv64,h=false,sstc=false,zba=false,zbb=false,zbc=false,zbs=false,Zihintpause=false

failed=0
while read -r elf harts; do
  log=$(mktemp)
  set +e
  timeout 30 qemu-system-riscv64 -M virt -cpu "$CPU" -m 128M -smp "$harts" \
    -nographic -bios "$DIR/$elf" </dev/null >"$log" 2>&1
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then
    echo "PASS  $elf"
  else
    echo "FAIL  $elf (exit $rc)"
    sed 's/^/      /' "$log"
    failed=$((failed + 1))
  fi
  rm -f "$log"
done <"$DIR/manifest.txt"
echo "$failed failed"
[ "$failed" -eq 0 ]
