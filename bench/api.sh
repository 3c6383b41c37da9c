#!/usr/bin/env bash
# The daemon's API under load (issue: access control and statistics):
#   GET /v1/vms with N VMs in the inventory (default 100), authenticated with a viewer token,
#   from wrk on loopback (2 threads, C connections, D seconds): requests/s and p50/p90/p99 latency.
#   For scale, the same run measures GET /openapi/v1.json (no token, no inventory read: a cached document).
# QEMU has no counterpart to this API, so there is no ratio here.
# Usage: bench/api.sh [N] [C] [D]. Needs the guest kernel (./test.sh builds it), curl, jq and wrk (scripts/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
C=${2:-16}
D=${3:-10}
G=${HOSTVM_GUEST_DIR:-$HOME/.cache/hostvm/guest/current}
H=src/HostVM.Cli/bin/Release/net10.0/hostvm
[ -x "$H" ] || dotnet build -c Release src/HostVM.Cli -nologo -v quiet >&2
work=$(mktemp -d /tmp/hostvm-bench-XXXXXX)
trap 'pkill -9 -f "$work" 2>/dev/null || true; rm -rf "$work"' EXIT

mkdir -p "$work/data/import"
cp "$G/Image" "$work/data/import/"
"$H" serve --data-dir "$work/data" --runtime-dir "$work/run" --listen 127.0.0.1:0 >"$work/serve.out" 2>&1 &
until grep -q 'data in' "$work/serve.out" 2>/dev/null; do sleep 0.05; done
U=$(grep -oE 'https?://127.0.0.1:[0-9]+' "$work/serve.out" | head -1)
sock() { curl -sf --unix-socket "$work/run/hostvm.sock" -X "$1" "http://localhost$2" -H 'Content-Type: application/json' ${3:+-d "$3"}; }
sock POST /v1/images '{"name":"guest","kernel":"Image"}' >/dev/null
for i in $(seq "$N"); do
  sock POST /v1/vms "{\"name\":\"vm$i\",\"image\":\"guest\",\"memory_mib\":64}" >/dev/null
done
T=$(sock POST /v1/tokens '{"role":"viewer","description":"bench"}' | jq -r .token)
[ "$(curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $T" "$U/v1/vms")" = 200 ]

run() { # label, then wrk's arguments
  local label=$1; shift
  wrk -t2 -c"$C" -d"${D}s" --latency "$@" >"$work/wrk.out"
  awk -v l="$label" '
    /Requests\/sec/ {rps=$2}
    /^ +50%/ {p50=$2} /^ +90%/ {p90=$2} /^ +99%/ {p99=$2}
    /Non-2xx/ {bad=$NF}
    END {printf "%s: %s req/s   p50 %s   p90 %s   p99 %s%s\n", l, rps, p50, p90, p99, bad ? "   NON-2XX: " bad : ""}' "$work/wrk.out"
}
echo "== GET /v1/vms, $N VMs in the inventory, viewer token, $C connections, ${D}s"
run "GET /v1/vms (authenticated)" -H "Authorization: Bearer $T" "$U/v1/vms"
echo "== for scale: GET /openapi/v1.json (no token, no inventory read, cached)"
run "GET /openapi/v1.json" "$U/openapi/v1.json"
echo "== the daemon after the run"
pid=$(pgrep -f "serve --data-dir $work/data" | head -1)
echo "daemon RSS $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status), $(ls /proc/$pid/task | wc -l) threads; bytes per answer $(curl -sk -H "Authorization: Bearer $T" "$U/v1/vms" | wc -c)"
