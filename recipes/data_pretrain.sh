#!/usr/bin/env bash
# Data for the abundant-data from-scratch runs (paper §3.1): FineWeb-Edu + MegaMath-Web-Pro-Max, the
# first AUG_DOCS documents augmented once by Qwen3-8B (2k-token documents, <= 8k thinking tokens,
# temperature 0.6, top-p 0.9), packed into 8k-token rows with FineWeb-Edu at sample weight 0.125; and the
# vanilla baseline's rows, packed from the original corpus: "the original dataset", every document at
# full length and unfiltered, as many unique tokens as its 100B budget (about 3x the augmented arm's
# documents), so the vanilla run never repeats its data. The data-constrained setting, where both arms
# share one fixed document set, is recipes/data_pretrain_constrained.sh.
#
# Run once, on the head node of a Ray cluster of GPU nodes (`ray start --head` / `ray start --address`):
# one worker per GPU, each with its own vLLM server. Re-running resumes exactly where it stopped.
#   CORPUS=/data/corpus AUG_DOCS=33000000 TEACHER=/models/Qwen3-8B STUDENT_TOKENIZER=/models/Meta-Llama-3-8B \
#   OUT=/data/tpt bash recipes/data_pretrain.sh
# Cost first: tpt estimate "$CORPUS" --sample 256 ... --gpu-throughput <your engine's tok/s per GPU>
# (the paper: about 20k A100-hours of generation per 100B training tokens). Size AUG_DOCS from it: the
# documents whose augmented samples make the TPT arm's 100B tokens. `tpt pack` prints the tokens of each
# arm, and `tpt train` warns when its budget is larger than its data.
set -euo pipefail

CORPUS=${CORPUS:-/data/corpus}                      # JSONL records with `text`, `id` and `source`, shuffled
AUG_DOCS=${AUG_DOCS:-33000000}                      # documents to augment (from tpt estimate; ~1k tokens each)
TEACHER=${TEACHER:-/models/Qwen3-8B}                # a local HF model directory (no downloads)
STUDENT_TOKENIZER=${STUDENT_TOKENIZER:-/models/Meta-Llama-3-8B}
OUT=${OUT:-/data/tpt}
RAY_ADDRESS=${RAY_ADDRESS:-auto}

tpt augment "$CORPUS" --output "$OUT/augment" --limit "$AUG_DOCS" \
  --executor ray --address "$RAY_ADDRESS" --worker-gpus 1 --units-per-worker 2 \
  --serve vllm --model "$TEACHER" --served-model-name teacher \
  --serve-arg "--max-model-len 12288 --max-num-seqs 256 --gpu-memory-utilization 0.92" \
  --tokenizer "$TEACHER" --concurrency 256 --shard-size 1000 \
  --max-doc-tokens 2048 --max-thinking-tokens 8192 --temperature 0.6 --top-p 0.9 --seed 0

tpt pack "$OUT/augment" --output "$OUT/pack-tpt" --tokenizer "$STUDENT_TOKENIZER" \
  --seq-len 8192 --mode tpt --weights fineweb-edu=0.125 --seed 0

# The vanilla arm: the whole corpus, not the augmented records (those are ~1/3 of its budget, cut to 2k
# teacher tokens and filtered by the thinking checks).
tpt pack "$CORPUS" --output "$OUT/pack-raw" --tokenizer "$STUDENT_TOKENIZER" \
  --seq-len 8192 --mode raw --weights fineweb-edu=0.125 --seed 0

# The shuffled control (docs/pack.md "Controls"): the TPT arm's documents and trajectories, each document
# packed with another document's trajectory (same source and length bucket). No new generation: CPU only.
tpt pack "$OUT/augment" --output "$OUT/pack-tpt-shuffled" --tokenizer "$STUDENT_TOKENIZER" \
  --seq-len 8192 --mode tpt --weights fineweb-edu=0.125 --seed 0 --control shuffled
