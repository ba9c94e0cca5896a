#!/usr/bin/env bash
# Data for mid-training (paper §3.3): the same corpora augmented by DeepSeek-R1-Distill-Qwen-7B, packed
# into 8k-token rows with the tokenizer of the model being mid-trained (run once per student tokenizer).
#   CORPUS=/data/corpus TEACHER=/models/DeepSeek-R1-Distill-Qwen-7B \
#   STUDENT_TOKENIZER=/models/Llama-3.2-3B PACK=/data/tpt-mid/pack-llama32_3b bash recipes/data_midtrain.sh
set -euo pipefail

CORPUS=${CORPUS:-/data/corpus}
TEACHER=${TEACHER:-/models/DeepSeek-R1-Distill-Qwen-7B}
STUDENT_TOKENIZER=${STUDENT_TOKENIZER:-/models/Llama-3.2-3B}
OUT=${OUT:-/data/tpt-mid}
PACK=${PACK:-$OUT/pack-llama32_3b}                  # one per student tokenizer
RAY_ADDRESS=${RAY_ADDRESS:-auto}

# R1-distill templates open <think> themselves: the generation is the thinking, closed by </think>.
tpt augment "$CORPUS" --output "$OUT/augment" \
  --executor ray --address "$RAY_ADDRESS" --worker-gpus 1 --units-per-worker 2 \
  --serve vllm --model "$TEACHER" --served-model-name teacher \
  --serve-arg "--max-model-len 12288 --max-num-seqs 256 --gpu-memory-utilization 0.92" \
  --tokenizer "$TEACHER" --concurrency 256 --shard-size 1000 \
  --max-doc-tokens 2048 --max-thinking-tokens 8192 --temperature 0.6 --top-p 0.9 --seed 0

tpt pack "$OUT/augment" --output "$PACK" \
  --tokenizer "$STUDENT_TOKENIZER" --seq-len 8192 --mode tpt --weights fineweb-edu=0.125 --seed 0

# The shuffled control (docs/pack.md "Controls"): the same documents and trajectories, each document packed
# with another document's trajectory (same source and length bucket). No new generation: CPU only.
tpt pack "$OUT/augment" --output "$PACK-shuffled" \
  --tokenizer "$STUDENT_TOKENIZER" --seq-len 8192 --mode tpt --weights fineweb-edu=0.125 --seed 0 --control shuffled
