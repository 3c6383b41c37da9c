# OpenSBI step: fw_jump.bin and fw_dynamic.bin copied from Debian's opensbi
# package (generic platform, which is what QEMU virt uses). Sourced by build.sh.

opensbi_file() { # opensbi_file NAME: where the opensbi package installed it
    local f
    f=$(dpkg -L opensbi | grep -m1 "/generic/$1\$") ||
        die "opensbi: the opensbi package has no generic/$1 (dpkg -L opensbi)"
    echo "$f"
}

opensbi_key() {
    {
        echo "opensbi v1"
        describe_files "$GUEST_DIR/lib/opensbi.sh"
        echo "opensbi $(pkg_version opensbi)"
    } | short_hash
}

build_opensbi() {
    local dir=$1 work f src
    work=$(begin_build "$dir")
    : >"$work/info.txt"
    for f in fw_jump.bin fw_dynamic.bin; do
        src=$(opensbi_file "$f")
        cp "$src" "$work/$f"
        echo "opensbi: $f from opensbi $(pkg_version opensbi) ($src), sha256 $(sha256sum <"$src" | cut -d' ' -f1)" >>"$work/info.txt"
    done
    finish_build "$dir"
}
