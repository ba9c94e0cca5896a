#!/usr/bin/env bash
# Score and compare the mid-training arms (recipes/midtrain_*.sh): TPT and its shuffled control (the same
# documents and trajectories, each document with another document's thinking). The paper's mid-training
# has no vanilla arm, so the baseline is the control: the factor of tpt against it is the pairing's effect.
#   CKPT=/ckpt MODEL=llama32_3b bash recipes/compare_midtrain.sh   (runs CKPT/mid-MODEL, CKPT/mid-MODEL-shuffled)
set -euo pipefail

CKPT=${CKPT:-/ckpt}
MODEL=${MODEL:-llama32_3b}
EVAL=${EVAL:-$CKPT/eval-mid-$MODEL}
TASKS=${TASKS:-gsm8k,math500,mmlu,arc_challenge}

tpt eval "$CKPT/mid-$MODEL" --tasks "$TASKS" --engine vllm --device cuda --output "$EVAL/tpt.jsonl"
tpt eval "$CKPT/mid-$MODEL-shuffled" --tasks "$TASKS" --engine vllm --device cuda --output "$EVAL/tpt-shuffled.jsonl"

tpt compare --arm tpt-shuffled="$EVAL/tpt-shuffled.jsonl" --arm tpt="$EVAL/tpt.jsonl" \
  --baseline tpt-shuffled --output "$EVAL/compare"
