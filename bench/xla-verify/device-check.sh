#!/usr/bin/env bash
# Every real-XLA check of the TPU backend's programs in one device call (the device machine is lent in short slots).
#
# Here (before the call):
#   npx esbuild --bundle --platform=node bench/xla-verify/prepare.ts --outfile=/tmp/prep.js && node /tmp/prep.js .device/xla
#   cp ../shared/device/verify_xla.py .device/
# On the device (the `run` tool, carry [".device"], timeout ~300 s):
#   bash bench/xla-verify/device-check.sh .device/xla
# Each check's last output line (verify_xla.py's JSON summary, or run_partitioned.py's) goes to $OUT/summary.jsonl
# with the check's name; a failing check does not stop the others; the exit status is the number of failures.
set -u
D=${1:-.device/xla}
V=${VERIFY:-.device/verify_xla.py}
OUT=${OUT:-/tmp/xla-check}
mkdir -p "$OUT"
: > "$OUT/summary.jsonl"
fails=0

check() { # name, command...
  local name=$1; shift
  local log="$OUT/$name.log"
  local t0=$SECONDS
  "$@" > "$log" 2>&1
  local rc=$?
  local last
  last=$(tail -n 1 "$log" | tr -d '\n')
  case "$last" in \{*) ;; *) last=$(printf '%s' "$last" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))') ;; esac
  printf '{"check": "%s", "rc": %d, "s": %d, "last": %s}\n' "$name" "$rc" "$((SECONDS - t0))" "$last" >> "$OUT/summary.jsonl"
  printf '%-28s rc=%d %3ds  %s\n' "$name" "$rc" "$((SECONDS - t0))" "$(tail -n 1 "$log" | cut -c1-160)"
  [ "$rc" -eq 0 ] || fails=$((fails + 1))
}

# Inline programs (checked before; rerun as the baseline of this session).
check tiny_mlir          python3 "$V" "$D/tiny.mlir" --inputs "$D/in.safetensors" --expected "$D/logits.safetensors" --cost
# Layer functions (func.call / call): first run on real XLA in stop 13 (docs/tpu.md).
check tiny_fns_mlir      python3 "$V" "$D/tiny_fns.mlir" --inputs "$D/in.safetensors" --expected "$D/logits.safetensors" --cost
check tiny_fns_hlo       python3 "$V" "$D/tiny_fns.hlo" --inputs "$D/in.safetensors" --expected "$D/logits.safetensors"
check sharded_mlir       python3 "$V" "$D/sharded.mlir" --partitions 8 --inputs "$D/in.safetensors" --expected "$D/logits.safetensors"
check sharded_hlo        python3 "$V" "$D/sharded.hlo" --partitions 8 --inputs "$D/in.safetensors" --expected "$D/logits.safetensors"
check partitioned        python3 bench/xla-verify/run_partitioned.py "$D"
check train_fns_mlir     python3 "$V" "$D/train_fns.mlir" --inputs "$D/train_in.safetensors" --expected "$D/train_expected.safetensors" --cost
check train_fns_hlo      python3 "$V" "$D/train_fns.hlo" --inputs "$D/train_in.safetensors" --expected "$D/train_expected.safetensors"
# The step as emitted by default (bf16, optimizer and fp32 master weights in f32): the f32 update checked exactly.
check train_bf16         python3 bench/xla-verify/run_bf16.py "$D/train_bf16.mlir" "$D/train_in.safetensors" "$D/train_expected.safetensors" "$D/train_names.json"
check train_sharded      python3 "$V" "$D/train_sharded.mlir" --partitions 8 --inputs "$D/train_in.safetensors" --expected "$D/train_expected.safetensors"
for p in train_ train_m4_ train_d2m2_; do
  check "${p}partitioned"  python3 bench/xla-verify/run_partitioned.py "$D" "$p"
done
# The decode step (KV caches in and out): first run on real XLA in stop 13. --cost: compare with decode_cost.json.
check decode_mlir        python3 "$V" "$D/decode.mlir" --inputs "$D/decode_in.safetensors" --expected "$D/decode_expected.safetensors" --cost
check decode_hlo         python3 "$V" "$D/decode.hlo" --inputs "$D/decode_in.safetensors" --expected "$D/decode_expected.safetensors"
check decode_sharded     python3 "$V" "$D/decode_sharded.mlir" --partitions 4 --inputs "$D/decode_in.safetensors" --expected "$D/decode_expected.safetensors"
check decode_partitioned python3 bench/xla-verify/run_partitioned.py "$D" decode_
# GPU numerics of the training step (HIGHEST precision: exact fp32 matmuls).
check train_highest_gpu  python3 "$V" "$D/train_highest.mlir" --platform gpu --atol 2e-4 --repeat 5 --inputs "$D/train_in.safetensors" --expected "$D/train_expected.safetensors"

echo "failures: $fails (details: $OUT/*.log, $OUT/summary.jsonl)"
exit "$fails"
