#!/usr/bin/env bash
# Real-size Gemma 2 programs on real XLA, in two halves (the device machine is lent in short slots).
#
# Here (writes the programs and Lapidary's cost.json for each into DIR, default .device/real):
#   bash bench/xla-verify/real-size.sh prepare [DIR]
# On the device (the `run` tool, carry [".device"], timeout ~400 s; the 27B whole program through XLA's own SPMD
# partitioner is left out: it did not finish in 120 s on the device's CPU):
#   bash bench/xla-verify/real-size.sh run [DIR]
#   2b_forward / 2b_train   one device, bf16, batch 1 × 2048: XLA's cost analysis vs ours, GPU time and memory
#   2b_train_partitioned    our per-device step on data=2,model=4 (8 CPU devices, compiled, not run)
#   2b_train_sharded        the whole step with mhlo.sharding, split by XLA's SPMD partitioner (compiled, not run)
#   27b_train_partitioned   27B's per-device step on data=2,model=4 (compiled, not run)
set -u
what=${1:-run}; D=${2:-.device/real}
if [ "$what" = prepare ]; then
  mkdir -p "$D"
  one() { # name, cli args...
    local name=$1; shift
    local tmp; tmp=$(mktemp -d)
    npx lapidary compile gemma2.model --target tpu "$@" -o "$tmp/o" > /dev/null || exit 1
    cp "$tmp/o/cost.json" "$D/${name}_cost.json"
    case "$name" in
      *_partitioned) cp "$tmp/o/partitioned.mlir" "$D/$name.mlir" ;;
      *) cp "$tmp/o/program.mlir" "$D/$name.mlir" ;;
    esac
    rm -rf "$tmp"
  }
  for m in forward train; do one "2b_$m" --variant 2b --chip h100 --chips 1 --mesh data=1 --mode "$m" --batch 1 --seq 2048; done
  mesh=(--chip v5e --topology 2x4 --mesh data=2,model=4 --strategy fsdp+tp --mode train --batch 2 --seq 2048)
  one 2b_train_partitioned --variant 2b "${mesh[@]}"
  one 2b_train_sharded --variant 2b "${mesh[@]}"
  one 27b_train_partitioned --variant 27b "${mesh[@]}"
  ls -la "$D"; exit 0
fi
OUT=${OUT:-/tmp/real-size}; mkdir -p "$OUT"; fails=0
step() { # name, timeout, command...
  local name=$1 t=$2; shift 2
  PYTHONUNBUFFERED=1 timeout "$t" "$@" > "$OUT/$name.log" 2>&1; local rc=$?
  echo "$name rc=$rc $(tail -n 1 "$OUT/$name.log" | cut -c1-1500)"
  [ "$rc" -eq 0 ] || fails=$((fails + 1))
}
for m in forward train; do step "2b_$m" 200 python3 bench/xla-verify/real_size.py "$D/2b_$m.mlir" "$D/2b_${m}_cost.json" --repeat 10; done
for p in 2b_train_partitioned 2b_train_sharded 27b_train_partitioned; do step "$p" 150 python3 bench/xla-verify/compile_sharded.py "$D/$p.mlir" 8 "$D/${p}_cost.json"; done
echo "failures: $fails"; exit "$fails"
