#!/usr/bin/env bash
# normlab validate / grads / inspect / train / convert as a user runs them: bad specs get one clear
# line naming the field; grads writes every parameter and its gradient; a training run killed with
# SIGKILL and resumed ends with the same loss bits and the same metric lines as one that was never
# interrupted; SIGTERM checkpoints and exits 130; convert keeps the logits, its output fine-tunes,
# and a Post-LN source is refused naming the field.
. "$(dirname "$0")/lib.sh"

# ---- validate: each bad spec → exit 1, exactly one line on stderr, naming the field ----
SAN=${NORMLAB_SAN_BIN:-}
reject() {   # name json expected-pointer expected-word
	local name=$1 json=$2 ptr=$3 word=$4 f="$TMP/$1.json" out rc
	printf '%s' "$json" > "$f"
	if [ -n "$SAN" ]; then   # the same input through the ASan/UBSan build: no report, same answer
		out=$("$SAN" validate "$f" 2>&1 >/dev/null); rc=$?
		check "$name under ASan: exit $rc, $out" [ "$rc" -eq 1 ]
		check "$name under ASan: no sanitizer report" eval '! grep -q "Sanitizer\|runtime error" <<<"$out"'
	fi
	out=$("$NL" validate "$f" 2>&1 >/dev/null); rc=$?
	check "$name: exit code $rc" [ "$rc" -eq 1 ]
	check "$name: one line, got: $out" [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ]
	check "$name: names $ptr: $out" grep -qF -- "$ptr" <<<"$out"
	check "$name: says '$word': $out" grep -qiF -- "$word" <<<"$out"
	echo "  $name → $out"
}
reject bad_type   '{"norm":{"type":"dtyt"}}'                 '/norm/type'     'layernorm'
reject neg_layers '{"model":{"n_layer":-1}}'                 '/model/n_layer' '1..64'
reject heads      '{"model":{"d_model":100,"n_head":3}}'     '/model/n_head'  'divide'
reject huge       '{"model":{"n_layer":16,"d_model":2048}}'  '/model'         'limit'
reject unknown    '{"modle":{}}'                             '/modle'         'unknown'
full='{"name":"x","model":{"n_layer":2,"d_model":64},"norm":{"type":"dyt","placement":"peri"},"train":{"steps":10}}'
reject truncated  "${full:0:50}"                             'JSON'           'line'
printf '' > "$TMP/empty.json"
out=$("$NL" validate "$TMP/empty.json" 2>&1); check "empty file rejected" [ $? -eq 1 ]
out=$("$NL" validate "$TMP/nonexistent.json" 2>&1); check "missing file: $out" grep -q 'No such file' <<<"$out"

# a valid spec prints its canonical form and hash; key order and defaults do not change the hash
printf '%s' '{"seed":1,"norm":{"type":"layernorm"}}' > "$TMP/a.json"
printf '%s' '{"norm":{"placement":"pre"},"seed":1}' > "$TMP/b.json"
ha=$("$NL" validate "$TMP/a.json" | sed -n 's/^sha256 //p')
hb=$("$NL" validate "$TMP/b.json" | sed -n 's/^sha256 //p')
check "hash printed" [ ${#ha} -eq 64 ]
check "same science, same hash" [ "$ha" = "$hb" ]

# fuzz-ish: every prefix of a valid spec through the sanitized build never crashes
if [ -n "$SAN" ]; then
	crashes=0
	for ((i = 0; i <= ${#full}; i += 3)); do
		printf '%s' "${full:0:$i}" > "$TMP/prefix.json"
		"$SAN" validate "$TMP/prefix.json" >/dev/null 2>"$TMP/prefix.err"
		rc=$?
		{ [ $rc -gt 1 ] || grep -q 'Sanitizer\|runtime error' "$TMP/prefix.err"; } && crashes=$((crashes + 1))
	done
	check "prefixes of a spec under ASan: $crashes crashes" [ "$crashes" -eq 0 ]
fi

# ---- a tiny run on our own corpus ----
make_corpus "$TMP/corpus.txt"
cat > "$TMP/tiny.json" <<JSON
{"model":{"n_layer":2,"d_model":32,"n_head":2,"seq_len":32},"data":{"path":"$TMP/corpus.txt"},
 "train":{"steps":60,"batch_size":4,"warmup":5,"lr":0.003},
 "probe":{"every":1,"depth_every":20,"samples_every":30,"samples":32,"val_every":30}}
JSON

# grads: every parameter and its gradient, the batch, the loss
"$NL" grads "$TMP/tiny.json" --out "$TMP/g.safetensors" >/dev/null
check "grads exit" [ $? -eq 0 ]
"$NL" inspect "$TMP/g.safetensors" > "$TMP/g.txt"
np=$(grep -cvE '^(#|grad\.|batch\.|loss )' "$TMP/g.txt")
ng=$(grep -c '^grad\.' "$TMP/g.txt")
check "one gradient per parameter ($np params, $ng grads)" [ "$np" -eq "$ng" ] 
check "parameters present" [ "$np" -gt 20 ]
check "batch.inputs int32 [4,32]" grep -q '^batch.inputs I32 \[4,32\]' "$TMP/g.txt"
check "Linear weights stored [out,in]" grep -q '^blocks.1.mlp.fc.weight F32 \[128,32\]' "$TMP/g.txt"
loss=$(sed -n 's/^loss F32 \[\] .*value=//p' "$TMP/g.txt")
check "initial loss ≈ ln 256 = 5.55 (got $loss)" awk -v l="$loss" 'BEGIN{exit !(l>5.3 && l<5.8)}'

# the whole engine path (train with probes and samples, resume, grads) under ASan/UBSan
if [ -n "$SAN" ]; then
	"$SAN" train "$TMP/tiny.json" --out "$TMP/san" --ckpt-every 25 2>"$TMP/san.err"
	check "train under ASan: exit $?" [ $? -eq 0 ] || tail -5 "$TMP/san.err" >&2
	check "train under ASan: no report" eval '! grep -q "Sanitizer\|runtime error" "$TMP/san.err"'
	"$SAN" train "$TMP/tiny.json" --out "$TMP/san" --resume 2>"$TMP/san2.err"
	check "resume under ASan: no report" eval '! grep -q "Sanitizer\|runtime error" "$TMP/san2.err"'
	"$SAN" grads "$TMP/tiny.json" --ckpt "$TMP/san/checkpoint.safetensors" --out "$TMP/sg.safetensors" >/dev/null 2>"$TMP/san3.err"
	check "grads --ckpt under ASan: exit $?" [ $? -eq 0 ]
	check "grads under ASan: no report" eval '! grep -q "Sanitizer\|runtime error" "$TMP/san3.err"'
fi

# uninterrupted reference
"$NL" train "$TMP/tiny.json" --out "$TMP/ref" 2>/dev/null
check "reference run exit" [ $? -eq 0 ]
check "summary says succeeded" grep -q '"status":"succeeded"' "$TMP/ref/summary.json"
check "checkpoint written" [ -s "$TMP/ref/checkpoint.safetensors" ]
check "no temp files left" [ -z "$(ls "$TMP/ref" | grep '\.tmp$')" ]
check "60 loss lines" [ "$(grep -c '"name":"loss"' "$TMP/ref/metrics.jsonl")" -eq 60 ]

# killed with SIGKILL after its first periodic checkpoint, then resumed
slow="$TMP/slow.json"
sed 's/"steps":60/"steps":60/' "$TMP/tiny.json" > "$slow"
"$NL" train "$slow" --out "$TMP/kill" --ckpt-every 10 2>/dev/null &
pid=$!
for _ in $(seq 1 400); do
	[ -s "$TMP/kill/checkpoint.safetensors" ] && break
	sleep 0.01
done
kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
killed_at=$(grep -c '"name":"loss"' "$TMP/kill/metrics.jsonl" 2>/dev/null || echo 0)
echo "  killed after $killed_at logged steps"
"$NL" train "$slow" --out "$TMP/kill" --resume --ckpt-every 10 2>"$TMP/resume.err"
check "resume exit" [ $? -eq 0 ]
grep -q 'resuming' "$TMP/resume.err" || echo "  (the run had finished before the kill; resume is a no-op)"
ref_loss=$(grep -o '"loss":[^,]*' "$TMP/ref/summary.json")
res_loss=$(grep -o '"loss":[^,]*' "$TMP/kill/summary.json")
check "final loss bits equal after kill -9 + resume ($ref_loss vs $res_loss)" [ "$ref_loss" = "$res_loss" ]
check "loss series identical, no duplicate steps" cmp -s \
	<(grep '"kind":"scalar","name":"loss"' "$TMP/ref/metrics.jsonl") \
	<(grep '"kind":"scalar","name":"loss"' "$TMP/kill/metrics.jsonl")
check "final checkpoints identical" cmp -s "$TMP/ref/checkpoint.safetensors" "$TMP/kill/checkpoint.safetensors"

# SIGTERM: checkpoint, status interrupted, exit 130, and resume finishes identically
"$NL" train "$slow" --out "$TMP/term" 2>/dev/null &
pid=$!
for _ in $(seq 1 400); do
	[ "$(grep -c '"name":"loss"' "$TMP/term/metrics.jsonl" 2>/dev/null)" -ge 5 ] 2>/dev/null && break
	sleep 0.01
done
kill -TERM "$pid"; wait "$pid"; rc=$?
if [ $rc -eq 130 ]; then
	ok
	check "interrupted status" grep -q '"status":"interrupted"' "$TMP/term/summary.json"
	"$NL" train "$slow" --out "$TMP/term" --resume 2>/dev/null
	check "resume after SIGTERM" cmp -s "$TMP/ref/checkpoint.safetensors" "$TMP/term/checkpoint.safetensors"
else
	check "SIGTERM exit code $rc (0 only if it finished first)" [ $rc -eq 0 ]
fi

# ---- convert: a Pre-LN run as Pre-CRMSNorm; the written spec trains on from the checkpoint ----
"$NL" convert --ckpt "$TMP/ref/checkpoint.safetensors" --to crmsnorm --out "$TMP/crms" > "$TMP/conv.out" 2>&1
check "convert exits 0: $(cat "$TMP/conv.out")" [ $? -eq 0 ]
rel=$(sed -n 's/.*max |logit| = //p' "$TMP/conv.out")
check "convert: logits within 1e-5 ($rel)" awk -v r="$rel" 'BEGIN{exit !(r != "" && r < 1e-5)}'
check "convert wrote a crmsnorm spec" grep -q '"type":"crmsnorm"' "$TMP/crms/spec.json"
"$NL" train "$TMP/crms/spec.json" --out "$TMP/crms" --resume > /dev/null 2>&1
check "the converted model fine-tunes (--resume from step 0)" grep -q '"status":"succeeded"' "$TMP/crms/summary.json"
printf '%s' "{\"model\":{\"n_layer\":1,\"d_model\":16,\"n_head\":2,\"seq_len\":8},\"norm\":{\"placement\":\"post\"},\"data\":{\"path\":\"$TMP/corpus.txt\"},\"train\":{\"steps\":2,\"batch_size\":2}}" > "$TMP/post.json"
"$NL" train "$TMP/post.json" --out "$TMP/post" > /dev/null 2>&1
out=$("$NL" convert --ckpt "$TMP/post/checkpoint.safetensors" --to rmsnorm --out "$TMP/post2" 2>&1); rc=$?
check "convert refuses Post-LN naming the field: $out" eval '[ $rc -eq 1 ] && grep -q "/norm/placement" <<<"$out"'

# a run whose corpus is missing fails with a message naming data.path, and creates no summary
printf '%s' '{"data":{"path":"/nonexistent/corpus.txt"},"train":{"steps":2}}' > "$TMP/nodata.json"
out=$("$NL" train "$TMP/nodata.json" --out "$TMP/nodata" 2>&1); rc=$?
check "missing corpus: exit 1" [ $rc -eq 1 ]
check "missing corpus names data.path: $out" grep -q 'data.path' <<<"$out"
finish
