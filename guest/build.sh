#!/usr/bin/env bash
# Builds the HostVM guest images from Debian packages, or reuses them from
# the cache. Prints one progress line per step on stderr; the last line on
# stdout is the path of the `current` directory:
#
#   Image  initramfs.cpio.gz  bench-initramfs.cpio.gz
#   fw_jump.bin  fw_dynamic.bin  disk.ext4  versions.txt
#
# Usage: guest/build.sh [--force[=kernel,busybox,initramfs,bench,opensbi,disk]] [--prune]
#   --force      rebuild every component even if its cache entry exists
#   --force=LIST rebuild only the listed components
#   --prune      afterwards, delete cached components `current` does not use
#                (other checkouts sharing the cache may still want them)
# Cache: ${HOSTVM_CACHE:-$HOME/.cache/hostvm}/guest (see guest/README.md).
set -euo pipefail

# bash reads a script while running it; the body is one { } group so that
# editing this file during a long build cannot change what the build runs.
{
SOURCE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SETUP_STEP=guest
# shellcheck source=../scripts/lib/on-error.sh
. "$SOURCE_DIR/../scripts/lib/on-error.sh"
GUEST_CACHE=${HOSTVM_CACHE:-$HOME/.cache/hostvm}/guest
COMPONENTS=(kernel busybox initramfs bench opensbi disk)

# Keys and builds read a snapshot of guest/, so editing a file while the
# kernel compiles cannot store a result under a key it does not match.
mkdir -p "$GUEST_CACHE/logs"
GUEST_DIR=$(mktemp -d "$GUEST_CACHE/.inputs.XXXXXX")
trap 'rm -rf "$GUEST_DIR"' EXIT
cp -a "$SOURCE_DIR/." "$GUEST_DIR/"

# shellcheck source=lib/common.sh
. "$GUEST_DIR/lib/common.sh"
# shellcheck source=lib/kernel.sh
. "$GUEST_DIR/lib/kernel.sh"
# shellcheck source=lib/busybox.sh
. "$GUEST_DIR/lib/busybox.sh"
# shellcheck source=lib/initramfs.sh
. "$GUEST_DIR/lib/initramfs.sh"
# shellcheck source=lib/bench.sh
. "$GUEST_DIR/lib/bench.sh"
# shellcheck source=lib/opensbi.sh
. "$GUEST_DIR/lib/opensbi.sh"
# shellcheck source=lib/disk.sh
. "$GUEST_DIR/lib/disk.sh"

FORCE=" "
PRUNE=0
for arg in "$@"; do
    case $arg in
    --prune) PRUNE=1 ;;
    --force) FORCE=" ${COMPONENTS[*]} " ;;
    --force=*) FORCE=" $(echo "${arg#--force=}" | tr ',' ' ') " ;;
    -h | --help)
        sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument '$arg' (try --help)" ;;
    esac
done
for c in $FORCE; do
    case " ${COMPONENTS[*]} " in *" $c "*) ;; *) die "--force: unknown component '$c' (known: ${COMPONENTS[*]})" ;; esac
done

# One build at a time per cache; a second caller waits, then finds it built.
exec 9>"$GUEST_CACHE/.lock"
if ! flock -n 9; then
    progress "another build holds $GUEST_CACHE/.lock; waiting"
    flock 9
fi

# Everything the steps need, checked without touching apt when present.
ensure_packages make gcc libc6-dev perl flex bison bc libssl-dev libelf-dev \
    xz-utils cpio gzip file dpkg-dev \
    gcc-riscv64-linux-gnu libc6-dev-riscv64-cross \
    linux-source-6.1 opensbi e2fsprogs
# /dev/console in the initramfs needs mknod: as root directly, else in fakeroot
[ "$(id -u)" -eq 0 ] || ensure_packages fakeroot
ensure_deb_src

CROSS_TOOLCHAIN_ID="riscv64: $(riscv64-linux-gnu-gcc --version | head -n1); $(riscv64-linux-gnu-ld --version | head -n1); libc6-dev-riscv64-cross $(pkg_version libc6-dev-riscv64-cross)"
HOST_TOOLCHAIN_ID="host: $(gcc --version | head -n1)"
BUSYBOX_VERSION=$(busybox_source_version)

# key and build function for each component; later keys include earlier
# ones where an output is an input (initramfs contains busybox).
KERNEL_DIR=$GUEST_CACHE/kernel-$(kernel_key)
BUSYBOX_DIR=$GUEST_CACHE/busybox-$(busybox_key)
INITRAMFS_DIR=$GUEST_CACHE/initramfs-$(initramfs_key "$BUSYBOX_DIR")
BENCH_DIR=$GUEST_CACHE/bench-$(bench_key "$BUSYBOX_DIR")
OPENSBI_DIR=$GUEST_CACHE/opensbi-$(opensbi_key)
DISK_DIR=$GUEST_CACHE/disk-$(disk_key)

step() { # step NAME DIR BUILD-FUNCTION [ARGS...]
    local name=$1 dir=$2
    shift 2
    if [[ $FORCE == *" $name "* ]]; then
        rm -rf "$dir"
    fi
    if is_built "$dir"; then
        progress "$name: cached ($dir)"
    else
        local t0=$SECONDS
        "$@" "$dir"
        progress "$name: built in $((SECONDS - t0))s ($dir)"
    fi
}

step kernel "$KERNEL_DIR" build_kernel
step busybox "$BUSYBOX_DIR" build_busybox
step initramfs "$INITRAMFS_DIR" build_initramfs "$BUSYBOX_DIR"
step bench "$BENCH_DIR" build_bench "$BUSYBOX_DIR"
step opensbi "$OPENSBI_DIR" build_opensbi
step disk "$DISK_DIR" build_disk

# current/: exactly the seven files, as relative symlinks into the key dirs
# (versions.txt is a real file). Each entry is replaced atomically.
CURRENT=$GUEST_CACHE/current
mkdir -p "$CURRENT"
link() { # link TARGET-DIR FILE [NAME]
    local name=${3:-$2}
    ln -sfn "../$(basename "$1")/$2" "$CURRENT/.$name.new"
    mv -T "$CURRENT/.$name.new" "$CURRENT/$name"
}
link "$KERNEL_DIR" Image
link "$INITRAMFS_DIR" initramfs.cpio.gz
link "$BENCH_DIR" bench-initramfs.cpio.gz
link "$OPENSBI_DIR" fw_jump.bin
link "$OPENSBI_DIR" fw_dynamic.bin
link "$DISK_DIR" disk.ext4
{
    echo "# HostVM guest images, built by guest/build.sh"
    echo "# source: $(git -C "$SOURCE_DIR" describe --always --dirty 2>/dev/null || echo unknown) ($SOURCE_DIR)"
    for d in "$KERNEL_DIR" "$BUSYBOX_DIR" "$INITRAMFS_DIR" "$BENCH_DIR" "$OPENSBI_DIR" "$DISK_DIR"; do
        echo "# $(basename "$d")"
        cat "$d/info.txt"
    done
} >"$CURRENT/.versions.txt.new"
mv -f "$CURRENT/.versions.txt.new" "$CURRENT/versions.txt"
find "$CURRENT" -mindepth 1 -maxdepth 1 \
    ! -name Image ! -name initramfs.cpio.gz ! -name bench-initramfs.cpio.gz \
    ! -name fw_jump.bin ! -name fw_dynamic.bin ! -name disk.ext4 ! -name versions.txt \
    -exec rm -rf {} +
for f in Image initramfs.cpio.gz bench-initramfs.cpio.gz fw_jump.bin fw_dynamic.bin disk.ext4; do
    [ -s "$CURRENT/$f" ] || die "$CURRENT/$f is missing or empty after the build"
done

if [ "$PRUNE" -eq 1 ]; then
    for d in "$GUEST_CACHE"/{kernel,busybox,initramfs,bench,opensbi,disk}-*; do
        case " $KERNEL_DIR $BUSYBOX_DIR $INITRAMFS_DIR $BENCH_DIR $OPENSBI_DIR $DISK_DIR " in
        *" $d "*) ;;
        *) [ -e "$d" ] && progress "prune: removing $d" && rm -rf "$d" ;;
        esac
    done
fi

echo "$CURRENT"
exit 0
}
