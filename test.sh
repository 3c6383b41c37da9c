#!/usr/bin/env bash
# Set-up command 2 (and what CI runs): installs what is missing, builds the guest images and the
# bare-metal test programs (cached), builds HostVM and runs every test project.
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh
export HOSTVM_GUEST_DIR HOSTVM_BAREMETAL_DIR
HOSTVM_GUEST_DIR=$(guest/build.sh | tail -n 1)
HOSTVM_BAREMETAL_DIR=$(guest/baremetal/build.sh | tail -n 1)
echo "test: guest images in $HOSTVM_GUEST_DIR, bare-metal programs in $HOSTVM_BAREMETAL_DIR" >&2

dotnet build -c Release HostVM.slnx -nologo -v quiet
results=$(mktemp -d)
status=0
dotnet test HostVM.slnx -c Release --no-build --logger "trx" --results-directory "$results" || status=$?

# One closing line for every project together: "N passed, N failed, N skipped".
python3 - "$results" <<'PY'
import sys, glob, xml.etree.ElementTree as ET
passed = failed = skipped = 0
for f in glob.glob(sys.argv[1] + "/*.trx"):
    c = ET.parse(f).getroot().find("{http://microsoft.com/schemas/VisualStudio/TeamTest/2010}ResultSummary/{http://microsoft.com/schemas/VisualStudio/TeamTest/2010}Counters")
    passed += int(c.get("passed")); failed += int(c.get("failed")) + int(c.get("error")) + int(c.get("timeout")) + int(c.get("aborted"))
    skipped += int(c.get("notExecuted"))
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
rm -rf "$results"
exit $status
