#!/usr/bin/env bash
# bench_peer.sh — normlab against a plain PyTorch reference (bench/peer_torch.py): the same GPT
# (d=256, 4 heads, d_ff 1024, T=128, B=16, byte vocabulary, Pre-LN, tied head, AdamW, clip 1.0)
# trained on the same thread count in the same run; prints tokens/s for each and the ratio.
# Every PyTorch run calls torch.set_num_threads(N) and sets OpenBLAS's own pool to N threads
# (torch does not; OpenBLAS would otherwise use every core even on a "1-thread" row).
# PyTorch runs in up to three configurations, each in its own process (the variables are read
# when the libraries load):
#   a  as installed: the environment as it is
#   b  tuned: OPENBLAS_CORETYPE=SkylakeX (torch's sgemm is Debian's OpenBLAS) and
#      OMP_WAIT_POLICY=PASSIVE (torch's OpenMP workers otherwise spin against OpenBLAS's threads)
#   c  tuned + AdamW's multi-tensor (foreach) update
# and normlab is compared with the best of them. (a) is measured on the layernorm row of each
# model and thread count only (it is the slowest by far and the norm does not change BLAS);
# PEER_A_ALL=1 measures it everywhere.
# The ceiling column: the machine's FMA peak on the row's threads (measured in this run by
# bench_train --ceiling) divided by the model's FLOPs per token: the tokens/s no program could
# beat on this CPU. "max" = ceiling / best PyTorch: where it is below 2, the issue's 2x target
# is out of reach of any implementation, not only of this one.
# Knobs: PEER_LAYERS ("4 8"), PEER_THREADS ("2 1"), PEER_NORMS, PEER_STEPS (timed steps, 12),
# NORMLAB_BIN (bin), BENCH_TRAIN (build/bench/bench_train), PYTHON (a python3 that imports
# torch). Asserts nothing about time.
set -euo pipefail

BIN=${NORMLAB_BIN:-bin}
BENCH_TRAIN=${BENCH_TRAIN:-build/bench/bench_train}
LAYERS=${PEER_LAYERS:-4 8}
THREADS=${PEER_THREADS:-2 1}
NORMS=${PEER_NORMS:-layernorm rmsnorm dyt derf}
STEPS=${PEER_STEPS:-12}
WARM=3
A_ALL=${PEER_A_ALL:-0}
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${NORMLAB_DATA_DIR:-var/data}/kjv.txt

# Debian's torch lives in /usr/bin/python3's dist-packages; a pyenv or venv python3 ahead of it
# on PATH does not see it.
PY=${PYTHON:-}
if [ -z "$PY" ]; then
	for p in python3 /usr/bin/python3; do
		if "$p" -c 'import torch' 2>/dev/null; then PY=$p; break; fi
	done
fi
[ -n "$PY" ] || { echo "bench_peer: no python3 with torch (apt-get install python3-torch)" >&2; exit 1; }
[ -x "$BIN/normlab" ] || { echo "bench_peer: $BIN/normlab not built" >&2; exit 1; }
[ -x "$BENCH_TRAIN" ] || { echo "bench_peer: $BENCH_TRAIN not built" >&2; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

TUNED=(OPENBLAS_CORETYPE=SkylakeX OMP_WAIT_POLICY=PASSIVE)

echo "normlab vs PyTorch: GPT d=256 h=4 d_ff=1024 T=128 B=16 vocab 256, Pre-LN, tied head, AdamW, clip 1.0"
echo "PyTorch: $("$PY" -c 'import torch; print(torch.__version__)') ($PY); normlab: $BIN/normlab"
"$PY" "$HERE/peer_torch.py" --show-config | grep -E 'CPU capability|BLAS_INFO|parallel backend|OpenBLAS core' |
	sed -e 's/^ *- */  /' -e 's/.*\(BLAS_INFO=[^,]*\).*\(LAPACK_INFO=[^,]*\).*/  \1, \2 (libblas.so.3 resolves to OpenBLAS)/' \
	    -e 's/^OpenBLAS core/  (a) OpenBLAS core/' -e 's/^ATen/  ATen/'
env "${TUNED[@]}" "$PY" "$HERE/peer_torch.py" --show-config | grep 'OpenBLAS core' | sed 's/^/  (b) /'
echo "  environment: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}"
read -r FMA1 FMA2 FPT4 FPT8 < <("$BENCH_TRAIN" --ceiling)
echo "FMA peak: $FMA1 GFLOP/s on 1 thread, $FMA2 on 2; model FLOPs per token (6N + attention):" \
	"L=4 $FPT4, L=8 $FPT8"
echo "timing: PyTorch $WARM warm-up + $STEPS timed steps; normlab $STEPS warm-up + $STEPS timed steps (tokens_per_s of the second probe interval)"
echo

# normlab: probe.every = STEPS and train.steps = 2·STEPS+1, so the tokens_per_s record at step
# 2·STEPS covers steps STEPS+1..2·STEPS: start-up, warm-up and the end-of-run probes fall outside.
normlab_tps() {   # L norm threads
	local dir="$TMP/nl-$1-$2-$3"
	cat > "$TMP/spec.json" <<EOF
{"model":{"n_layer":$1,"d_model":256,"n_head":4,"d_ff":1024,"seq_len":128},
 "norm":{"type":"$2","placement":"pre"},
 "train":{"steps":$((2 * STEPS + 1)),"batch_size":16},
 "probe":{"every":$STEPS,"depth_every":1000000000,"samples_every":1000000000,"val_every":1000000000},
 "threads":$3}
EOF
	"$BIN/normlab" train "$TMP/spec.json" --out "$dir" > "$dir.log" 2>&1 ||
		{ echo "bench_peer: normlab failed:" >&2; tail -5 "$dir.log" >&2; return 1; }
	grep "\"step\":$((2 * STEPS)),\"kind\":\"scalar\",\"name\":\"tokens_per_s\"" "$dir/metrics.jsonl" |
		sed 's/.*"value":\([0-9.eE+-]*\).*/\1/'
}

torch_tps() {   # config L norm threads
	local cfg=$1 L=$2 norm=$3 th=$4 envs=() extra=()
	case $cfg in
	b) envs=("${TUNED[@]}") ;;
	c) envs=("${TUNED[@]}"); extra=(--foreach) ;;
	esac
	env ${envs[@]+"${envs[@]}"} "$PY" "$HERE/peer_torch.py" --norm "$norm" --layers "$L" --threads "$th" \
		--warmup "$WARM" --steps "$STEPS" --data "$DATA" ${extra[@]+"${extra[@]}"} | awk '{print $2}'
}

printf '%-10s %-9s %3s | %11s | %9s %9s %9s | %9s %-4s | %7s | %8s %6s\n' model norm thr "normlab" \
	"torch(a)" "torch(b)" "torch(c)" "best" cfg "ratio" "ceiling" "max"
worst="" worst_max=""
for th in $THREADS; do
	for L in $LAYERS; do
		for norm in $NORMS; do
			nl=$(normlab_tps "$L" "$norm" "$th")
			declare -A tp=()
			for cfg in a b c; do
				if [ "$cfg" = a ] && [ "$A_ALL" != 1 ] && [ "$norm" != layernorm ]; then continue; fi
				tp[$cfg]=$(torch_tps "$cfg" "$L" "$norm" "$th")
			done
			best=0 bcfg=-
			for cfg in a b c; do
				v=${tp[$cfg]:-}
				if [ -n "$v" ] && awk -v x="$v" -v y="$best" 'BEGIN{exit !(x > y)}'; then best=$v bcfg=$cfg; fi
			done
			ratio=$(awk -v x="$nl" -v y="$best" 'BEGIN{printf "%.2f", x / y}')
			fma=$FMA1; [ "$th" = 2 ] && fma=$FMA2
			fpt=$FPT4; [ "$L" = 8 ] && fpt=$FPT8
			ceil=$(awk -v f="$fma" -v n="$fpt" 'BEGIN{printf "%.0f", f * 1e9 / n}')
			maxr=$(awk -v c="$ceil" -v y="$best" 'BEGIN{printf "%.2f", c / y}')
			printf '%-10s %-9s %3d | %11.0f | %9s %9s %9s | %9.0f %-4s | %6sx | %8s %5sx\n' "L=$L d=256" "$norm" "$th" \
				"$nl" "$(printf '%.0f' "${tp[a]:-0}" | sed 's/^0$/-/')" "$(printf '%.0f' "${tp[b]}")" \
				"$(printf '%.0f' "${tp[c]}")" "$best" "$bcfg" "$ratio" "$ceil" "$maxr"
			if [ -z "$worst_max" ] || awk -v x="$maxr" -v y="$worst_max" 'BEGIN{exit !(x < y)}'; then worst_max=$maxr; fi
			if [ -z "$worst" ] || awk -v x="$ratio" -v y="$worst" 'BEGIN{exit !(x < y)}'; then worst=$ratio; fi
			unset tp
		done
	done
done
echo
echo "tok/s = timed steps x B x T / seconds; ratio = normlab / best PyTorch configuration;"
echo "ceiling = FMA peak / FLOPs per token (no program beats it); max = ceiling / best PyTorch."
echo "target (issue 5): normlab >= 2x PyTorch's best configuration on every row; lowest ratio here ${worst}x ($(awk -v w="$worst" 'BEGIN{print (w >= 2 ? "met" : "NOT met")}'))"
echo "the 2x target needs max >= 2 on every row: the lowest max here is ${worst_max}x" \
	"($(awk -v w="$worst_max" 'BEGIN{print (w >= 2 ? "reachable in principle" : "beyond this CPU for any implementation")}'))"
