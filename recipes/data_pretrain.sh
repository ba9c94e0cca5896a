#!/usr/bin/env bash
# Data for the from-scratch runs (paper §3.1-3.2): FineWeb-Edu + MegaMath-Web-Pro-Max, each document
# augmented once by Qwen3-8B (2k-token documents, <= 8k thinking tokens, temperature 0.6, top-p 0.9),
# then packed into 8k-token rows, FineWeb-Edu at sample weight 0.125; and the vanilla baseline's rows.
#
# Run once, on the head node of a Ray cluster of GPU nodes (`ray start --head` / `ray start --address`):
# one worker per GPU, each with its own vLLM server. Re-running resumes exactly where it stopped.
#   CORPUS=/data/corpus TEACHER=/models/Qwen3-8B STUDENT_TOKENIZER=/models/Meta-Llama-3-8B \
#   OUT=/data/tpt bash recipes/data_pretrain.sh
# Cost first: tpt estimate "$CORPUS" --sample 256 ... --gpu-throughput <your engine's tok/s per GPU>
# (the paper: about 20k A100-hours of generation per 100B training tokens).
set -euo pipefail

CORPUS=${CORPUS:-/data/corpus}                      # records with `text`, `id` and `source` fields
TEACHER=${TEACHER:-/models/Qwen3-8B}                # a local HF model directory (no downloads)
STUDENT_TOKENIZER=${STUDENT_TOKENIZER:-/models/Meta-Llama-3-8B}
OUT=${OUT:-/data/tpt}
RAY_ADDRESS=${RAY_ADDRESS:-auto}

tpt augment "$CORPUS" --output "$OUT/augment" \
  --executor ray --address "$RAY_ADDRESS" --worker-gpus 1 --units-per-worker 2 \
  --serve vllm --model "$TEACHER" --served-model-name teacher \
  --serve-arg "--max-model-len 12288 --max-num-seqs 256 --gpu-memory-utilization 0.92" \
  --tokenizer "$TEACHER" --concurrency 256 --shard-size 1000 \
  --max-doc-tokens 2048 --max-thinking-tokens 8192 --temperature 0.6 --top-p 0.9 --seed 0

tpt pack "$OUT/augment" --output "$OUT/pack-tpt" --tokenizer "$STUDENT_TOKENIZER" \
  --seq-len 8192 --mode tpt --weights fineweb-edu=0.125 --seed 0

tpt pack "$OUT/augment" --output "$OUT/pack-raw" --tokenizer "$STUDENT_TOKENIZER" \
  --seq-len 8192 --mode raw --weights fineweb-edu=0.125 --seed 0
