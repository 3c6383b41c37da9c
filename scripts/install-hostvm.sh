#!/usr/bin/env bash
# Builds the `hostvm` command and installs it on PATH: published (framework-dependent) into
# /usr/local/lib/hostvm with a link /usr/local/bin/hostvm when run as root, else into
# ~/.local/lib/hostvm and ~/.local/bin/hostvm. HOSTVM_PREFIX chooses another prefix.
# hostvm-vmm, the VMM compiled ahead of time (NativeAOT) that the daemon runs per VM, comes with
# it: the CLI's build publishes it next to hostvm (src/HostVM.Cli/HostVM.Cli.csproj), and skips
# the native compile when its sources have not changed.
# When the build output has not changed since the last install, nothing is copied.
# The last line on stdout is the installed command's path.
set -euo pipefail
SETUP_STEP=install
# shellcheck source=lib/on-error.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/on-error.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() {
  echo "install: ERROR: $*" >&2
  exit 1
}

if [ -n "${HOSTVM_PREFIX:-}" ]; then
  prefix=$HOSTVM_PREFIX
elif [ "$(id -u)" -eq 0 ]; then
  prefix=/usr/local
else
  prefix=$HOME/.local
fi
lib=$prefix/lib/hostvm
bin=$prefix/bin/hostvm

dotnet build -c Release src/HostVM.Cli -nologo -v quiet >&2 ||
  fail "dotnet build of src/HostVM.Cli failed (above)"

# The build output's fingerprint: every file's content and name. The same fingerprint means the
# same program, so an unchanged tree installs in well under a second.
out=src/HostVM.Cli/bin/Release/net10.0
stamp=$(cd "$out" && find . -type f ! -name '*.pdb' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-32)
if [ -f "$lib/.stamp" ] && [ "$(cat "$lib/.stamp")" = "$stamp" ] && [ -x "$lib/hostvm" ] && [ -L "$bin" ]; then
  echo "install: hostvm is up to date in $lib" >&2
  echo "$bin"
  exit 0
fi

mkdir -p "$prefix/lib" "$prefix/bin" || fail "cannot create $prefix/lib and $prefix/bin (set HOSTVM_PREFIX to a directory you can write)"
# Published next to the old copy and swapped in by renames, so a daemon or VM running the old
# copy keeps its files and a failed publish leaves the old one in place.
staging=$(mktemp -d "$prefix/lib/.hostvm.XXXXXX")
trap 'rm -rf "$staging"' EXIT
dotnet publish src/HostVM.Cli -c Release --no-build -nologo -v quiet -o "$staging" >&2 ||
  fail "dotnet publish of src/HostVM.Cli failed (above)"
[ -x "$staging/hostvm" ] || fail "the publish left no hostvm executable in $staging"
[ -x "$staging/hostvm-vmm" ] || fail "the publish left no hostvm-vmm executable in $staging (the NativeAOT build of src/HostVM.VmmHost: run scripts/deps.sh for clang and zlib1g-dev)"
echo "$stamp" >"$staging/.stamp"
chmod 755 "$staging"
if [ -e "$lib" ]; then
  old=$prefix/lib/.hostvm.old.$$
  mv "$lib" "$old"
  mv "$staging" "$lib"
  rm -rf "$old"
else
  mv "$staging" "$lib"
fi
trap - EXIT
ln -sfn "$lib/hostvm" "$bin"
echo "install: hostvm installed in $lib, command $bin" >&2
case ":$PATH:" in
*":$prefix/bin:"*) ;;
*) echo "install: $prefix/bin is not on your PATH; add it (e.g. export PATH=\"$prefix/bin:\$PATH\" in ~/.profile)" >&2 ;;
esac
echo "$bin"
