#!/usr/bin/env bash
# Runs every test, each in its own process with a timeout: the unit binaries in $BUILD/tests and
# the scripts in tests/cli. Prints one line per test and, last, "N passed, N failed".
set -u
BUILD=${BUILD:-build}
BIN=${NORMLAB_BIN:-bin}
export NORMLAB_BIN=$BIN BUILD
cd "$(dirname "$0")/.." || exit 2
pass=0; fail=0; failed=()
run_one() {   # name timeout cmd...
	local name=$1 limit=$2; shift 2
	local log start rc
	log=$(mktemp)
	start=$(date +%s)
	timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
	rc=$?
	local secs=$(( $(date +%s) - start ))
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1)); printf 'ok    %-28s %4ss  %s\n' "$name" "$secs" "$(tail -n 1 "$log")"
		grep '^figure: ' "$log" | sed 's/^figure: /      figure: /'   # measurements worth seeing
	else
		fail=$((fail + 1)); failed+=("$name")
		[ $rc -eq 124 ] && echo "      (timed out after ${limit}s)" >>"$log"
		printf 'FAIL  %-28s %4ss  (exit %d)\n' "$name" "$secs" "$rc"
		sed 's/^/      | /' "$log" | tail -n 40
	fi
	rm -f "$log"
}
for t in "$BUILD"/tests/*; do
	[ -x "$t" ] || continue
	run_one "$(basename "$t")" 600 "$t"
done
for s in tests/cli/test_*.sh; do
	run_one "$(basename "$s" .sh)" 900 bash "$s"
done
echo
[ $fail -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
