#!/usr/bin/env bash
# Score and compare the from-scratch arms (recipes/pretrain_8b_100b.sh or pretrain_8b_40b_constrained.sh):
# vanilla (raw), TPT, and the shuffled control (each document trained with another document's thinking:
# is the gain the pairing, or only more reasoning-looking tokens?). Every checkpoint of each run is scored
# (`tpt eval RUN`), then `tpt compare` writes the data-efficiency factor of each arm against raw with its
# interval, accuracy at the largest common token count, plots and a verdict per contrast.
#   CKPT=/ckpt SETTING=8b-100b bash recipes/compare_pretrain.sh       (runs CKPT/{raw,tpt,tpt-shuffled}-SETTING)
# More seeds per arm: list them, e.g. --arm tpt=EVAL/tpt-seed0.jsonl,EVAL/tpt-seed1.jsonl.
set -euo pipefail

CKPT=${CKPT:-/ckpt}
SETTING=${SETTING:-8b-100b}
EVAL=${EVAL:-$CKPT/eval-$SETTING}
TASKS=${TASKS:-gsm8k,math500,mmlu,arc_challenge}

tpt eval "$CKPT/raw-$SETTING" --tasks "$TASKS" --engine vllm --device cuda --output "$EVAL/raw.jsonl"
tpt eval "$CKPT/tpt-$SETTING" --tasks "$TASKS" --engine vllm --device cuda --output "$EVAL/tpt.jsonl"
tpt eval "$CKPT/tpt-shuffled-$SETTING" --tasks "$TASKS" --engine vllm --device cuda --output "$EVAL/tpt-shuffled.jsonl"

tpt compare --arm raw="$EVAL/raw.jsonl" --arm tpt="$EVAL/tpt.jsonl" \
  --arm tpt-shuffled="$EVAL/tpt-shuffled.jsonl" --baseline raw --output "$EVAL/compare"
