#!/usr/bin/env bash
# The README's curl examples, run as written against a live normlabd (only the API address and
# the token lines are replaced, so the test needs no fixed port): every command must succeed and
# answer with JSON that is not a problem (status 4xx/5xx) — except the two cancels, which may find
# a run already finished.
. "$(dirname "$0")/lib.sh"
NLD=${NORMLAB_BIN:-bin}/normlabd
TOKEN=tok-readme-0123456789abcdef
echo "$TOKEN reader admin" > "$TMP/tokens"; chmod 600 "$TMP/tokens"
block=$(awk '/<!-- curl-examples/ {on=1; next} on && /^```sh/ {inb=1; next} inb && /^```/ {exit} inb {print}' README.md)
check "README has the curl block" [ -n "$block" ]
for try in 1 2 3 4 5; do
	PORT=$(( 20000 + (RANDOM * 3 + $$ + try * 71) % 40000 ))
	"$NLD" --listen "127.0.0.1:$PORT" --db "$TMP/db/n.db" --runs "$TMP/runs" --tokens "$TMP/tokens" \
		--workers 3 --thread_budget 4 --log-level warn 2>>"$TMP/daemon.log" &
	DPID=$!
	for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/api/v1/health" >/dev/null && break; sleep 0.05; done
	curl -sf "http://127.0.0.1:$PORT/api/v1/health" >/dev/null && break
	kill -9 "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null
done
trap 'kill -9 $DPID 2>/dev/null; rm -rf "$TMP"' EXIT   # lib.sh's trap, plus the daemon
cd "$(dirname "$0")/../.." || exit 1
n=0
while IFS= read -r line; do
	case "$line" in
	API=*) API=http://127.0.0.1:$PORT/api/v1; continue ;;
	TOKEN=*) continue ;;
	curl*) ;;
	*) continue ;;
	esac
	n=$((n + 1))
	out=$(cd "$TMP" && ln -sfn "$OLDPWD/config" config 2>/dev/null; API=$API TOKEN=$TOKEN eval "$line")
	rc=$?
	if [[ "$line" == *"/cancel"* ]]; then
		check "cancel answers ($out)" grep -qE '"id"|not_cancellable' <<<"$out"
	elif [[ "$line" == *"-o run1.csv"* ]]; then
		check "CSV export written" grep -q '^step,name,value' "$TMP/run1.csv"
	else
		check "exit $rc: $line" [ $rc -eq 0 ]
		check "JSON answer, no problem: ${out:0:200}" eval '[ -n "$out" ] && ! grep -q "\"type\":\"/problems/" <<<"$out"'
	fi
	# let the first run record something before the metric queries
	[[ "$line" == *'$API/sweeps' && "$line" != *dry_run* ]] && sleep 3
done <<<"$block"
check "all README curl lines ran ($n)" [ "$n" -ge 13 ]
kill -TERM "$DPID"; wait "$DPID"
check "daemon stopped cleanly" [ $? -eq 0 ]
finish
