# Disk step: disk.ext4, a small ext4 file system with known content for the
# virtio-blk tests, made without root by mke2fs -d from a staging directory,
# byte-for-byte the same on every run (fixed UUID, hash seed and times;
# owners set to root afterwards with debugfs). Sourced by build.sh.
#
# Content (guest/README.md documents it for the tests):
#   /hostvm/known.txt     DISK_KNOWN_TEXT
#   /hostvm/known.sha256  sha256sum of it ("<hex>  known.txt")
#   /hostvm/blob.bin      1 MiB: SHA-256("hostvm-blob-<i>") for i = 0..32767, concatenated
#   /hostvm/blob.sha256   sha256sum of it ("<hex>  blob.bin")
#   /lost+found

DISK_SIZE_MIB=32
DISK_UUID=6f0d1b8e-5d3c-4c6a-9a51-686f7374766d
DISK_LABEL=hostvm-test
# Every time stamp in the image (superblock and inodes): 2024-01-01 00:00:00 UTC.
DISK_TIME=1704067200
DISK_KNOWN_TEXT='HostVM test disk: this file has known content.'

disk_key() {
    {
        echo "disk v1"
        describe_files "$GUEST_DIR/lib/disk.sh"
        echo "e2fsprogs $(pkg_version e2fsprogs)"
        echo "perl $(pkg_version perl)"
    } | short_hash
}

# build_disk DIR: leaves disk.ext4, content.txt (its files and sha256) and info.txt.
build_disk() {
    local dir=$1 work log stage img got
    work=$(begin_build "$dir")
    log=$work/build.log
    stage=$work/root
    img=$work/disk.ext4
    progress "disk: making a ${DISK_SIZE_MIB} MiB ext4 image with mke2fs -d (log: $log)"

    mkdir -p "$stage/hostvm"
    printf '%s\n' "$DISK_KNOWN_TEXT" >"$stage/hostvm/known.txt"
    run_logged "disk: blob.bin" "$log" perl -MDigest::SHA=sha256 -e '
        open(my $out, ">:raw", $ARGV[0]) or die "$ARGV[0]: $!";
        print $out sha256("hostvm-blob-$_") for 0 .. 32767;
        close($out) or die "$ARGV[0]: $!";' "$stage/hostvm/blob.bin"
    [ "$(stat -c %s "$stage/hostvm/blob.bin")" -eq 1048576 ] || die "disk: blob.bin is not 1 MiB (log: $log)"
    (cd "$stage/hostvm" && sha256sum known.txt >known.sha256 && sha256sum blob.bin >blob.sha256)
    chmod 0755 "$stage" "$stage/hostvm"
    chmod 0644 "$stage/hostvm"/*

    # E2FSPROGS_FAKE_TIME (libext2fs) fixes the superblock's times and those
    # of the inodes mke2fs creates itself; it must not be 0 (0 means unset).
    # The copied files take ctime/atime and owner from the staging files, so
    # debugfs resets those afterwards (under the same fake time, so its own
    # write of the superblock does not stamp the clock either).
    # Our own mke2fs.conf, so the host's /etc/mke2fs.conf cannot change the
    # layout: ext4 as Debian 12 makes it, 4 KiB blocks.
    cat >"$work/mke2fs.conf" <<'CONF'
[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384
[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
CONF
    truncate -s "${DISK_SIZE_MIB}M" "$img"
    run_logged "disk: mke2fs" "$log" env E2FSPROGS_FAKE_TIME=$DISK_TIME MKE2FS_CONFIG="$work/mke2fs.conf" \
        mke2fs -F -t ext4 -L "$DISK_LABEL" -U "$DISK_UUID" \
        -E "root_owner=0:0,hash_seed=$DISK_UUID,lazy_itable_init=0,lazy_journal_init=0" \
        -d "$stage" "$img"
    {
        local path field
        for path in / /lost+found $(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | sed 's|^\.||'); do
            for field in atime ctime mtime crtime; do
                echo "set_inode_field $path $field @$DISK_TIME"
            done
            echo "set_inode_field $path uid 0"
            echo "set_inode_field $path gid 0"
        done
        local f
        for f in mkfs_time wtime lastcheck; do
            echo "set_super_value $f $DISK_TIME"
        done
    } >"$work/debugfs.cmd"
    run_logged "disk: debugfs (times, owners)" "$log" env E2FSPROGS_FAKE_TIME=$DISK_TIME \
        debugfs -w -f "$work/debugfs.cmd" "$img"
    run_logged "disk: e2fsck -fn" "$log" e2fsck -fn "$img"
    # the content read back from the image, checked against what was staged
    got=$(debugfs -R "cat /hostvm/blob.bin" "$img" 2>>"$log" | sha256sum | cut -d' ' -f1)
    [ "$got" = "$(cut -d' ' -f1 "$stage/hostvm/blob.sha256")" ] ||
        die "disk: /hostvm/blob.bin read back from $img has sha256 $got, not $(cat "$stage/hostvm/blob.sha256")"

    (cd "$stage" && find . -type f | LC_ALL=C sort | sed 's|^\./||' | xargs sha256sum) >"$work/content.txt"
    {
        echo "disk: disk.ext4 ${DISK_SIZE_MIB} MiB ext4 (mke2fs -d, $(pkg_version e2fsprogs)), UUID $DISK_UUID, label $DISK_LABEL, sha256 $(sha256sum <"$img" | cut -d' ' -f1)"
        echo "disk: known.txt sha256 $(cut -d' ' -f1 "$stage/hostvm/known.sha256"), blob.bin sha256 $(cut -d' ' -f1 "$stage/hostvm/blob.sha256")"
    } >"$work/info.txt"
    rm -rf "$stage"
    finish_build "$dir"
}
