# Shared helpers for guest/build.sh. Sourced, not executed.
#
# Nothing in here changes what gets built: the cache keys hash the step
# scripts (kernel.sh, busybox.sh, ...) and their inputs, not this file, so
# editing a log message does not rebuild the kernel.

# One progress line per step, on stderr (stdout carries only the result path).
progress() {
    printf 'guest: %s\n' "$*" >&2
}

die() {
    printf 'guest: ERROR: %s\n' "$*" >&2
    exit 1
}

# run_logged STEP LOG CMD...: run CMD with all output appended to LOG; on
# failure say which step failed, where the full log is, and show its tail.
run_logged() {
    local step=$1 log=$2
    shift 2
    mkdir -p "$(dirname "$log")"
    printf '\n### %s\n### %s\n' "$step" "$*" >>"$log"
    if ! "$@" >>"$log" 2>&1; then
        printf 'guest: ERROR: %s failed. Full log: %s\n' "$step" "$log" >&2
        printf 'guest: last lines of the log:\n' >&2
        tail -n 25 "$log" | sed 's/^/    /' >&2
        exit 1
    fi
}

# hash_inputs: sha256 of everything on stdin, shortened to a cache key.
short_hash() {
    sha256sum | cut -c1-16
}

# describe_files FILE...: a stable text listing of the files' sha256 and
# names (relative to the guest/ directory), for feeding into a key.
describe_files() {
    sha256sum "$@" | sed "s| $GUEST_DIR/| |"
}

# Package versions, read with one dpkg-query call (process start-up is what
# makes a cached run slow) by load_pkg_versions PKG..., then looked up.
declare -A PKG_VERSION=()
load_pkg_versions() {
    local name status version
    while IFS=$'\t' read -r name status version; do
        [ "$status" = ii ] && PKG_VERSION[$name]=$version
    done < <(dpkg-query -W -f='${Package}\t${db:Status-Abbrev}\t${Version}\n' "$@" 2>/dev/null | sed 's/ *\t/\t/g')
    return 0
}

pkg_version() {
    [ -n "${PKG_VERSION[$1]:-}" ] || load_pkg_versions "$1"
    echo "${PKG_VERSION[$1]:-not-installed}"
}

# ensure_packages PKG...: install what is missing, and only then touch apt.
ensure_packages() {
    local missing=() p
    load_pkg_versions "$@"
    for p in "$@"; do
        [ -n "${PKG_VERSION[$p]:-}" ] || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    progress "installing missing Debian packages: ${missing[*]}"
    local log="$GUEST_CACHE/logs/apt.log"
    run_logged "apt-get update" "$log" as_root apt-get update
    run_logged "apt-get install ${missing[*]}" "$log" \
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    load_pkg_versions "${missing[@]}"
    for p in "${missing[@]}"; do
        [ -n "${PKG_VERSION[$p]:-}" ] || die "apt-get install $p did not install it (log: $log)"
    done
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# ensure_deb_src: apt-get source needs a deb-src entry. If there is none,
# add one mirroring the configured Debian 'deb' entries (same URIs, suites
# and signed-by key), then refresh the package lists once. Leaves the
# source package's versions in BUSYBOX_SOURCE_VERSIONS.
#
# apt-cache showsrc exits non-zero when no source entry knows the package,
# which is exactly the case this function is for: its status must not end
# the script (set -e), so it is read with `|| true` and judged by its output.
# Where apt keeps its sources comes from apt-config, so APT_CONFIG can point
# a test at a sources list of its own.
ensure_deb_src() {
    BUSYBOX_SOURCE_VERSIONS=$(busybox_source_versions)
    [ -n "$BUSYBOX_SOURCE_VERSIONS" ] && return 0
    local log="$GUEST_CACHE/logs/apt.log"
    if ! has_deb_src_entry; then
        local file
        file=$(write_deb_src_entry) ||
            die "no deb-src entry in $(apt_sources_list) or $(apt_sources_dir), and no Debian 'deb' entry to mirror as one: add a deb-src line for Debian 12 (bookworm) and run this again"
        progress "added deb-src entry $file (for apt-get source busybox)"
    fi
    run_logged "apt-get update (for deb-src)" "$log" as_root apt-get update
    BUSYBOX_SOURCE_VERSIONS=$(busybox_source_versions)
    [ -n "$BUSYBOX_SOURCE_VERSIONS" ] ||
        die "apt-cache showsrc busybox finds nothing even after apt-get update; check the deb-src entries in $(apt_sources_dir) (log: $log)"
}

busybox_source_versions() {
    { apt-cache showsrc busybox 2>/dev/null || true; } | sed -n 's/^Version: //p'
}

# apt's sources.list file and sources.list.d directory, as apt itself sees them.
apt_sources_list() {
    local path=
    eval "$(apt-config shell path Dir::Etc::sourcelist/f 2>/dev/null || true)"
    echo "$path"
}

apt_sources_dir() {
    local path=
    eval "$(apt-config shell path Dir::Etc::sourceparts/d 2>/dev/null || true)"
    echo "${path%/}"
}

has_deb_src_entry() {
    grep -rqsE '^[[:space:]]*deb-src[[:space:]]|^Types:.*deb-src' \
        "$(apt_sources_list)" "$(apt_sources_dir)/" 2>/dev/null
}

# Writes hostvm-deb-src.{sources,list} into apt's sources directory; prints its path.
write_deb_src_entry() {
    local src dir list
    dir=$(apt_sources_dir)
    list=$(apt_sources_list)
    [ -n "$dir" ] || return 1
    # deb822 style (Debian 12 default): copy every stanza that has 'deb' and a
    # debian.org URI, changing only the Types line.
    for src in "$dir"/*.sources; do
        [ -f "$src" ] || continue
        if grep -qE '^URIs:.*debian' "$src"; then
            local out=$dir/hostvm-deb-src.sources
            awk '
                BEGIN { RS = ""; ORS = "\n\n" }
                /(^|\n)Types:[^\n]*deb/ && /(^|\n)URIs:[^\n]*debian/ {
                    sub(/(^|\n)Types:[^\n]*/, "\nTypes: deb-src"); sub(/^\n/, "")
                    print
                }' "$src" | as_root tee "$out" >/dev/null
            [ -s "$out" ] && { echo "$out"; return 0; }
        fi
    done
    # one-line style: copy 'deb ...debian...' lines as 'deb-src'.
    local lines
    lines=$(cat "$list" "$dir"/*.list 2>/dev/null |
        sed -nE 's/^[[:space:]]*deb[[:space:]]+(.*debian.*)$/deb-src \1/p' || true)
    if [ -n "$lines" ]; then
        local out=$dir/hostvm-deb-src.list
        printf '%s\n' "$lines" | as_root tee "$out" >/dev/null
        echo "$out"
        return 0
    fi
    return 1
}

# A component directory is complete when it has a .done file. Building goes
# to DIR.partial and is renamed at the end, so an interrupted build never
# looks complete.
is_built() { [ -f "$1/.done" ]; }

begin_build() {
    local dir=$1
    rm -rf "$dir.partial"
    mkdir -p "$dir.partial"
    echo "$dir.partial"
}

finish_build() {
    local dir=$1
    date -u +%Y-%m-%dT%H:%M:%SZ >"$dir.partial/.done"
    rm -rf "$dir"
    mv "$dir.partial" "$dir"
}
