# Sourced by every set-up script right after `set -euo pipefail`, with SETUP_STEP naming the
# script ("deps", "guest", ...). Under set -e any failing command ends the script; this makes
# sure that never happens silently: the command, its status and where it stood are printed,
# with what to do. Steps that can fail in expected ways print their own message first (die,
# run_logged); this line is the net under everything else.
set -o errtrace

report_unexpected_failure() {
    local status=$1 command=$2 line=$3 file=$4
    # A command substitution or pipeline runs in a subshell: the shell that waits for it fails
    # too and reports it there, once, with the line that started the step.
    [ "$BASH_SUBSHELL" -eq 0 ] || return 0
    printf '%s: ERROR: step `%s` failed (exit status %s) at %s line %s; if nothing above says why, run `bash -x %s` to see each step, and report it\n' \
        "${SETUP_STEP:-setup}" "$command" "$status" "${file##*/}" "$line" "$0" >&2
}

trap 'report_unexpected_failure $? "$BASH_COMMAND" "$LINENO" "${BASH_SOURCE[0]:-$0}"' ERR
