# Bench step: guest/bench/cpubench.c compiled static for riscv64, in an
# initramfs whose init (guest/bench/init) runs it and powers off. The same
# C compiled for the host must print the checksum recorded in
# guest/bench/expected-checksum.txt. Sourced by build.sh.

BENCH_CFLAGS=(-O2 -Wall -Wextra -Werror)

bench_key() { # bench_key BUSYBOX_DIR
    {
        echo "bench v1"
        describe_files "$GUEST_DIR/lib/bench.sh" "$GUEST_DIR/lib/initramfs.sh" \
            "$GUEST_DIR/bench/cpubench.c" "$GUEST_DIR/bench/init" \
            "$GUEST_DIR/bench/expected-checksum.txt"
        echo "busybox $(basename "$1")"
        echo "$CROSS_TOOLCHAIN_ID"
        echo "$HOST_TOOLCHAIN_ID"
    } | short_hash
}

# build_bench BUSYBOX_DIR DIR: leaves cpubench, bench-initramfs.cpio.gz, info.txt.
build_bench() {
    local busybox=$1 dir=$2 work log stage want got what
    work=$(begin_build "$dir")
    log=$work/build.log
    stage=$work/root
    progress "bench: compiling guest/bench/cpubench.c for riscv64 and host (log: $log)"
    run_logged "bench: riscv64 compile" "$log" \
        riscv64-linux-gnu-gcc "${BENCH_CFLAGS[@]}" -static -o "$work/cpubench" "$GUEST_DIR/bench/cpubench.c"
    what=$(file -b "$work/cpubench")
    case $what in
    *RISC-V*"statically linked"*) ;;
    *) die "bench: $work/cpubench is not a static RISC-V ELF: $what" ;;
    esac
    run_logged "bench: host compile" "$log" \
        gcc "${BENCH_CFLAGS[@]}" -o "$work/cpubench-host" "$GUEST_DIR/bench/cpubench.c"
    progress "bench: running the host build to check the expected checksum"
    run_logged "bench: host run" "$log" sh -c '"$1" >"$2"' _ "$work/cpubench-host" "$work/host-output.txt"
    got=$(sed -n 's/^HOSTVM-BENCH checksum=//p' "$work/host-output.txt")
    want=$(cat "$GUEST_DIR/bench/expected-checksum.txt")
    [ -n "$got" ] && [ "$got" = "$want" ] ||
        die "bench: host build prints checksum '${got:-none}' but guest/bench/expected-checksum.txt says '$want' (output: $work/host-output.txt)"

    progress "bench: packing bench-initramfs"
    stage_rootfs "$busybox" "$stage"
    install -m 0755 "$GUEST_DIR/bench/init" "$stage/init"
    install -m 0755 "$work/cpubench" "$stage/usr/bin/cpubench"
    run_logged "bench: cpio" "$log" pack_cpio "$stage" "$work/bench-initramfs.cpio.gz"
    {
        echo "bench: guest/bench/cpubench.c, riscv64-linux-gnu-gcc ${BENCH_CFLAGS[*]} -static; $what"
        echo "bench: expected checksum $want (host gcc build agrees)"
        echo "bench: bench-initramfs.cpio.gz $(stat -c %s "$work/bench-initramfs.cpio.gz") bytes, sha256 $(sha256sum <"$work/bench-initramfs.cpio.gz" | cut -d' ' -f1)"
    } >"$work/info.txt"
    rm -rf "$stage"
    finish_build "$dir"
}
