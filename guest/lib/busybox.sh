# Busybox step: Debian's busybox source package (apt-get source), built as a
# static riscv64 binary and installed with its applet links into rootfs/.
# Sourced by build.sh.

# SOURCE_DATE_EPOCH fixes the build date in the banner, so the same inputs
# give the same binary (and initramfs) on every machine.
BUSYBOX_MAKE=(env SOURCE_DATE_EPOCH=0 make ARCH=riscv CROSS_COMPILE=riscv64-linux-gnu-)

# Applets turned off on top of defconfig because they do not build against
# Debian 12's riscv64 glibc/kernel headers, or are useless in a static build.
#   TC: uses the CBQ qdisc definitions that Linux 6.x headers dropped.
BUSYBOX_DISABLE=(CONFIG_TC CONFIG_FEATURE_TC_INGRESS)

# The source version `apt-get source busybox` would fetch: the highest one
# apt-cache showsrc listed (ensure_deb_src); apt's local lists only.
busybox_source_version() {
    local best="" v
    for v in $BUSYBOX_SOURCE_VERSIONS; do
        if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then
            best=$v
        fi
    done
    [ -n "$best" ] || die "apt-cache showsrc busybox lists no version"
    echo "$best"
}

busybox_key() {
    {
        echo "busybox v1"
        describe_files "$GUEST_DIR/lib/busybox.sh"
        echo "busybox source $BUSYBOX_VERSION"
        echo "$CROSS_TOOLCHAIN_ID"
    } | short_hash
}

# The downloaded source package, kept per version so a config change does
# not download again.
busybox_fetch_source() {
    local dl=$GUEST_CACHE/downloads/busybox_${BUSYBOX_VERSION#*:}
    if ! [ -f "$dl/.done" ]; then
        progress "busybox: apt-get source busybox=$BUSYBOX_VERSION"
        rm -rf "$dl"
        mkdir -p "$dl"
        run_logged "busybox: apt-get source" "$GUEST_CACHE/logs/busybox-download.log" \
            sh -c 'cd "$1" && apt-get source --download-only "busybox=$2"' _ "$dl" "$BUSYBOX_VERSION"
        touch "$dl/.done"
    fi
    echo "$dl"
}

# build_busybox DIR: leaves rootfs/ (busybox + applet links), config and
# info.txt in DIR.
build_busybox() {
    local dir=$1 work log dl src
    dl=$(busybox_fetch_source)
    work=$(begin_build "$dir")
    log=$work/build.log
    src=$work/src/busybox # dpkg-source -x leaves the .orig tarball in $work/src

    progress "busybox: unpacking and configuring (log: $log)"
    mkdir -p "$work/src"
    run_logged "busybox: dpkg-source -x" "$log" \
        dpkg-source -x "$(ls "$dl"/busybox_*.dsc)" "$src"
    run_logged "busybox: make defconfig" "$log" \
        "${BUSYBOX_MAKE[@]}" -C "$src" defconfig
    local opt
    sed -i 's/^# CONFIG_STATIC is not set$/CONFIG_STATIC=y/' "$src/.config"
    for opt in "${BUSYBOX_DISABLE[@]}"; do
        sed -i "s/^$opt=y\$/# $opt is not set/" "$src/.config"
    done
    run_logged "busybox: make oldconfig" "$log" \
        sh -c 'yes "" | "$@"' _ "${BUSYBOX_MAKE[@]}" -C "$src" oldconfig
    grep -qx 'CONFIG_STATIC=y' "$src/.config" ||
        die "busybox: CONFIG_STATIC=y did not stick in $src/.config (log: $log)"
    for opt in "${BUSYBOX_DISABLE[@]}"; do
        ! grep -qx "$opt=y" "$src/.config" ||
            die "busybox: could not disable $opt in $src/.config (log: $log)"
    done

    progress "busybox: building (static, riscv64, make -j2)"
    run_logged "busybox: make" "$log" \
        nice -n 10 "${BUSYBOX_MAKE[@]}" -C "$src" -j2
    # install with the same ARCH/CROSS_COMPILE, or make rebuilds for the host
    run_logged "busybox: make install" "$log" \
        "${BUSYBOX_MAKE[@]}" -C "$src" CONFIG_PREFIX="$work/rootfs" install
    rm -f "$work/rootfs/linuxrc"

    local what
    what=$(file -b "$work/rootfs/bin/busybox")
    case $what in
    *RISC-V*"statically linked"*) ;;
    *) die "busybox: $work/rootfs/bin/busybox is not a static RISC-V ELF: $what" ;;
    esac
    cp "$src/.config" "$work/config"
    {
        echo "busybox: $(sed -n 's/^Version: //p' "$dl"/busybox_*.dsc) from Debian source package (apt-get source), defconfig + CONFIG_STATIC=y, without: ${BUSYBOX_DISABLE[*]}"
        echo "busybox: $what"
        echo "busybox: built with $CROSS_TOOLCHAIN_ID"
    } >"$work/info.txt"
    rm -rf "$work/src"
    finish_build "$dir"
}
