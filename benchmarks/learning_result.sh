#!/usr/bin/env bash
# Issue 7's learning benchmark (not a test): PPO microgrids on `default`, trained for at most
# 20 minutes each on this 2-core machine (both runs side by side, one core each), evaluated
# on 10 held-out seeds against the Nash-bidding baseline in the same market and against the
# same opponents:
#   1. ideal chain;
#   2. SBET with 10% message loss and 20% malicious validators (2 of 10 nodes).
# Usage: bash benchmarks/learning_result.sh   (STEPS=... to change the budget)
set -euo pipefail
BIN=${BIN:-.venv/bin}
STEPS=${STEPS:-3000000}
OUT=${OUT:-runs/learning}
IDEAL=(-o 'protocol="ideal"')
FAULTY=(-o message_loss=0.1 -o malicious_share=0.2 -o n_nodes=10)
mkdir -p "$OUT"
start=$(date +%s)
"$BIN/mgenv" train --scenario default "${IDEAL[@]}" --timesteps "$STEPS" --seed 0 --n-envs 8 \
    --out "$OUT" --name ideal > "$OUT/train_ideal.log" 2>&1 &
"$BIN/mgenv" train --scenario default "${FAULTY[@]}" --timesteps "$STEPS" --seed 0 --n-envs 8 \
    --out "$OUT" --name faulty > "$OUT/train_faulty.log" 2>&1 &
wait
echo "training wall time: $(( $(date +%s) - start )) s for both runs side by side"
"$BIN/mgenv" evaluate --scenario default "${IDEAL[@]}" --seeds 100-109 --out "$OUT/eval_ideal" \
    --policies "ppo=$OUT/ideal/model.zip,nash_bidding,truthful,fixed_quotes"
"$BIN/mgenv" evaluate --scenario default "${FAULTY[@]}" --seeds 100-109 --out "$OUT/eval_faulty" \
    --policies "ppo=$OUT/faulty/model.zip,nash_bidding,truthful,fixed_quotes"
