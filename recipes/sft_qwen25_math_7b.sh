#!/usr/bin/env bash
# Paper §3.5, Table 5 'SFT': the mid-trained Qwen2.5-Math-7B fine-tuned on Mixture-of-Thoughts (350k examples).
# 5 epochs, 32k context (RoPE base x16 from 8k), 1M-token batches (1 Mi = 32 rows of 32k), lr 3e-5 cosine
# after 400 warmup steps, AdamW 0.9/0.999, no weight decay, clip 0.2, 8 GPUs; loss on assistant tokens only.
# Launch the same command on each of the NNODES nodes, with its own NODE_RANK (0 = the rendezvous host):
#   NODE_RANK=0 MASTER_ADDR=<node 0> INIT=/ckpt/mid-qwen25_math_7b/checkpoints/<last> DATA=/data/mixture-of-thoughts.jsonl RUN=/ckpt/sft-qwen25_math_7b bash recipes/sft_qwen25_math_7b.sh
# Re-running the same command resumes from the last checkpoint in RUN.
set -euo pipefail

NNODES=${NNODES:-1}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
INIT=${INIT:-/ckpt/mid-qwen25_math_7b/checkpoints/last}   # the mid-training checkpoint to fine-tune
DATA=${DATA:-/data/mixture-of-thoughts.jsonl}          # chat lines with a `messages` list
RUN=${RUN:-/ckpt/sft-qwen25_math_7b}

exec torchrun --nnodes "$NNODES" --nproc-per-node "$GPUS_PER_NODE" --node-rank "$NODE_RANK" \
  --master-addr "$MASTER_ADDR" --master-port "$MASTER_PORT" \
  -m tpt sft "$DATA" --init "$INIT" --output "$RUN" --fsdp \
  --epochs 5 --seq-len 32768 --rope-theta-scale 16 --preset sft --lr 3e-5 --schedule cosine --warmup-steps 400 \
  --batch-tokens 1048576 --betas 0.9,0.999 --weight-decay 0 --grad-clip 0.2
