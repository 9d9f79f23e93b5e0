#!/usr/bin/env bash
# The daemon's overhead on one run: the same spec trained by `normlab train` and by normlabd
# (submit over HTTP, wait for `succeeded`), timed in one run on this machine; prints both and the
# ratio. The daemon stores every metric in SQLite and serves the API meanwhile; the CLI writes
# JSON lines. Then the daemon's throughput with two one-thread jobs at once (two workers, two
# compute threads) against one job alone (issue 5, bar 5: target >= 1.8x). Prints figures only.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${NORMLAB_BIN:-bin}
STEPS=${STEPS:-300}
TMP=$(mktemp -d /tmp/nl_bench_daemon_XXXXXX)
DPID=
trap '[ -n "$DPID" ] && { kill -TERM $DPID 2>/dev/null; wait $DPID 2>/dev/null; }; rm -rf "$TMP"' EXIT
DATA=$(pwd)/var/data
[ -s "$DATA/kjv.txt" ] || { echo "run make data first"; exit 1; }
TOKEN=tok-bench-0123456789abcdef
echo "$TOKEN bench admin" > "$TMP/tokens"; chmod 600 "$TMP/tokens"
SPEC="{\"name\":\"bench\",\"model\":{\"n_layer\":4,\"d_model\":128},\"train\":{\"steps\":$STEPS},\"threads\":1}"
echo "$SPEC" > "$TMP/spec.json"

t0=$(date +%s.%N)
NORMLAB_DATA_DIR=$DATA "$BIN/normlab" train "$TMP/spec.json" --out "$TMP/cli" 2>/dev/null
t1=$(date +%s.%N)
cli=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')

PORT=$(( 30000 + RANDOM % 20000 ))
"$BIN/normlabd" --listen 127.0.0.1:$PORT --db "$TMP/db/n.db" --runs "$TMP/runs" --tokens "$TMP/tokens" \
	--data-dir "$DATA" --workers 2 --thread_budget 2 --log-level warn 2>"$TMP/daemon.log" &
DPID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/api/v1/health" >/dev/null && break; sleep 0.05; done
submit() {   # seed -> id
	curl -sf -H "Authorization: Bearer $TOKEN" -d "${SPEC%\}},\"seed\":$1}" \
		"http://127.0.0.1:$PORT/api/v1/experiments" | grep -o '"id":[0-9]*' | head -1 | cut -d: -f2
}
wait_done() {   # poll-interval id...
	local dt=$1 id
	shift
	for id in "$@"; do
		until curl -sf "http://127.0.0.1:$PORT/api/v1/experiments/$id" | grep -q '"status":"succeeded"'; do
			sleep "$dt"
		done
	done
}
elapsed() {   # id -> the run's elapsed_s as the daemon recorded it (start to finish)
	curl -sf "http://127.0.0.1:$PORT/api/v1/experiments/$1" | grep -o '"elapsed_s":[0-9.eE+-]*' | cut -d: -f2
}
# one run, timed from submit to `succeeded` over HTTP (one core is free for the polling)
t0=$(date +%s.%N)
id=$(submit 0)
wait_done 0.05 "$id"
t1=$(date +%s.%N)
dmn=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
# throughput: the daemon's own start-to-finish times (both cores are busy; polling twice a
# second keeps curl off them)
one=$(elapsed "$id")
id1=$(submit 1)
id2=$(submit 2)
wait_done 0.5 "$id1" "$id2"
two=$(awk -v a="$(elapsed "$id1")" -v b="$(elapsed "$id2")" 'BEGIN{print (a > b ? a : b)}')
points=$(curl -sf "http://127.0.0.1:$PORT/metrics" | awk '/^normlab_points_written_total/ {print $2}')
tok=$(( STEPS * 16 * 128 ))
printf 'one run, L=4 d=128 T=128 B=16, %d steps, 1 thread (default probes)\n' "$STEPS"
printf '  normlab train:  %6.2f s  %8.0f tok/s\n' "$cli" "$(awk -v t="$tok" -v s="$cli" 'BEGIN{print t/s}')"
printf '  normlabd:       %6.2f s  %8.0f tok/s  (submit to succeeded over HTTP; %s values stored)\n' \
	"$dmn" "$(awk -v t="$tok" -v s="$dmn" 'BEGIN{print t/s}')" "$points"
printf '  daemon / CLI wall time: %.3f\n' "$(awk -v a="$dmn" -v b="$cli" 'BEGIN{print a/b}')"
printf 'two one-thread runs at once (2 workers, thread budget 2), same spec, seeds 1 and 2\n'
printf '  one run alone:  %6.2f s  %8.0f tok/s  (elapsed_s, start to finish, as the daemon recorded it)\n' \
	"$one" "$(awk -v t="$tok" -v s="$one" 'BEGIN{print t/s}')"
printf '  two at once:    %6.2f s (the later finish)  %8.0f tok/s\n' "$two" "$(awk -v t="$tok" -v s="$two" 'BEGIN{print 2*t/s}')"
printf '  throughput, two jobs / one: %.2fx (issue 5 target: >= 1.8x)\n' \
	"$(awk -v a="$one" -v b="$two" 'BEGIN{print 2*a/b}')"
