#!/usr/bin/env bash
# Set-up command 1: installs what is missing, builds the guest images (cached) and HostVM,
# installs the `hostvm` command on PATH (scripts/install-hostvm.sh), then boots Linux under
# HostVM. Extra arguments go to `hostvm run` (e.g. --cpus 4).
set -euo pipefail
SETUP_STEP=boot
cd "$(dirname "$0")"
# shellcheck source=scripts/lib/on-error.sh
. scripts/lib/on-error.sh
scripts/deps.sh
guest_dir=$(guest/build.sh | tail -n 1)
hostvm=$(scripts/install-hostvm.sh | tail -n 1)
defaults=(--kernel "$guest_dir/Image" --initrd "$guest_dir/initramfs.cpio.gz")
# The guest's command line defaults to the serial console unless the caller gives its own.
case " $* " in *" --append "*) ;; *) defaults+=(--append "console=ttyS0") ;; esac
trap - ERR
exec "$hostvm" run "${defaults[@]}" "$@"
