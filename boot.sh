#!/usr/bin/env bash
# Set-up command 1: installs what is missing, builds the guest images (cached) and HostVM,
# then boots Linux under HostVM. Extra arguments go to `hostvm run` (e.g. --cpus 4).
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh
guest_dir=$(guest/build.sh | tail -n 1)
dotnet build -c Release src/HostVM.Cli -nologo -v quiet >&2
defaults=(--kernel "$guest_dir/Image" --initrd "$guest_dir/initramfs.cpio.gz")
# The guest's command line defaults to the serial console unless the caller gives its own.
case " $* " in *" --append "*) ;; *) defaults+=(--append "console=ttyS0") ;; esac
exec dotnet src/HostVM.Cli/bin/Release/net10.0/hostvm.dll run "${defaults[@]}" "$@"
