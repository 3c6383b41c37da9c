# Kernel step: Linux 6.1 from Debian's linux-source-6.1, tinyconfig plus
# guest/kernel.config, built as a raw RISC-V Image. Sourced by build.sh.

KERNEL_TARBALL=/usr/src/linux-source-6.1.tar.xz
# Fixed build identity, so the same inputs give the same Image (and the same
# `Linux version ...` banner) on every machine.
KERNEL_MAKE=(make ARCH=riscv CROSS_COMPILE=riscv64-linux-gnu-
    KBUILD_BUILD_USER=hostvm KBUILD_BUILD_HOST=hostvm KBUILD_BUILD_VERSION=1
    "KBUILD_BUILD_TIMESTAMP=Thu Jan  1 00:00:00 UTC 1970")

kernel_key() {
    {
        echo "kernel v1"
        describe_files "$GUEST_DIR/lib/kernel.sh" "$GUEST_DIR/kernel.config"
        echo "linux-source-6.1 $(pkg_version linux-source-6.1)"
        echo "$CROSS_TOOLCHAIN_ID"
        echo "$HOST_TOOLCHAIN_ID"
    } | short_hash
}

# build_kernel DIR: leaves Image, vmlinux, System.map, config, info.txt in DIR.
build_kernel() {
    local dir=$1 work log tree
    work=$(begin_build "$dir")
    log=$work/build.log
    tree=$work/linux

    progress "kernel: extracting $KERNEL_TARBALL (log: $log)"
    mkdir -p "$tree"
    run_logged "kernel: extract source" "$log" \
        tar -xf "$KERNEL_TARBALL" -C "$tree" --strip-components=1

    progress "kernel: configuring (tinyconfig + guest/kernel.config)"
    run_logged "kernel: make tinyconfig" "$log" \
        "${KERNEL_MAKE[@]}" -C "$tree" tinyconfig
    # merge_config.sh -m merges the fragment into .config without running
    # olddefconfig; we run olddefconfig ourselves so the log shows it.
    run_logged "kernel: merge guest/kernel.config" "$log" \
        env ARCH=riscv CROSS_COMPILE=riscv64-linux-gnu- \
        sh -c 'cd "$1" && ./scripts/kconfig/merge_config.sh -m .config "$2"' _ "$tree" "$GUEST_DIR/kernel.config"
    run_logged "kernel: make olddefconfig" "$log" \
        "${KERNEL_MAKE[@]}" -C "$tree" olddefconfig
    verify_kernel_config "$GUEST_DIR/kernel.config" "$tree/.config" "$log"

    progress "kernel: building Image (make -j2, nice 10; ~10+ min on 2 cores)"
    run_logged "kernel: make Image" "$log" \
        nice -n 10 "${KERNEL_MAKE[@]}" -C "$tree" -j2 Image

    cp "$tree/arch/riscv/boot/Image" "$work/Image"
    cp "$tree/vmlinux" "$work/vmlinux"   # symbols, for debugging guest PCs
    cp "$tree/System.map" "$work/System.map"
    cp "$tree/.config" "$work/config"
    {
        echo "kernel: Linux $(make -s -C "$tree" kernelversion 2>/dev/null) from linux-source-6.1 $(pkg_version linux-source-6.1)"
        echo "kernel: tinyconfig + guest/kernel.config (all $(grep -c '^CONFIG_' "$GUEST_DIR/kernel.config") options verified)"
        echo "kernel: Image $(stat -c %s "$work/Image") bytes, sha256 $(sha256sum <"$work/Image" | cut -d' ' -f1)"
        echo "kernel: built with $CROSS_TOOLCHAIN_ID"
    } >"$work/info.txt"
    # The source tree is ~1.5 GB and is never reused (a new key means a fresh
    # tree), so only the artifacts stay.
    rm -rf "$tree"
    finish_build "$dir"
}

# verify_kernel_config FRAGMENT CONFIG LOG: every option of the fragment must
# be in .config with the requested value; "=n" and "is not set" both mean
# absent-or-not-set. Names every option that did not land.
verify_kernel_config() {
    local fragment=$1 config=$2 log=$3 bad=() name want got line
    while IFS= read -r line; do
        case $line in
        CONFIG_*=*)
            name=${line%%=*}
            want=${line#*=}
            ;;
        "# CONFIG_"*" is not set")
            name=${line#"# "}
            name=${name%" is not set"}
            want=n
            ;;
        *) continue ;;
        esac
        got=$(sed -n "s/^$name=//p" "$config")
        [ -z "$got" ] && got=n
        if [ "$got" != "$want" ]; then
            bad+=("$name (wanted $want, got $got)")
        fi
    done <"$fragment"
    if [ ${#bad[@]} -ne 0 ]; then
        {
            echo "guest: ERROR: kernel config check failed; these options of guest/kernel.config did not land in .config:"
            printf '    %s\n' "${bad[@]}"
            echo "guest: (usually a missing dependency: add it to guest/kernel.config) .config: $config, log: $log"
        } >&2
        exit 1
    fi
    echo "kernel config check: all options of $fragment present in $config" >>"$log"
}
