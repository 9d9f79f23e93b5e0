#!/usr/bin/env bash
# The libFuzzer harnesses (tests/fuzz/fuzz_*.c: spec parser, safetensors reader, sweep expander,
# the daemon's HTTP request path) under ASan+UBSan, FUZZ_TEST_SECONDS (default 15) each, so
# about a minute in all; `make fuzz FUZZ_SECONDS=N` runs them longer. Every checked-in input
# (regressions of bugs found so far included) is replayed first. A crash, leak, UBSan report,
# hang or broken invariant fails the test; a missing harness (no clang) fails it too.
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.." || exit 2
secs=${FUZZ_TEST_SECONDS:-15}
targets=()
for c in tests/fuzz/fuzz_*.c; do
	t=${c#tests/fuzz/fuzz_}
	targets+=("${t%.c}")
done
check "four harnesses" [ ${#targets[@]} -ge 4 ]
for t in "${targets[@]}"; do
	if out=$(FUZZ_BUILD=${BUILD:-build}/fuzz bash tests/fuzz/run.sh "$secs" "$t"); then
		ok
	else
		bad "fuzz_$t"
	fi
	echo "$out"
done
finish
