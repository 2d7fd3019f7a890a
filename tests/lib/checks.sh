# Counted PASS/FAIL checks shared by tests/mesh/check.sh and tests/upstream/check.sh (sourced).
# Needs $WORK (a scratch directory); the caller prints the totals from $passed and $failed.
# shellcheck shell=bash
passed=0
failed=0

pass() {
    echo "PASS $1"
    passed=$((passed + 1))
}

fail() {
    echo "FAIL $1"
    shift
    if [[ $# -gt 0 ]]; then
        printf '%s\n' "$@" | sed 's/^/    /'
    fi
    failed=$((failed + 1))
}

# check NAME COMMAND... — PASS when the command succeeds; on failure its output is shown.
check() {
    local name="$1"
    shift
    if "$@" >"$WORK/out" 2>&1; then
        pass "$name"
    else
        fail "$name" "$(tail -n 40 "$WORK/out")"
    fi
}

# reject NAME "NEEDLE|NEEDLE…" COMMAND... — the command must FAIL on a broken fixture, and its
# output must contain every needle (the file, the resource, the field), so a crash or an
# unrelated error does not count as catching the fixture.
reject() {
    local name="$1" needles="$2" needle
    shift 2
    if "$@" >"$WORK/out" 2>&1; then
        fail "$name" "the checker accepted a broken fixture:" "$(tail -n 20 "$WORK/out")"
        return
    fi
    IFS='|' read -r -a wanted <<<"$needles"
    for needle in "${wanted[@]}"; do
        if ! grep -qF -- "$needle" "$WORK/out"; then
            fail "$name" "rejected, but the message does not name '$needle':" "$(tail -n 20 "$WORK/out")"
            return
        fi
    done
    pass "$name"
}
