#!/usr/bin/env bash
# Installs the Debian packages HostVM's scripts and tests need, only those that are missing.
# Needs root (or sudo) the first time; a machine that has them all is left alone.
set -euo pipefail
SETUP_STEP=deps
# shellcheck source=lib/on-error.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/on-error.sh"

fail() {
  echo "deps: ERROR: $*" >&2
  exit 1
}

command -v dotnet >/dev/null 2>&1 ||
  fail "the .NET 10 SDK is not installed: install it (Debian package dotnet-sdk-10.0, from Microsoft's repository) and run this again"

# What each package is for; guest/build.sh and guest/baremetal/build.sh check their own again.
packages=(
  # guest images: cross compilers, the kernel's source and build tools, firmware, disk images
  gcc-riscv64-linux-gnu gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf
  linux-source-6.1 opensbi device-tree-compiler
  # the Debian 13 image (guest/debian/build.sh): debootstrap, qemu-user-static (its second stage
  # runs riscv64 programs through binfmt_misc), fdisk (sfdisk partitions the disk image), and
  # u-boot-qemu (U-Boot qemu-riscv64_smode, which boots the image from its own disk)
  debootstrap qemu-user-static fdisk u-boot-qemu
  build-essential flex bison bc libssl-dev libelf-dev cpio xz-utils dpkg-dev file e2fsprogs
  # hostvm-vmm is compiled ahead of time (NativeAOT), which links with clang and needs zlib's headers
  clang zlib1g-dev
  # the QEMU that benchmarks compare with, and its image tools (qemu-img, qemu-io: the storage
  # tests' independent peer for qcow2; only recommended by qemu-system-misc, so named here)
  qemu-system-misc qemu-utils
  # the NBD tests' peers besides qemu-nbd (qemu-utils) and qemu-storage-daemon (with qemu-system-misc):
  # nbdkit (a second server, with filters that inject errors and delays) and libnbd-bin (nbdinfo,
  # which reads what HostVM's NBD server serves)
  nbdkit libnbd-bin
  # tools the tests and benchmarks run: debugfs (e2fsprogs, above), ip (TAP test), python3
  # (the switch's cross-process peer, the test summary), openssl (certificate checks), curl,
  # socat, jq and wrk (API and console benchmarks), script (a terminal for hostvm run), git
  # (the guest images' versions.txt), flock and setpriv (util-linux)
  iproute2 python3 openssl ca-certificates curl socat jq wrk bsdutils util-linux git
  # the VMM jail: unshare (util-linux; the VMM does its mounts itself), umount (mount; the
  # network-namespace test's clean-up), and libseccomp for the VMM's system-call allowlist
  mount libseccomp2
  # the cloud-init seed's ISO 9660 writer is held against isoinfo (genisoimage) and bsdtar (libarchive-tools)
  genisoimage libarchive-tools
  # the Debian test logs in to its guest over SSH (ssh, ssh-keygen)
  openssh-client
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 ||
      fail "these Debian packages are missing and installing them needs root: run this as root once, or install sudo (missing: ${missing[*]})"
    sudo_cmd=(sudo)
  fi
  log=${HOSTVM_CACHE:-$HOME/.cache/hostvm}/logs/deps-apt.log
  mkdir -p "$(dirname "$log")"
  # apt's own output goes to the log; on failure its last lines are shown.
  apt_logged() {
    if ! "$@" >>"$log" 2>&1; then
      tail -n 20 "$log" | sed 's/^/    /' >&2
      return 1
    fi
  }
  apt_logged "${sudo_cmd[@]}" apt-get update ||
    fail "apt-get update failed (above; full log $log): check the entries in /etc/apt/sources.list.d and the network, then run this again"
  apt_logged "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" ||
    fail "apt-get install failed (above; full log $log) for: ${missing[*]}"
  echo "deps: installed (log: $log)" >&2
fi
