#!/usr/bin/env bash
# Installs the Debian packages HostVM's scripts need, only those that are missing.
# Needs root (or sudo) the first time; a machine that has them all is left alone.
set -euo pipefail

packages=(
  gcc-riscv64-linux-gnu gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf
  linux-source-6.1 opensbi qemu-system-misc device-tree-compiler
  build-essential flex bison bc libssl-dev libelf-dev cpio xz-utils dpkg-dev file e2fsprogs curl socat jq wrk
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >&2
fi

if ! command -v dotnet >/dev/null 2>&1; then
  echo "deps: the .NET 10 SDK is not installed; install it (package dotnet-sdk-10.0) and run this again." >&2
  exit 1
fi
