#!/usr/bin/env bash
# Data for the data-constrained from-scratch runs (paper §3.2, Table 7): a random sample of 10B raw tokens,
# augmented once by Qwen3-8B as in recipes/data_pretrain.sh. Both arms share this fixed document set: the
# TPT arm packs [document; thinking] (~40B tokens, seen about once in a 40B budget), the vanilla arm packs
# the same run's original documents, full length and unfiltered (10B tokens, seen about 4 times; `tpt
# train` says so at start). Train with recipes/pretrain_8b_40b_constrained.sh.
#
#   SAMPLE=/data/corpus-10b TEACHER=/models/Qwen3-8B STUDENT_TOKENIZER=/models/Meta-Llama-3-8B \
#   OUT=/data/tpt-10b bash recipes/data_pretrain_constrained.sh
# SAMPLE: shuffle the corpus and keep the first 10B tokens of it (tpt estimate gives tokens per document).
set -euo pipefail

SAMPLE=${SAMPLE:-/data/corpus-10b}                  # JSONL records with `text`, `id` and `source`
TEACHER=${TEACHER:-/models/Qwen3-8B}
STUDENT_TOKENIZER=${STUDENT_TOKENIZER:-/models/Meta-Llama-3-8B}
OUT=${OUT:-/data/tpt-10b}
RAY_ADDRESS=${RAY_ADDRESS:-auto}

tpt augment "$SAMPLE" --output "$OUT/augment" \
  --executor ray --address "$RAY_ADDRESS" --worker-gpus 1 --units-per-worker 2 \
  --serve vllm --model "$TEACHER" --served-model-name teacher \
  --serve-arg "--max-model-len 12288 --max-num-seqs 256 --gpu-memory-utilization 0.92" \
  --tokenizer "$TEACHER" --concurrency 256 --shard-size 1000 \
  --max-doc-tokens 2048 --max-thinking-tokens 8192 --temperature 0.6 --top-p 0.9 --seed 0

tpt pack "$OUT/augment" --output "$OUT/pack-tpt" --tokenizer "$STUDENT_TOKENIZER" \
  --seq-len 8192 --mode tpt --weights fineweb-edu=0.125 --seed 0

# The same documents alone: --mode raw reads the run's original documents from the corpus it recorded.
tpt pack "$OUT/augment" --output "$OUT/pack-raw" --tokenizer "$STUDENT_TOKENIZER" \
  --seq-len 8192 --mode raw --weights fineweb-edu=0.125 --seed 0

# The shuffled control (docs/pack.md "Controls"): the TPT arm's documents and trajectories, each document
# packed with another document's trajectory (same source and length bucket). No new generation: CPU only.
tpt pack "$OUT/augment" --output "$OUT/pack-tpt-shuffled" --tokenizer "$STUDENT_TOKENIZER" \
  --seq-len 8192 --mode tpt --weights fineweb-edu=0.125 --seed 0 --control shuffled
