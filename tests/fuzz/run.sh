#!/usr/bin/env bash
# Runs libFuzzer harnesses: tests/fuzz/run.sh SECONDS TARGET... (targets: spec, safetensors,
# sweep, http; the binaries are $FUZZ_BUILD/fuzz_<target>, built by `make fuzz-build`).
# Each target runs for SECONDS under ASan+UBSan from the checked-in seeds (tests/fuzz/corpus/
# <target>, only read, regression inputs included, so every old bug is replayed first) and what
# earlier runs found ($FUZZ_BUILD/corpus/<target>, where new inputs go), with the target's
# dictionary. Prints `figure: fuzz_<target>: N execs in S s` for each. A crash, leak, UBSan
# report, timeout (30 s for one input) or broken invariant fails the target: its report is
# printed and the input saved under $FUZZ_BUILD/artifacts/<target>/. Exit status 1 if any failed.
set -u
[ $# -ge 2 ] || { echo "usage: $0 SECONDS TARGET..." >&2; exit 2; }
secs=$1; shift
cd "$(dirname "$0")/../.." || exit 2
FUZZ_BUILD=${FUZZ_BUILD:-${BUILD:-build}/fuzz}
fail=0
for t in "$@"; do
	bin=$FUZZ_BUILD/fuzz_$t
	if [ ! -x "$bin" ]; then
		echo "FAIL: fuzz_$t: $bin is missing (make fuzz-build; it needs clang)"
		fail=1
		continue
	fi
	corpus=$FUZZ_BUILD/corpus/$t
	art=$FUZZ_BUILD/artifacts/$t
	mkdir -p "$corpus" "$art"
	opts=(-max_total_time="$secs" -timeout=30 -print_final_stats=1 -artifact_prefix="$art/")
	[ -f "tests/fuzz/$t.dict" ] && opts+=(-dict="tests/fuzz/$t.dict")
	# requests a bit over the harness's 4 KiB body cap, so the 413 path is reachable
	[ "$t" = http ] && opts+=(-max_len=8192)
	log=$(mktemp)
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		"$bin" "${opts[@]}" "$corpus" "tests/fuzz/corpus/$t" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	if [ $rc -eq 0 ] && [ -n "$execs" ]; then
		echo "figure: fuzz_$t: $execs execs in $secs s"
	else
		fail=1
		echo "FAIL: fuzz_$t (exit $rc); the report, and the input under $art/:"
		grep -av '^#[0-9]\|^"\|^ *NEW_FUNC\|^INFO:' "$log" | tail -n 60
	fi
	rm -f "$log"
done
exit $fail
