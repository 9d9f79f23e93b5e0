#!/usr/bin/env bash
# normlab train --resume against a damaged checkpoint, as a user meets it: one flipped byte in the
# tensor data makes --resume refuse with the file and the tensor named (exit 1, nothing
# retrained, the checkpoint left as it was) and `normlab inspect` refuse too; the intact
# checkpoint resumes and ends with exactly the loss of an uninterrupted run; a stale
# checkpoint.safetensors.tmp left by a crash is removed before the run writes.
. "$(dirname "$0")/lib.sh"

make_corpus "$TMP/corpus.txt"
cat > "$TMP/spec.json" <<JSON
{"model":{"n_layer":2,"d_model":32,"n_head":2,"seq_len":32},"data":{"path":"$TMP/corpus.txt"},
 "train":{"steps":3000,"batch_size":4,"warmup":5,"lr":0.003},
 "probe":{"every":5,"depth_every":500,"val_every":1000}}
JSON

# the reference, uninterrupted
"$NL" train "$TMP/spec.json" --out "$TMP/ref" 2>/dev/null
check "reference run" [ $? -eq 0 ]

# stopped by SIGTERM after its first periodic checkpoint (it checkpoints where it stops)
"$NL" train "$TMP/spec.json" --out "$TMP/run" --ckpt-every 100 2>/dev/null &
pid=$!
for _ in $(seq 1 1000); do
	[ -s "$TMP/run/checkpoint.safetensors" ] && break
	sleep 0.01
done
kill -TERM "$pid" 2>/dev/null; wait "$pid"
echo "  stopped after $(grep -c '"name":"loss"' "$TMP/run/metrics.jsonl") logged loss points"
cp "$TMP/run/checkpoint.safetensors" "$TMP/good.safetensors"
"$NL" inspect "$TMP/good.safetensors" > "$TMP/inspect.txt"
check "inspect verifies the checksums" grep -q '^# checksums: CRC-32C verified' "$TMP/inspect.txt"

# one flipped byte in the tensor data (the last 32 KiB of the file hold optim.v.* tensors)
cp "$TMP/good.safetensors" "$TMP/run/checkpoint.safetensors"
size=$(stat -c %s "$TMP/run/checkpoint.safetensors")
off=$((size - 20000))
byte=$(od -An -tu1 -j "$off" -N1 "$TMP/run/checkpoint.safetensors" | tr -d ' ')
printf "$(printf '\\%03o' $(( byte ^ 4 )))" | dd of="$TMP/run/checkpoint.safetensors" bs=1 seek="$off" conv=notrunc status=none
check "the byte changed" eval '! cmp -s "$TMP/good.safetensors" "$TMP/run/checkpoint.safetensors"'
cp "$TMP/run/checkpoint.safetensors" "$TMP/bad.safetensors"
cp "$TMP/run/metrics.jsonl" "$TMP/metrics.before"

"$NL" train "$TMP/spec.json" --out "$TMP/run" --resume 2>"$TMP/resume.err"
rc=$?
check "--resume refuses a corrupt checkpoint (exit $rc)" [ $rc -eq 1 ]
check "the message names the file" grep -q "cannot resume: $TMP/run/checkpoint.safetensors" "$TMP/resume.err"
check "the message names the tensor and the mismatch" grep -q 'tensor "optim\.v\..*": checksum mismatch' "$TMP/resume.err"
check "the corrupt checkpoint is left as it was" cmp -s "$TMP/bad.safetensors" "$TMP/run/checkpoint.safetensors"
check "the metrics are left as they were" cmp -s "$TMP/metrics.before" "$TMP/run/metrics.jsonl"
"$NL" inspect "$TMP/run/checkpoint.safetensors" >/dev/null 2>"$TMP/inspect.err"
check "inspect refuses it too" [ $? -eq 1 ]
check "inspect says why" grep -q 'checksum mismatch' "$TMP/inspect.err"
sed 's/^/  | /' "$TMP/resume.err" | head -3

# a stale temp file from a crash goes before the run writes; the good checkpoint resumes
cp "$TMP/good.safetensors" "$TMP/run/checkpoint.safetensors"
head -c 1000 /dev/zero > "$TMP/run/checkpoint.safetensors.tmp"
"$NL" train "$TMP/spec.json" --out "$TMP/run" --resume 2>"$TMP/resume2.err"
check "resume from the intact checkpoint (exit $?)" [ $? -eq 0 ]
check "the stale .tmp is removed" [ ! -e "$TMP/run/checkpoint.safetensors.tmp" ]
check "and said so" grep -q 'removed stale' "$TMP/resume2.err"
ref=$(grep -o '"loss":[^,]*' "$TMP/ref/summary.json")
got=$(grep -o '"loss":[^,]*' "$TMP/run/summary.json")
check "final loss bits equal the uninterrupted run's ($ref vs $got)" [ -n "$ref" ] && [ "$ref" = "$got" ]
check "loss series identical" cmp -s \
	<(grep '"kind":"scalar","name":"loss"' "$TMP/ref/metrics.jsonl") \
	<(grep '"kind":"scalar","name":"loss"' "$TMP/run/metrics.jsonl")
finish
