#!/usr/bin/env bash
# Builds the Debian 13 (trixie) riscv64 guest image from Debian's own
# packages, or reuses it from the cache, and prints on its last stdout line
# the directory holding:
#
#   debian-13.qcow2  the template: one MBR partition (ext4 root, bootable),
#                    systemd, openssh-server, cloud-init, Debian's kernel
#   u-boot.bin       U-Boot qemu-riscv64_smode (host package u-boot-qemu), raw, for QEMU's -kernel
#   u-boot.elf       the same U-Boot as an ELF (uboot.elf in the package), for
#                    `hostvm run --kernel`, which takes an ELF or a Linux Image
#   fw_jump.bin      OpenSBI (host package opensbi)
#   versions.txt     package versions, kernel command line, build times
#
# Usage: guest/debian/build.sh [--force]
#   --force   rebuild even if the cache has an image for these inputs
# Needs root to build (debootstrap, chroot); re-runs itself with sudo if not.
# Cache: ${HOSTVM_CACHE:-$HOME/.cache/hostvm}/guest/debian-<key>/ (see guest/README.md).
set -euo pipefail

# bash reads a script while running it; the body is one { } group so that
# editing this file during a build cannot change what the build runs.
{
SOURCE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SETUP_STEP=debian
# shellcheck source=../../scripts/lib/on-error.sh
. "$SOURCE_DIR/../../scripts/lib/on-error.sh"
GUEST_CACHE=${HOSTVM_CACHE:-$HOME/.cache/hostvm}/guest
# progress/die/run_logged/ensure_packages/begin_build/finish_build; its
# comments say it never changes what gets built, so it is not in the key.
# shellcheck source=../lib/common.sh
. "$SOURCE_DIR/../lib/common.sh"
progress() { printf 'debian: %s\n' "$*" >&2; }
die() {
    printf 'debian: ERROR: %s\n' "$*" >&2
    exit 1
}

SUITE=trixie
# A fixed UUID: the template's fstab and extlinux.conf name it, and every VM
# made from the template boots with it (as cloud images do).
ROOT_UUID=d3b1a9c4-13e5-4f6a-8d2e-686f7374766d
ROOT_LABEL=debian-root
DISK_MIB=3072
PART_START_MIB=1 # sector 2048, where sfdisk puts the first partition anyway
# What the image holds on top of debootstrap's minbase. cloud-init renders
# its network configuration for systemd-networkd (part of `systemd` in
# trixie): it needs `ip` (iproute2), and without ifupdown and netplan.io
# networkd is the renderer it picks, the lightest of the three. udev, dbus
# and libpam-systemd are what a systemd system with logins has (minbase
# leaves out Recommends); systemd-resolved gives /etc/resolv.conf from DHCP;
# cloud-guest-utils (growpart) lets cloud-init grow the root partition to
# the disk's size on first boot. python3-cffi-backend is named because
# debootstrap does not resolve versioned virtual packages: cloud-init's
# python3-cryptography depends on python3-cffi-backend-api-min (<= 9729),
# which only python3-cffi-backend provides, and without it the second stage
# fails ("dependency problems prevent configuration").
PACKAGES=(
    systemd-sysv udev dbus libpam-systemd systemd-resolved iproute2
    openssh-server cloud-init cloud-guest-utils sudo python3-cffi-backend
    linux-image-riscv64 initramfs-tools u-boot-menu
    e2fsprogs kmod
)

FORCE=0
for arg in "$@"; do
    case $arg in
    --force) FORCE=1 ;;
    -h | --help)
        sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument '$arg' (try --help)" ;;
    esac
done

# Host tools: debootstrap (first stage), qemu-user-static (runs the riscv64
# second stage and maintainer scripts through binfmt_misc), e2fsprogs
# (mkfs.ext4 -d), fdisk (sfdisk), qemu-utils (qemu-img), and the firmware
# shipped next to the image.
HOST_PACKAGES=(debootstrap qemu-user-static e2fsprogs fdisk qemu-utils u-boot-qemu opensbi)
ensure_packages "${HOST_PACKAGES[@]}"

UBOOT_BIN=/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin
UBOOT_ELF=/usr/lib/u-boot/qemu-riscv64_smode/uboot.elf
FW_JUMP=$(dpkg -L opensbi | grep -m1 '/generic/fw_jump.bin$') ||
    die "the opensbi package has no generic/fw_jump.bin (dpkg -L opensbi)"
[ -f "$UBOOT_BIN" ] && [ -f "$UBOOT_ELF" ] || die "u-boot-qemu has no $UBOOT_BIN or $UBOOT_ELF"

# The key: every file under guest/debian/ and the host packages whose
# output ends up in the result. Debian trixie itself moves on (point
# releases); the image is what the archive held when it was first built,
# and versions.txt says which versions that was.
debian_key() {
    {
        echo "debian v1 $SUITE"
        (cd "$SOURCE_DIR" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
        for p in "${HOST_PACKAGES[@]}"; do echo "$p $(pkg_version "$p")"; done
    } | short_hash
}
OUT=$GUEST_CACHE/debian-$(debian_key)
[ "$FORCE" -eq 1 ] && rm -rf "$OUT"
if is_built "$OUT"; then
    progress "cached ($OUT)"
    echo "$OUT"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "building the image needs root (debootstrap, chroot) or sudo"
    progress "building needs root (debootstrap, chroot): running again with sudo"
    exec sudo HOSTVM_CACHE="${HOSTVM_CACHE:-$HOME/.cache/hostvm}" "$0" "$@"
fi

# One build at a time per cache; a second caller waits, then finds it built.
mkdir -p "$GUEST_CACHE"
exec 9>"$GUEST_CACHE/.debian.lock"
if ! flock -n 9; then
    progress "another build holds $GUEST_CACHE/.debian.lock; waiting"
    flock 9
    if is_built "$OUT"; then
        echo "$OUT"
        exit 0
    fi
fi

# The build reads a snapshot of guest/debian/ taken now, so that what it
# stores matches the key above even if the files are edited meanwhile.
WORK=$(begin_build "$OUT")
LOG=$WORK/build.log
ROOT=$WORK/root
cp -a "$SOURCE_DIR" "$WORK/inputs"
MOUNTS=()
cleanup() {
    local m
    for m in "${MOUNTS[@]}"; do umount -l "$m" 2>/dev/null || true; done
    # debootstrap's own mounts, if it died before unmounting them
    for m in proc sys dev/pts; do
        mountpoint -q "$ROOT/$m" 2>/dev/null && umount -l "$ROOT/$m"
    done
    return 0
}
trap cleanup EXIT

# The Debian mirror apt uses here (deb822 or one-line sources), so a
# machine behind a local mirror builds from it; deb.debian.org otherwise.
debian_mirror() {
    local m
    m=$({ sed -n 's/^URIs:[[:space:]]*//p' "$(apt_sources_dir)"/*.sources 2>/dev/null || true
        sed -nE 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' \
            "$(apt_sources_list)" "$(apt_sources_dir)"/*.list 2>/dev/null || true; } |
        tr ' ' '\n' | grep -m1 -E '/debian/?$' || true)
    echo "${HOSTVM_DEBIAN_MIRROR:-${m:-http://deb.debian.org/debian}}"
}

# qemu-riscv64 registered with binfmt_misc with the F flag (the kernel
# opens the interpreter when it is registered, so it works inside the
# chroot, which has no qemu binary). Nothing here relies on systemd: a bare
# machine (or a chroot whose /proc was bind-mounted without its submounts)
# may have binfmt_misc unmounted and nothing registered.
ensure_binfmt() {
    local dir=/proc/sys/fs/binfmt_misc conf=/usr/lib/binfmt.d/qemu-riscv64.conf
    if ! [ -e "$dir/register" ]; then
        progress "mounting binfmt_misc on $dir"
        mount -t binfmt_misc binfmt_misc "$dir"
    fi
    if [ -e "$dir/qemu-riscv64" ] && ! grep -qx 'enabled' "$dir/qemu-riscv64"; then
        echo 1 >"$dir/qemu-riscv64"
    fi
    if [ -e "$dir/qemu-riscv64" ] && ! grep -q '^flags: .*F' "$dir/qemu-riscv64"; then
        progress "qemu-riscv64 is registered with binfmt_misc without the F flag (useless in a chroot): registering $conf instead"
        echo -1 >"$dir/qemu-riscv64"
    fi
    if ! [ -e "$dir/qemu-riscv64" ]; then
        [ -f "$conf" ] || die "qemu-user-static installed no $conf"
        grep -q ':[^:]*F[^:]*$' "$conf" || die "$conf does not register with the F flag"
        progress "registering qemu-riscv64 with binfmt_misc ($conf)"
        cat "$conf" >"$dir/register"
    fi
}

chroot_run() { # chroot_run STEP CMD...: a command inside the image, logged
    local step=$1
    shift
    run_logged "$step" "$LOG" chroot "$ROOT" /usr/bin/env -i \
        PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

T0=$SECONDS
MIRROR=$(debian_mirror)
INCLUDE=$(IFS=,; echo "${PACKAGES[*]}")
progress "debootstrap first stage: downloading $SUITE riscv64 from $MIRROR (log: $LOG)"
run_logged "debootstrap --foreign" "$LOG" \
    debootstrap --foreign --arch=riscv64 --variant=minbase --include="$INCLUDE" "$SUITE" "$ROOT" "$MIRROR"
T_DOWNLOAD=$((SECONDS - T0))

# Our configuration goes in before the packages are configured, so their
# maintainer scripts already use it: the kernel's postinst makes the
# initramfs with MODULES=list (once, not twice) and u-boot-menu's hook
# writes extlinux.conf with our parameters and the root UUID from fstab.
# None of these files belongs to a package (no conffile prompts).
cp -a "$WORK/inputs/rootfs/." "$ROOT/"
echo "UUID=$ROOT_UUID / ext4 defaults,errors=remount-ro 0 1" >"$ROOT/etc/fstab"
# Nothing may start a daemon in the build chroot.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 0755 "$ROOT/usr/sbin/policy-rc.d"

# The second stage works out the order of installation by running perl and
# grep over the suite's whole Packages file (54 MB, 60,000 stanzas) again and
# again, and under qemu-user each pass takes many seconds. Only the stanzas
# of the packages the first stage fetched (debpaths) can matter to it: the
# first stage already resolved every dependency among them.
lists=("$ROOT"/var/lib/apt/lists/*_Packages)
[ "${#lists[@]}" -eq 1 ] && [ -f "${lists[0]}" ] ||
    die "expected one Packages file in $ROOT/var/lib/apt/lists, found: ${lists[*]}"
awk 'NR == FNR { keep[$1] = 1; next }
     { name = $0; sub(/^(.*\n)?Package: /, "", name); sub(/\n.*/, "", name) }
     name in keep { print; print "" }' "$ROOT/debootstrap/debpaths" RS= "${lists[0]}" >"$WORK/Packages"
[ "$(grep -c '^Package: ' "$WORK/Packages")" -eq "$(wc -l <"$ROOT/debootstrap/debpaths")" ] ||
    die "trimming ${lists[0]} to the fetched packages lost some (compare $WORK/Packages with $ROOT/debootstrap/debpaths)"
mv "$WORK/Packages" "${lists[0]}"

ensure_binfmt
chroot "$ROOT" /bin/true 2>>"$LOG" ||
    die "a riscv64 program does not run in $ROOT: qemu-riscv64 through binfmt_misc does not work (cat /proc/sys/fs/binfmt_misc/qemu-riscv64; log: $LOG)"

T0=$SECONDS
progress "debootstrap second stage under qemu-riscv64-static (the slow part)"
run_logged "debootstrap --second-stage" "$LOG" chroot "$ROOT" /debootstrap/debootstrap --second-stage
T_STAGE2=$((SECONDS - T0))

T0=$SECONDS
progress "configuring the image for first boot"
mount -t proc proc "$ROOT/proc"
MOUNTS+=("$ROOT/proc")
chroot_run "systemctl enable" systemctl enable systemd-networkd.service systemd-resolved.service hostvm-ready.service
# extlinux.conf again, now that fstab, the kernel and the initramfs are final
chroot_run "u-boot-update" u-boot-update
umount "$ROOT/proc"
MOUNTS=()
rm -f "$ROOT/usr/sbin/policy-rc.d"
# first boot makes these per VM: systemd the machine ID (an empty file means
# "not yet set", which also marks first boot), cloud-init the SSH host keys
: >"$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id" "$ROOT"/etc/ssh/ssh_host_*
echo debian >"$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
# debootstrap copied the build host's resolv.conf; systemd-resolved's stub
# is what the guest uses
ln -sfn ../run/systemd/resolve/stub-resolv.conf "$ROOT/etc/resolv.conf"
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb \
    "$ROOT"/var/cache/debconf/*-old "$ROOT"/var/lib/dpkg/*-old "$ROOT/var/log/bootstrap.log"
find "$ROOT/var/log" -type f -exec truncate -s 0 {} +
mkdir -p "$ROOT/var/lib/apt/lists/partial"

EXTLINUX=$ROOT/boot/extlinux/extlinux.conf
[ -s "$EXTLINUX" ] || die "u-boot-update wrote no $EXTLINUX (log: $LOG)"
CMDLINE=$(sed -n '0,/^[[:space:]]*append /s/^[[:space:]]*append //p' "$EXTLINUX")
case $CMDLINE in
*"root=UUID=$ROOT_UUID"*"console=ttyS0"*) ;;
*) die "extlinux.conf's kernel command line is '$CMDLINE', without root=UUID=$ROOT_UUID and console=ttyS0 ($EXTLINUX)" ;;
esac
! grep -qE '^[[:space:]]*fdt(dir)? ' "$EXTLINUX" ||
    die "$EXTLINUX names a device tree file; the machine's own must be used"
INITRD=$(ls "$ROOT"/boot/initrd.img-* 2>/dev/null | head -n1)
[ -s "$INITRD" ] || die "the image has no /boot/initrd.img-* (log: $LOG)"
T_CONFIG=$((SECONDS - T0))

T0=$SECONDS
progress "assembling the disk: mkfs.ext4 -d, sfdisk, qemu-img convert"
ROOT_MIB=$((DISK_MIB - PART_START_MIB))
truncate -s "${ROOT_MIB}M" "$WORK/root.ext4"
run_logged "mkfs.ext4" "$LOG" mkfs.ext4 -F -q -L "$ROOT_LABEL" -U "$ROOT_UUID" \
    -E root_owner=0:0 -d "$ROOT" "$WORK/root.ext4"
run_logged "e2fsck -fn" "$LOG" e2fsck -fn "$WORK/root.ext4"
truncate -s "${DISK_MIB}M" "$WORK/disk.img"
# MBR, one Linux partition marked bootable: U-Boot's distro boot scans the
# bootable partitions for /boot/extlinux/extlinux.conf.
run_logged "sfdisk" "$LOG" sh -c 'echo "start=$2M, type=83, bootable" | sfdisk --label dos "$1"' \
    _ "$WORK/disk.img" "$PART_START_MIB"
run_logged "dd root.ext4" "$LOG" dd if="$WORK/root.ext4" of="$WORK/disk.img" bs=1M \
    seek="$PART_START_MIB" conv=notrunc,sparse status=none
rm -f "$WORK/root.ext4"
# Not compressed: a compressed cluster costs inflating on every read at boot.
run_logged "qemu-img convert" "$LOG" qemu-img convert -O qcow2 "$WORK/disk.img" "$WORK/debian-13.qcow2"
rm -f "$WORK/disk.img"
T_IMAGE=$((SECONDS - T0))

cp "$UBOOT_BIN" "$WORK/u-boot.bin"
cp "$UBOOT_ELF" "$WORK/u-boot.elf"
cp "$FW_JUMP" "$WORK/fw_jump.bin"
image_version() { # the version dpkg in the image has for a package
    dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f='${Version}' "$1" 2>/dev/null || echo not-installed
}
KERNEL_PKG=$(dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f='${Depends}' linux-image-riscv64 | sed 's/ .*//')
{
    echo "# HostVM Debian $SUITE riscv64 image, built by guest/debian/build.sh"
    echo "# source: $(git -C "$SOURCE_DIR" describe --always --dirty 2>/dev/null || echo unknown); mirror $MIRROR; built $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "kernel: linux-image-riscv64 $(image_version linux-image-riscv64) ($KERNEL_PKG)"
    for p in systemd openssh-server cloud-init u-boot-menu initramfs-tools; do
        echo "$p: $(image_version "$p")"
    done
    echo "u-boot: u-boot-qemu $(pkg_version u-boot-qemu) (host), $UBOOT_BIN, sha256 $(sha256sum <"$UBOOT_BIN" | cut -d' ' -f1); u-boot.elf is its $UBOOT_ELF"
    echo "opensbi: opensbi $(pkg_version opensbi) (host), $FW_JUMP, sha256 $(sha256sum <"$FW_JUMP" | cut -d' ' -f1)"
    echo "cmdline: $CMDLINE"
    echo "root: UUID $ROOT_UUID, label $ROOT_LABEL, partition 1 from ${PART_START_MIB} MiB (MBR, bootable)"
    echo "initrd: $(basename "$INITRD") $(stat -c %s "$INITRD") bytes"
    echo "rootfs: $(du -sm "$ROOT" | cut -f1) MiB in files, $(dpkg-query --admindir="$ROOT/var/lib/dpkg" -W | wc -l) packages"
    echo "image: debian-13.qcow2 ${DISK_MIB} MiB virtual, $(stat -c %s "$WORK/debian-13.qcow2") bytes"
    echo "build: download ${T_DOWNLOAD}s, second stage ${T_STAGE2}s, configure ${T_CONFIG}s, image ${T_IMAGE}s"
} >"$WORK/versions.txt"
rm -rf "$ROOT" "$WORK/inputs"
finish_build "$OUT"
progress "built in $((T_DOWNLOAD + T_STAGE2 + T_CONFIG + T_IMAGE))s ($OUT)"
echo "$OUT"
exit 0
}
