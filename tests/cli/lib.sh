# Shared helpers for the CLI tests: a temp dir, a tiny corpus the test writes itself, checks that
# count, and a summary line in the format tests/run.sh reads.
set -u
NL=${NORMLAB_BIN:-bin}/normlab
[ -x "$NL" ] || { echo "missing $NL (run make)"; exit 1; }
TMP=$(mktemp -d /tmp/nl_cli_XXXXXX)
trap 'rm -rf "$TMP"' EXIT
PASS=0; FAIL=0
ok()   { PASS=$((PASS + 1)); }
bad()  { FAIL=$((FAIL + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
finish() { echo "$(basename "$0" .sh): $PASS passed, $FAIL failed"; [ "$FAIL" -eq 0 ]; }

# A few hundred KB of word salad: enough for train and validation splits of any tiny model.
make_corpus() {
	local out=$1 words=(the norm of layer and variance grows with depth in pre post tanh residual stream a)
	local i r=12345
	{
		for ((i = 0; i < 30000; i++)); do
			r=$(( (r * 1103515245 + 12345) % 2147483648 ))
			printf '%s ' "${words[$((r / 65536 % 16))]}"
			(( i % 13 == 12 )) && printf '\n'
		done
	} > "$out"
}
