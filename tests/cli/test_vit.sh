#!/usr/bin/env bash
# vit on Fashion-MNIST (Debian's dataset-fashion-mnist): d=64 L=4 batch 64, 14×14 patches, cls
# pooling, layernorm/pre, 300 steps (0.32 epochs) on 2 threads. The whole test set's accuracy at
# the end must reach 75% (chance: 10%); the summary reports it with the epochs, and `normlab grads`
# writes the batch as images [B,1,28,28] and targets [B]. Patch size decides how far 300 steps get
# (best of a few lr/warmup settings, 1 thread): 4×4 (49 patches) 70-71%, 7×7 (16) 74.4%, 14×14 (4)
# 79.4%; more tokens learn more slowly in a third of an epoch.
. "$(dirname "$0")/lib.sh"
[ -s /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] ||
	{ echo "missing Fashion-MNIST: apt-get install dataset-fashion-mnist"; exit 1; }

cat > "$TMP/vit.json" <<'JSON'
{"model":{"arch":"vit","n_layer":4,"d_model":64,"n_head":4,"patch":14},
 "train":{"steps":300,"batch_size":64,"lr":3e-3,"warmup":50,"weight_decay":0.05,"beta2":0.999,"grad_clip":0},
 "threads":2,"probe":{"every":10,"val_every":100,"val_batches":4}}
JSON
"$NL" train "$TMP/vit.json" --out "$TMP/vit" 2>"$TMP/vit.err"
check "vit run exit" [ $? -eq 0 ]
acc=$(sed 's/.*"val_acc":\([^,]*\),.*/\1/' "$TMP/vit/summary.json")
ep=$(sed 's/.*"epochs":\([^,]*\),.*/\1/' "$TMP/vit/summary.json")
tps=$(sed 's/.*"tokens_per_s":\([^,]*\),.*/\1/' "$TMP/vit/summary.json")
echo "figure: vit d=64 L=4 B=64: test accuracy $acc after 300 steps ($ep epochs), $tps tok/s on 2 threads"
check "test accuracy at least 0.75 ($acc)" awk -v a="$acc" 'BEGIN{exit !(a>=0.75)}'
check "epochs 0.32 ($ep)" [ "$ep" = "0.320" ]
check "train_acc and val_acc curves" bash -c "grep -q '\"name\":\"train_acc\"' '$TMP/vit/metrics.jsonl' && grep -q '\"name\":\"val_acc\"' '$TMP/vit/metrics.jsonl'"

"$NL" grads "$TMP/vit.json" --out "$TMP/g.safetensors" >/dev/null 2>"$TMP/g.err"
check "grads exit" [ $? -eq 0 ]
hdr=$(head -c 100000 "$TMP/g.safetensors" | strings | head -n 1)
check "batch.images [64,1,28,28]" bash -c "echo '$hdr' | grep -q '\"batch.images\":{\"dtype\":\"F32\",\"shape\":\[64,1,28,28\]'"
check "batch.targets [64]" bash -c "echo '$hdr' | grep -q '\"batch.targets\":{\"dtype\":\"I32\",\"shape\":\[64\]'"
check "head.weight [10,64]" bash -c "echo '$hdr' | grep -q '\"head.weight\":{\"dtype\":\"F32\",\"shape\":\[10,64\]'"
finish
