#!/usr/bin/env bash
# Boots the Debian 13 image (guest/debian/build.sh) under `hostvm run` and under QEMU (TCG, plain
# RV64GC as in compare-qemu.sh, the same OpenSBI fw_jump.bin and U-Boot (u-boot.elf for HostVM, whose
# --kernel takes an ELF or a Linux Image; u-boot.bin for QEMU), 1 hart, 1 GiB), alternating,
# each from a fresh qcow2 overlay on the template (so every run is a first boot: cloud-init runs,
# SSH host keys are made), and prints the median seconds from start to
#   ready  HOSTVM-DEBIAN-READY on the console (hostvm-ready.service, after multi-user.target)
#   ssh    the guest's sshd answering with its banner through the forwarded port
# and the ratios HostVM/QEMU. Console logs stay in the work directory if a run fails.
#
#   bench/debian-boot.sh [runs=3] [timeout-seconds=900]
#
# A benchmark, not a test: absolute times on a shared machine are noise; the ratio is the figure.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
limit=${2:-900}
debian=${HOSTVM_DEBIAN_DIR:-$(guest/debian/build.sh | tail -n 1)}
hostvm=${HOSTVM_BIN:-hostvm}
command -v "$hostvm" >/dev/null || { echo "bench: no '$hostvm' on PATH (scripts/install-hostvm.sh installs it)" >&2; exit 1; }
qemu_cpu="rv64,h=false,sstc=false,zba=false,zbb=false,zbc=false,zbs=false,Zihintpause=false"
out=$(mktemp -d /tmp/hostvm-bench-debian-XXXXXX)

# probe LOG PORT CMD...: runs CMD (the VM), copies its console to LOG, prints "ready ssh" seconds
# once both happened, then kills it. A port accepts as soon as the VMM listens (user networking
# forwards it); only an "SSH-" banner means the guest's sshd is there.
cat >"$out/probe.py" <<'PY'
import os, signal, socket, subprocess, sys, threading, time
log, port, limit, command = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
start = time.monotonic()
p = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
ready = None
def read():
    global ready
    seen = b""
    with open(log, "wb") as f:
        for chunk in iter(lambda: p.stdout.read1(4096), b""):
            f.write(chunk); f.flush()
            seen = (seen + chunk)[-4096:]
            if ready is None and b"HOSTVM-DEBIAN-READY" in seen:
                ready = time.monotonic() - start
threading.Thread(target=read, daemon=True).start()
ssh = None
try:
    while ssh is None or ready is None:
        if p.poll() is not None:
            sys.exit(f"probe: the VM ended ({p.returncode}) before it was ready (console: {log})")
        if time.monotonic() - start > limit:
            sys.exit(f"probe: not ready after {limit:.0f} s (console: {log})")
        if ssh is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        ssh = time.monotonic() - start
            except OSError:
                pass
        time.sleep(0.5)
    print(f"{ready:.1f} {ssh:.1f}")
finally:
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
PY

port=$((20000 + $$ % 20000))
overlay() { # a fresh first-boot disk
  rm -f "$out/overlay.qcow2"
  qemu-img create -q -f qcow2 -b "$debian/debian-13.qcow2" -F qcow2 "$out/overlay.qcow2"
}
run() { # engine run-number
  local log=$out/$1.$2.log t
  overlay
  if [ "$1" = hostvm ]; then
    t=$(python3 "$out/probe.py" "$log" "$port" "$limit" "$hostvm" run --firmware "$debian/fw_jump.bin" \
      --kernel "$debian/u-boot.elf" --drive "file=$out/overlay.qcow2" -m 1G --smp 1 \
      --net "user,hostfwd=tcp:127.0.0.1:$port-:22" --timeout "$limit") || exit 1
  else
    t=$(python3 "$out/probe.py" "$log" "$port" "$limit" qemu-system-riscv64 -M virt -cpu "$qemu_cpu" \
      -m 1G -smp 1 -nographic -bios "$debian/fw_jump.bin" -kernel "$debian/u-boot.bin" \
      -drive "file=$out/overlay.qcow2,if=virtio,format=qcow2" \
      -netdev "user,id=n,hostfwd=tcp:127.0.0.1:$port-:22" -device virtio-net-device,netdev=n) || exit 1
  fi
  echo "bench: $1 run $2: ready ${t% *} s, ssh ${t#* } s" >&2
  echo "$t" >>"$out/$1.times"
}

for i in $(seq 1 "$runs"); do
  run hostvm "$i"
  run qemu "$i"
done

python3 - "$out" "$runs" <<'PY'
import os, statistics, sys
out, runs = sys.argv[1], sys.argv[2]
med = {}
for e in ("hostvm", "qemu"):
    rows = [tuple(map(float, l.split())) for l in open(os.path.join(out, e + ".times"))]
    med[e] = (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows))
print(f"{'engine':7} {'ready s':>8} {'ssh s':>8}   (median of {runs} first boots each, alternating; 1 hart, 1 GiB)")
for e in ("hostvm", "qemu"):
    print(f"{e:7} {med[e][0]:8.1f} {med[e][1]:8.1f}")
print(f"ratio   HostVM/QEMU: ready {med['hostvm'][0] / med['qemu'][0]:.2f}x, ssh {med['hostvm'][1] / med['qemu'][1]:.2f}x")
PY
rm -rf "$out"
