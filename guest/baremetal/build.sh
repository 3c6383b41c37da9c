#!/usr/bin/env bash
# Assembles the bare-metal test programs (guest/baremetal/*.S) into ELF files,
# or reuses them from the cache. The last line on stdout is the directory:
#
#   <program>.elf ...   one per source, linked at 0x8000_0000
#   manifest.txt        "<program>.elf <harts>" per line (smp.elf needs 2)
#
# Cache: ${HOSTVM_CACHE:-$HOME/.cache/hostvm}/baremetal/<hash of sources and compiler>/
# Needs riscv64-unknown-elf-gcc (Debian: gcc-riscv64-unknown-elf); installed
# with apt-get only when missing.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SETUP_STEP=baremetal
# shellcheck source=../../scripts/lib/on-error.sh
. "$HERE/../../scripts/lib/on-error.sh"
CC=riscv64-unknown-elf-gcc
CFLAGS=(-march=rv64gc -mabi=lp64d -nostdlib -nostartfiles -T "$HERE/link.ld")

progress() { echo "baremetal: $*" >&2; }

if ! command -v "$CC" >/dev/null 2>&1; then
  progress "$CC not found; installing gcc-riscv64-unknown-elf"
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi
  "${SUDO[@]}" apt-get update >&2
  "${SUDO[@]}" apt-get install -y --no-install-recommends gcc-riscv64-unknown-elf >&2
fi

cd "$HERE"
mapfile -t PROGRAMS < <(ls -1 -- *.S | sed 's/\.S$//' | sort)
KEY=$({
  for f in build.sh link.ld common.h "${PROGRAMS[@]/%/.S}"; do
    echo "== $f"
    cat "$f"
  done
  "$CC" --version | head -n1
  echo "${CFLAGS[*]}"
} | sha256sum | cut -c1-16)
OUT=${HOSTVM_CACHE:-$HOME/.cache/hostvm}/baremetal/$KEY

if [ -f "$OUT/manifest.txt" ]; then
  progress "up to date in $OUT"
  echo "$OUT"
  exit 0
fi

mkdir -p "$(dirname "$OUT")"
TMP=$(mktemp -d "$OUT.tmp.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
for p in "${PROGRAMS[@]}"; do
  progress "assembling $p"
  "$CC" "${CFLAGS[@]}" -o "$TMP/$p.elf" "$p.S"
  harts=1
  if grep -q '^#define HAS_SECONDARY' "$p.S"; then harts=2; fi
  echo "$p.elf $harts" >>"$TMP/manifest.txt"
done
rm -rf "$OUT"
mv "$TMP" "$OUT"
trap - EXIT
progress "built ${#PROGRAMS[@]} programs in $OUT"
echo "$OUT"
