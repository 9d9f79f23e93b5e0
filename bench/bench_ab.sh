#!/usr/bin/env bash
# bench_ab.sh — this checkout's training speed against another revision's, measured in the same
# run: builds REV's `normlab` in a throw-away git worktree ($TMPDIR/normlab-ab/REV: outside build/,
# whose dependency files the Makefile reads), then trains the same
# spec with both binaries in interleaved rounds (the order alternates each round, so a slow
# minute on a shared machine lands on both) and prints each one's best and median tokens/s and
# the ratio. The default REV is c0b5d6e, the last commit before the model core (issue 10 asks
# gpt's throughput to stay within 3% of it).
#   bench/bench_ab.sh [REV]
# Knobs: AB_THREADS ("1 2"), AB_ROUNDS (5), AB_STEPS (40), AB_SPEC (the gpt of bench_train:
# L=4 d=256 h=4 T=128 B=16 layernorm/pre; probes and validation pushed past the last step so
# the figure is the training loop). Uses var/data/kjv.txt (make data). Asserts nothing.
set -euo pipefail

REV=${1:-c0b5d6e}
THREADS=${AB_THREADS:-1 2}
ROUNDS=${AB_ROUNDS:-5}
STEPS=${AB_STEPS:-40}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
NEW=bin/normlab
OLD_TREE=${TMPDIR:-/tmp}/normlab-ab/$REV
OLD=$OLD_TREE/bin/normlab

[ -x "$NEW" ] || { echo "bench_ab: $NEW is missing: run make all first" >&2; exit 1; }
[ -f var/data/kjv.txt ] || { echo "bench_ab: var/data/kjv.txt is missing: run make data" >&2; exit 1; }
if [ ! -x "$OLD" ]; then
	rm -rf "$OLD_TREE"
	git worktree prune
	git worktree add -q --detach "$OLD_TREE" "$REV"
	make -C "$OLD_TREE" -j2 bin/normlab >/dev/null
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
spec() {   # $1 = threads
	if [ -n "${AB_SPEC:-}" ]; then
		sed "s/\"threads\":[0-9]*/\"threads\":$1/" "$AB_SPEC"
	else
		printf '{"model":{"n_layer":4,"d_model":256,"n_head":4,"seq_len":128},'
		printf '"norm":{"type":"layernorm","placement":"pre"},'
		printf '"train":{"steps":%d,"batch_size":16,"lr":0.001,"warmup":4},' "$STEPS"
		printf '"probe":{"every":%d,"depth_every":%d,"samples_every":%d,"val_every":%d},' \
		       "$STEPS" "$STEPS" "$STEPS" "$STEPS"
		printf '"threads":%d}\n' "$1"
	fi
}
tps() {    # $1 = binary, $2 = spec file, $3 = out dir: prints "wall_tokens/s cpu_tokens/s"
	rm -rf "$3"
	/usr/bin/time -f "%U %S" -o "$3.time" "$1" train "$2" --out "$3" --data-dir var/data \
		>/dev/null 2>&1
	# tokens per CPU-second of the whole process: on a loaded machine the wall clock counts
	# the time other jobs held the core, the CPU clock does not (for 1 thread it is the
	# figure that compares; 2 threads count their pool's waits too)
	local tok cpu
	tok=$(grep -o '"tokens_per_s":[0-9.]*' "$3/summary.json" | cut -d: -f2)
	cpu=$(awk -v n="$((STEPS * 16 * 128))" '{ printf "%.0f", n / ($1 + $2) }' "$3.time")
	echo "$tok $cpu"
}
stats() {  # reads numbers, prints "best median"
	sort -g | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
		printf "%.0f %.0f\n", v[NR], m }'
}

echo "bench_ab: $(git rev-parse --short HEAD) (this checkout) against $REV, $ROUNDS rounds of $STEPS steps"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %-5s %12s %12s %12s %12s %8s %8s\n' threads clock new_best new_median old_best \
       old_median best median
row() {    # $1 threads, $2 clock name, $3 column (1 wall, 2 cpu)
	read -r nb nm < <(cut -d' ' -f"$3" "$TMP/new" | stats)
	read -r ob om < <(cut -d' ' -f"$3" "$TMP/old" | stats)
	printf '%-8s %-5s %12s %12s %12s %12s %8s %8s\n' "$1" "$2" "$nb" "$nm" "$ob" "$om" \
	       "$(awk -v a="$nb" -v b="$ob" 'BEGIN { printf "%.3f", a / b }')" \
	       "$(awk -v a="$nm" -v b="$om" 'BEGIN { printf "%.3f", a / b }')"
}
for t in $THREADS; do
	spec "$t" > "$TMP/spec.json"
	: > "$TMP/new"; : > "$TMP/old"
	for r in $(seq 1 "$ROUNDS"); do
		if [ $((r % 2)) = 1 ]; then
			tps "$NEW" "$TMP/spec.json" "$TMP/n" >> "$TMP/new"
			tps "$OLD" "$TMP/spec.json" "$TMP/o" >> "$TMP/old"
		else
			tps "$OLD" "$TMP/spec.json" "$TMP/o" >> "$TMP/old"
			tps "$NEW" "$TMP/spec.json" "$TMP/n" >> "$TMP/new"
		fi
	done
	row "$t" wall 1
	row "$t" cpu 2
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "(tokens/s of training, best and median over rounds: new / old, 1.000 = the same speed;"
echo " wall: tokens_per_s of summary.json; cpu: tokens per CPU-second of the whole process)"
