# Initramfs step: busybox rootfs + guest/init + guest/workload.sh +
# guest/iobench.sh + guest/randio.c (compiled static for riscv64) + the files under guest/rootfs/ (udhcpc's hook script,
# acpid's power-button action), packed with the host's cpio (newc, gzip -9).
# Also provides the staging and packing helpers the bench step uses. Sourced
# by build.sh.

initramfs_key() { # initramfs_key BUSYBOX_DIR
    {
        echo "initramfs v3"
        describe_files "$GUEST_DIR/lib/initramfs.sh" "$GUEST_DIR/init" \
            "$GUEST_DIR/workload.sh" "$GUEST_DIR/workload-expected-md5.txt" \
            "$GUEST_DIR/iobench.sh" "$GUEST_DIR/randio.c"
        echo "$CROSS_TOOLCHAIN_ID"
        # the overlay, names and modes included (a new file changes the key)
        (cd "$GUEST_DIR/rootfs" && find . -type f | LC_ALL=C sort | while IFS= read -r f; do
            echo "$([ -x "$f" ] && echo 755 || echo 644) $(sha256sum <"$f" | cut -c1-64) rootfs/${f#./}"
        done)
        echo "busybox $(basename "$1")"
    } | short_hash
}

# stage_rootfs BUSYBOX_DIR STAGE: the common tree of both initramfs images.
stage_rootfs() {
    local busybox=$1 stage=$2
    mkdir -p "$stage"
    cp -a "$busybox/rootfs/." "$stage/"
    mkdir -p "$stage"/{dev,proc,sys,tmp,root,etc,run}
    chmod 1777 "$stage/tmp"
}

# pack_cpio STAGE OUT: /dev/console and /dev/null are created as real
# device nodes (mknod as root, else inside fakeroot), everything is owned by
# root with mtime 0 and sorted, so the archive is byte-for-byte repeatable.
pack_cpio() {
    local stage=$1 out=$2
    local script='
        set -e
        cd "$1"
        mknod -m 600 dev/console c 5 1
        mknod -m 666 dev/null c 1 3
        find . -exec touch -h -d @0 {} +
        find . | LC_ALL=C sort | cpio --quiet -o -H newc --reproducible -R 0:0 | gzip -9 -n >"$2"
    '
    if [ "$(id -u)" -eq 0 ]; then
        sh -c "$script" _ "$stage" "$out"
    else
        command -v fakeroot >/dev/null || die "not root and no fakeroot: cannot create /dev/console in the initramfs"
        fakeroot sh -c "$script" _ "$stage" "$out"
    fi
}

# The workload's expected result, computed on the host with the same script
# (coreutils instead of busybox); it must match the recorded value.
check_workload_expected() {
    local log=$1 tmp got want
    tmp=$(mktemp -d)
    got=$(sh "$GUEST_DIR/workload.sh" "$tmp" 2>>"$log") || {
        rm -rf "$tmp"
        die "initramfs: guest/workload.sh failed on the host (log: $log)"
    }
    rm -rf "$tmp"
    want=$(cat "$GUEST_DIR/workload-expected-md5.txt")
    [ "$got" = "$want" ] ||
        die "initramfs: guest/workload.sh gives $got on the host but guest/workload-expected-md5.txt says $want"
}

# build_initramfs BUSYBOX_DIR DIR: leaves initramfs.cpio.gz and info.txt.
build_initramfs() {
    local busybox=$1 dir=$2 work log stage
    work=$(begin_build "$dir")
    log=$work/build.log
    stage=$work/root
    progress "initramfs: packing busybox + guest/init (log: $log)"
    check_workload_expected "$log"
    stage_rootfs "$busybox" "$stage"
    install -m 0755 "$GUEST_DIR/init" "$stage/init"
    install -D -m 0755 "$GUEST_DIR/workload.sh" "$stage/usr/share/hostvm/workload.sh"
    install -D -m 0755 "$GUEST_DIR/iobench.sh" "$stage/usr/share/hostvm/iobench.sh"
    run_logged "initramfs: randio riscv64 compile" "$log" \
        riscv64-linux-gnu-gcc -O2 -Wall -Wextra -Werror -static -o "$stage/usr/bin/randio" "$GUEST_DIR/randio.c"
    # guest/rootfs/: 0755 if executable in the checkout, else 0644 (so the
    # umask does not matter; owner and mtime are reset by pack_cpio)
    local f
    while IFS= read -r f; do
        if [ -x "$GUEST_DIR/rootfs/$f" ]; then
            install -D -m 0755 "$GUEST_DIR/rootfs/$f" "$stage/$f"
        else
            install -D -m 0644 "$GUEST_DIR/rootfs/$f" "$stage/$f"
        fi
    done < <(cd "$GUEST_DIR/rootfs" && find . -type f | LC_ALL=C sort)
    mkdir -p "$stage/mnt"
    run_logged "initramfs: cpio" "$log" pack_cpio "$stage" "$work/initramfs.cpio.gz"
    {
        echo "initramfs: busybox ($(basename "$busybox")) + guest/init + guest/workload.sh + guest/iobench.sh + randio + guest/rootfs/, $(stat -c %s "$work/initramfs.cpio.gz") bytes, sha256 $(sha256sum <"$work/initramfs.cpio.gz" | cut -d' ' -f1)"
        echo "initramfs: workload md5 expected $(cat "$GUEST_DIR/workload-expected-md5.txt")"
    } >"$work/info.txt"
    rm -rf "$stage"
    finish_build "$dir"
}
