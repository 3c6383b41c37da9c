#!/usr/bin/env bash
# Console output throughput: the guest (shell mode) prints BYTES with `yes … | head -c BYTES` and a
# client counts what arrives until the end marker, in bytes per second:
#   1. through the daemon's WebSocket (GET /v1/vms/{vm}/console: VMM socket -> broker -> WebSocket)
#   2. straight from the VMM's console socket (the same VM, no daemon in the path)
#   3. QEMU's serial on a Unix socket (-chardev socket), same kernel and initramfs
# and the ratios. Usage: bench/console.sh [BYTES=1000000] [RUNS=3]. Needs the guest images (./test.sh
# builds them). A benchmark, not a test: on a shared machine the ratio is the figure to watch.
set -euo pipefail
cd "$(dirname "$0")/.."
BYTES=${1:-1000000}
RUNS=${2:-3}
G=${HOSTVM_GUEST_DIR:-$HOME/.cache/hostvm/guest/current}
H=${HOSTVM_BIN:-src/HostVM.Cli/bin/Release/net10.0/hostvm}
[ -x "$H" ] || dotnet build -c Release src/HostVM.Cli -nologo -v quiet >&2
work=$(mktemp -d /tmp/hostvm-bench-console-XXXXXX)
trap 'pkill -9 -f "$work" 2>/dev/null || true; rm -rf "$work"' EXIT

mkdir -p "$work/data/import"
cp "$G/Image" "$G/initramfs.cpio.gz" "$work/data/import/"
"$H" serve --data-dir "$work/data" --runtime-dir "$work/run" --listen 127.0.0.1:0 >"$work/serve.out" 2>&1 &
until grep -q 'data in' "$work/serve.out" 2>/dev/null; do sleep 0.05; done
U=$(grep -o 'https://127.0.0.1:[0-9]*' "$work/serve.out" | head -1)
T=$(grep -o 'hvt_[A-Za-z0-9_-]*' "$work/serve.out" | head -1)   # the admin token of the first start
api() { curl -sf --unix-socket "$work/run/hostvm.sock" -X "$1" "http://localhost$2" -H 'Content-Type: application/json' ${3:+-d "$3"}; }
api POST /v1/images '{"name":"guest","kernel":"Image","initrd":"initramfs.cpio.gz","boot_args":"console=ttyS0 quiet hostvm.mode=shell"}' >/dev/null
id=$(api POST /v1/vms '{"name":"loud","image":"guest","memory_mib":128,"start":true}' | jq -r .id)

qemu-system-riscv64 -machine virt -m 128M -display none -monitor none -bios "$G/fw_jump.bin" \
  -kernel "$G/Image" -initrd "$G/initramfs.cpio.gz" -append "console=ttyS0 quiet hostvm.mode=shell" \
  -chardev "socket,id=con,path=$work/qemu.sock,server=on,wait=off" -serial chardev:con >"$work/qemu.out" 2>&1 &
until [ -S "$work/qemu.sock" ]; do sleep 0.05; done

python3 - "$U" "$work/run/vms/$id/console.sock" "$work/qemu.sock" "$BYTES" "$RUNS" "$T" "$work/data/tls/server.crt" <<'PY'
import base64, os, socket, ssl, statistics, struct, sys, time
url, vmm_sock, qemu_sock, nbytes, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
token, cert = sys.argv[6], sys.argv[7]

class Raw:  # a Unix stream socket: bytes both ways
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX); self.s.connect(path)
    def send(self, data): self.s.sendall(data)
    def recv(self): return self.s.recv(65536)

class WebSocket:  # just enough of RFC 6455 for a client: masked binary frames out, unmasked frames in
    def __init__(self, url, path):
        host, port = url.removeprefix("https://").split(":")
        # wss: the daemon's own certificate as the only CA (its names include 127.0.0.1), and the token.
        self.s = ssl.create_default_context(cafile=cert).wrap_socket(socket.create_connection((host, int(port))), server_hostname=host)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       f"Authorization: Bearer {token}\r\n"
                       f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf: self.buf += self.s.recv(4096)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]: sys.exit(f"bench: the console refused the WebSocket: {head!r}")
    def send(self, data):
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x82]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
        self.s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
    def need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(1 << 20)
            if not chunk: raise EOFError
            self.buf += chunk
    def recv(self):
        self.need(2)
        op, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
        at = 2
        if n == 126: self.need(4); n = struct.unpack(">H", self.buf[2:4])[0]; at = 4
        elif n == 127: self.need(10); n = struct.unpack(">Q", self.buf[2:10])[0]; at = 10
        self.need(at + n)
        payload, self.buf = self.buf[at:at + n], self.buf[at + n:]
        if op == 8: raise EOFError(payload[2:].decode(errors="replace"))
        return payload

def until(conn, marker, timeout=600):
    seen, total, end = b"", 0, time.time() + timeout
    while marker not in seen:
        if time.time() > end: sys.exit(f"bench: no {marker!r} after {timeout} s")
        chunk = conn.recv()
        total += len(chunk)
        seen = (seen + chunk)[-4096:]
    return total

def probe(conn, timeout=600):
    """Types a computed marker every 2 s until the shell answers (QEMU drops output while no client is connected)."""
    conn.s.settimeout(2)
    end = time.time() + timeout
    seen = b""
    while b"PROBE-READY-4" not in seen:
        if time.time() > end: sys.exit("bench: the QEMU guest's shell did not answer")
        conn.send(b"echo PROBE-READY-$((2+2))\n")
        try:
            while b"PROBE-READY-4" not in seen: seen = (seen + conn.recv())[-4096:]
        except socket.timeout:
            pass
    conn.s.settimeout(None)

def throughput(conn, label):
    if label == "qemu": probe(conn)
    conn.send(b"stty -echo\n")  # the command line itself would count as output otherwise
    rates = []
    for i in range(runs):
        marker = f"FLOOD-DONE-{i}-$((6*7))"
        conn.send(f"echo SYNC-{i}-$((1+1))\n".encode()); until(conn, f"SYNC-{i}-2".encode())
        start = time.time()
        conn.send(f"yes HOSTVM-FLOOD-LINE-0123456789 | head -c {nbytes}; echo {marker}\n".encode())
        got = until(conn, f"FLOOD-DONE-{i}-42".encode())
        rates.append(got / (time.time() - start))
    conn.send(b"stty echo\n")
    return statistics.median(rates), min(rates), max(rates)

def wait_shell(path):
    c = Raw(path); until(c, b"HOSTVM-SHELL-READY"); return c

raw = wait_shell(vmm_sock)  # the VMM replays its output, so this also waits for the HostVM guest's shell
results = {}
results["hostvm websocket"] = throughput(WebSocket(url, "/v1/vms/loud/console?replay=0"), "ws")
raw.s.close()
results["hostvm vmm socket"] = throughput(Raw(vmm_sock), "raw")
results["qemu serial socket"] = throughput(Raw(qemu_sock), "qemu")
print(f"console output throughput: {nbytes} bytes per run, median of {runs} (min-max), KB/s = 1000 bytes/s")
for k, (med, lo, hi) in results.items():
    print(f"  {k:20} {med/1000:9.1f} KB/s   ({lo/1000:.1f}-{hi/1000:.1f})")
ws, vmm, q = results["hostvm websocket"][0], results["hostvm vmm socket"][0], results["qemu serial socket"][0]
print(f"  ratio websocket/vmm socket: {ws/vmm:.2f}   websocket/qemu: {ws/q:.2f}   vmm socket/qemu: {vmm/q:.2f}")
PY
