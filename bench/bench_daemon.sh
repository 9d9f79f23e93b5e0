#!/usr/bin/env bash
# The daemon's overhead on one run: the same spec trained by `normlab train` and by normlabd
# (submit over HTTP, wait for `succeeded`), timed in one run on this machine; prints both and the
# ratio. The daemon stores every metric in SQLite and serves the API meanwhile; the CLI writes
# JSON lines. Prints figures only.
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
echo "$TOKEN bench admin" > "$TMP/tokens"
SPEC="{\"name\":\"bench\",\"model\":{\"n_layer\":4,\"d_model\":128},\"train\":{\"steps\":$STEPS},\"threads\":1}"
echo "$SPEC" > "$TMP/spec.json"

t0=$(date +%s.%N)
NORMLAB_DATA_DIR=$DATA "$BIN/normlab" train "$TMP/spec.json" --out "$TMP/cli" 2>/dev/null
t1=$(date +%s.%N)
cli=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')

PORT=$(( 30000 + RANDOM % 20000 ))
"$BIN/normlabd" --listen 127.0.0.1:$PORT --db "$TMP/db/n.db" --runs "$TMP/runs" --tokens "$TMP/tokens" \
	--data-dir "$DATA" --workers 1 --thread_budget 1 --log-level warn 2>"$TMP/daemon.log" &
DPID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/api/v1/health" >/dev/null && break; sleep 0.05; done
t0=$(date +%s.%N)
id=$(curl -sf -H "Authorization: Bearer $TOKEN" -d "$SPEC" "http://127.0.0.1:$PORT/api/v1/experiments" \
	| grep -o '"id":[0-9]*' | head -1 | cut -d: -f2)
until curl -sf "http://127.0.0.1:$PORT/api/v1/experiments/$id" | grep -q '"status":"succeeded"'; do
	sleep 0.05
done
t1=$(date +%s.%N)
dmn=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
points=$(curl -sf "http://127.0.0.1:$PORT/metrics" | awk '/^normlab_points_written_total/ {print $2}')
tok=$(( STEPS * 16 * 128 ))
printf 'one run, L=4 d=128 T=128 B=16, %d steps, 1 thread (default probes)\n' "$STEPS"
printf '  normlab train:  %6.2f s  %8.0f tok/s\n' "$cli" "$(awk -v t="$tok" -v s="$cli" 'BEGIN{print t/s}')"
printf '  normlabd:       %6.2f s  %8.0f tok/s  (submit to succeeded over HTTP; %s values stored)\n' \
	"$dmn" "$(awk -v t="$tok" -v s="$dmn" 'BEGIN{print t/s}')" "$points"
printf '  daemon / CLI wall time: %.3f\n' "$(awk -v a="$dmn" -v b="$cli" 'BEGIN{print a/b}')"
