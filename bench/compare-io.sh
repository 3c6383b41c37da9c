#!/usr/bin/env bash
# Disk and network throughput of HostVM beside QEMU (TCG, the same RV64GC CPU model as
# bench/compare-qemu.sh, the same OpenSBI, kernel and initramfs, the same command line),
# alternating runs, measured inside the guest by hostvm.mode=iobench (guest/iobench.sh):
#
#   disk write  dd if=/dev/zero of=/dev/vda bs=1M count=DISK_MB oflag=direct
#   disk read   dd if=/dev/vda of=/dev/null bs=1M count=DISK_MB iflag=direct
#               (guest clock, as busybox dd reports it)
#   rand write  RAND_OPS 4 KiB writes at random places in those DISK_MB, O_DIRECT, one at a time
#   rand read   the same, reads (guest/randio.c; requests per second)
#               on a fresh 128 MiB image per run in each of FORMATS (raw: a sparse file; qcow2:
#               qemu-img create -f qcow2, 64 KiB clusters), the same file for both engines;
#   net         guest -> host TCP over user networking: udhcpc, then
#               dd if=/dev/zero bs=64k | nc 10.0.2.2 PORT; a listener on the host's
#               127.0.0.1:PORT counts the bytes until EOF and times them (host clock).
#
# Prints each run's figures, then per figure and format the min/median/max MB/s (MB = 10^6
# bytes; IOPS for random I/O) of each engine, the ratio HostVM/QEMU of the medians (above 1 =
# HostVM faster) and HostVM's qcow2/raw ratio.
#
#   bench/compare-io.sh [--qemu-only] [rounds=3]
#
#   --qemu-only   measure QEMU alone (no .NET build, no HostVM runs); to try the guest side
#   DISK_MB=64 NET_MB=32 RAND_OPS=2000 FORMATS="raw qcow2" (environment) change the amounts; HOSTVM="cmd ..." runs that instead of
#   the Release build of src/HostVM.Cli; KEEP=1 keeps the logs (the path is printed).
#
# HostVM is run as
#   hostvm run --firmware fw_jump.bin --kernel Image --initrd initramfs.cpio.gz -m 512M
#     --append '...' --drive file=IMG,format=FORMAT --net user,host-loopback=on (the guest sends to the host's 127.0.0.1)
# and the script stops with a message if `hostvm run --help` does not list --drive and --net.
# A benchmark, not a test: it prints figures; on a shared machine the ratio is the figure to watch.
set -euo pipefail
cd "$(dirname "$0")/.."

qemu_only=0
rounds=3
for arg in "$@"; do
  case $arg in
    --qemu-only) qemu_only=1 ;;
    -h|--help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *[!0-9]*|"") echo "bench: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    *) rounds=$arg ;;
  esac
done
[ "$rounds" -ge 1 ] || { echo "bench: rounds must be at least 1" >&2; exit 2; }
disk_mb=${DISK_MB:-64}
net_mb=${NET_MB:-32}
rand_ops=${RAND_OPS:-2000}
read -r -a formats <<<"${FORMATS:-raw qcow2}"
for f in "${formats[@]}"; do
  case $f in raw|qcow2) ;; *) echo "bench: FORMATS: '$f' is not raw or qcow2" >&2; exit 2 ;; esac
done
[ "$disk_mb" -le 120 ] || { echo "bench: DISK_MB=$disk_mb does not fit the 128 MiB image" >&2; exit 2; }

scripts/deps.sh
guest=$(guest/build.sh | tail -n 1)
qemu_cpu="rv64,h=false,sstc=false,zba=false,zbb=false,zbc=false,zbs=false,Zihintpause=false"
out=$(mktemp -d)
if [ "${KEEP:-0}" = 1 ]; then
  echo "bench: logs in $out" >&2
else
  trap 'rm -rf "$out"' EXIT
fi

engines=(qemu)
if [ "$qemu_only" -eq 0 ]; then
  if [ -n "${HOSTVM:-}" ]; then
    read -r -a hostvm <<<"$HOSTVM"
  else
    dotnet build -c Release src/HostVM.Cli -nologo -v quiet >/dev/null
    hostvm=(dotnet src/HostVM.Cli/bin/Release/net10.0/hostvm.dll)
  fi
  help=$("${hostvm[@]}" run --help 2>&1 || true)
  for opt in --drive --net; do
    if ! grep -q -- "$opt" <<<"$help"; then
      echo "bench: '${hostvm[*]} run' has no $opt option yet, so HostVM cannot get a disk and a NIC;" >&2
      echo "bench: build a HostVM that has --drive and --net, or run with --qemu-only to measure QEMU alone." >&2
      exit 1
    fi
  done
  engines=(hostvm qemu)
fi

# listen PORTFILE RESULTFILE: accepts one connection on 127.0.0.1 (a free port, written to
# PORTFILE), counts bytes until EOF, answers "HOSTVM-HOST-RECEIVED <bytes> <ms>" and closes,
# and writes "<bytes> <seconds>" (from accept to EOF) to RESULTFILE. Gives up after 900 s.
listen() {
  python3 - "$1" "$2" <<'PY'
import socket, sys, time
port_file, result_file = sys.argv[1], sys.argv[2]
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
s.settimeout(900)
with open(port_file + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
import os
os.rename(port_file + ".tmp", port_file)
c, _ = s.accept()
c.settimeout(900)
start = time.monotonic()
n = 0
buf = bytearray(1 << 20)
while True:
    k = c.recv_into(buf)
    if k == 0:
        break
    n += k
secs = time.monotonic() - start
c.sendall(f"HOSTVM-HOST-RECEIVED {n} {secs * 1000:.0f}\n".encode())
c.close()
with open(result_file, "w") as f:
    f.write(f"{n} {secs:.6f}\n")
PY
}

run_qemu() { # append, log
  timeout 900 qemu-system-riscv64 -M virt -cpu "$qemu_cpu" -m 512M -smp 1 -nographic \
    -bios "$guest/fw_jump.bin" -kernel "$guest/Image" -initrd "$guest/initramfs.cpio.gz" \
    -append "$1" \
    -drive "file=$disk,format=$format,if=none,id=d0" -device virtio-blk-device,drive=d0 \
    -netdev user,id=n0 -device virtio-net-device,netdev=n0 </dev/null >"$2" 2>&1
}
run_hostvm() { # append, log
  timeout 900 "${hostvm[@]}" run --firmware "$guest/fw_jump.bin" --kernel "$guest/Image" \
    --initrd "$guest/initramfs.cpio.gz" -m 512M --append "$1" \
    --drive "file=$disk,format=$format" --net user,host-loopback=on </dev/null >"$2" 2>"$2.err"
}

# marker LOG NAME: the words after "NAME " on the console line that has it
marker() { tr -d '\r' <"$1" | sed -n "s/^.*$2 //p" | head -n 1; }

for i in $(seq 1 "$rounds"); do
 for format in "${formats[@]}"; do
  disk=$out/disk.$format
  for e in "${engines[@]}"; do
    log=$out/$e.$format.$i.log
    rm -f "$disk" "$out/port" "$out/net.$e.$i"
    if [ "$format" = raw ]; then
      truncate -s 128M "$disk"
    else
      qemu-img create -q -f qcow2 "$disk" 128M
    fi
    listen "$out/port" "$out/net.$e.$i" &
    listener=$!
    for _ in $(seq 100); do [ -s "$out/port" ] && break; sleep 0.1; done
    [ -s "$out/port" ] || { echo "bench: the host listener did not start" >&2; exit 1; }
    port=$(cat "$out/port")
    append="console=ttyS0 quiet hostvm.mode=iobench hostvm.diskmb=$disk_mb hostvm.randops=$rand_ops hostvm.netmb=$net_mb hostvm.netport=$port"
    start=$(date +%s.%N)
    rc=0
    "run_$e" "$append" "$log" || rc=$?
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    # the guest is gone: a listener still waiting never got its connection
    [ -s "$out/net.$e.$i" ] || kill "$listener" 2>/dev/null || true
    wait "$listener" 2>/dev/null || true
    w=$(marker "$log" HOSTVM-DISK-WRITE)
    r=$(marker "$log" HOSTVM-DISK-READ)
    rw=$(marker "$log" HOSTVM-DISK-RANDWRITE)
    rr=$(marker "$log" HOSTVM-DISK-RANDREAD)
    s=$(marker "$log" HOSTVM-NET-SEND)
    h=$(cat "$out/net.$e.$i" 2>/dev/null || true)
    if [ -z "$w" ] || [ -z "$r" ] || [ -z "$rw" ] || [ -z "$rr" ] || [ -z "$s" ] || [ -z "$h" ] || [ "$rc" -ne 0 ] || ! grep -q HOSTVM-IOBENCH-DONE "$log"; then
      echo "bench: $e run $i ($format) failed (exit $rc); console log kept in $log:" >&2
      tr -d '\r' <"$log" | grep -E 'HOSTVM-' | sed 's/^/  /' >&2
      KEEP=1; trap - EXIT; exit 1
    fi
    if [ "$format" = qcow2 ] && ! qemu-img check -q "$disk" >"$log.check" 2>&1; then
      echo "bench: $e run $i left a qcow2 image qemu-img check does not pass: $(cat "$log.check")" >&2
      KEEP=1; trap - EXIT; exit 1
    fi
    printf '%s %s %s %s %s %s %s %s %s\n' "$e" "$format" "$i" "${w% *}" "${r% *}" "$rw" "$rr" "$h" "$wall" >>"$out/results"
  done
 done
done

python3 - "$out/results" "$rounds" "$disk_mb" "$net_mb" "$rand_ops" <<'PY'
import sys, statistics
path, rounds, disk_mb, net_mb, rand_ops = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
figures = ("disk write", "disk read", "rand write", "rand read", "net g->h")
runs = {}  # (engine, format) -> {figure: [value]}
print(f"{'engine':7} {'format':6} {'run':>3} {'write':>8} {'read':>8} {'rwrite':>8} {'rread':>8} {'net':>8} {'wall s':>7}")
print(f"{'':18} (MB/s for {disk_mb} MiB dd bs=1M direct; IOPS for {rand_ops} random 4 KiB requests; MB/s for {net_mb} MiB TCP)")
for line in open(path):
    e, f, i, wb, wms, rb, rms, rwn, rwms, rrn, rrms, nb, ns, wall = line.split()
    fig = {"disk write": int(wb) / max(int(wms), 1) / 1000,
           "disk read": int(rb) / max(int(rms), 1) / 1000,
           "rand write": int(rwn) / max(float(rwms), 1) * 1000,
           "rand read": int(rrn) / max(float(rrms), 1) * 1000,
           "net g->h": int(nb) / float(ns) / 1e6}
    for k, v in fig.items():
        runs.setdefault((e, f), {}).setdefault(k, []).append(v)
    print(f"{e:7} {f:6} {i:>3} " + " ".join(f"{fig[k]:8.1f}" for k in figures) + f" {float(wall):7.1f}")
print()
print(f"{'figure':11} {'format':6} {'engine':7} {'min':>8} {'median':>8} {'max':>8}   {rounds} runs each, alternating")
formats = sorted({f for (_, f) in runs}, key=lambda f: f != "raw")
for k in figures:
    for f in formats:
        med = {}
        for e in ("hostvm", "qemu"):
            if (e, f) not in runs:
                continue
            v = runs[(e, f)][k]
            med[e] = statistics.median(v)
            print(f"{k:11} {f:6} {e:7} {min(v):8.1f} {med[e]:8.1f} {max(v):8.1f}")
        if len(med) == 2:
            print(f"{k:11} {f:6} ratio   HostVM/QEMU median = {med['hostvm'] / med['qemu']:.2f}x")
    for e in ("hostvm", "qemu"):
        if (e, "raw") in runs and (e, "qcow2") in runs:
            q, r = statistics.median(runs[(e, "qcow2")][k]), statistics.median(runs[(e, "raw")][k])
            print(f"{k:11} {'':6} {e:7} qcow2/raw median = {q / r:.2f}x")
PY
