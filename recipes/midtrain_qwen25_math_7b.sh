#!/usr/bin/env bash
# Paper §3.4, Table 5 'Mid-train': continual pre-training of Qwen2.5-Math-7B on 100B TPT tokens.
# 8M-token batches (8 Mi = 1024 rows of 8k; 100B / 8Mi = 11.9k steps, the paper: 12.5k), lr 3e-5 cosine
# after 100 warmup steps, AdamW 0.9/0.95, wd 0.1, clip 0.3, 32 GPUs. Teacher: DeepSeek-R1-Distill-Qwen-7B
# (recipes/data_midtrain.sh with STUDENT_TOKENIZER=Qwen2.5-Math-7B). Then SFT: recipes/sft_qwen25_math_7b.sh.
# Launch the same command on each of the NNODES nodes, with its own NODE_RANK (0 = the rendezvous host):
#   NODE_RANK=0 MASTER_ADDR=<node 0> INIT=/models/Qwen2.5-Math-7B PACK=/data/tpt-mid/pack-qwen25_math_7b RUN=/ckpt/mid-qwen25_math_7b bash recipes/midtrain_qwen25_math_7b.sh
# The shuffled control arm: the same command with PACK=/data/tpt-mid/pack-qwen25_math_7b-shuffled
# RUN=/ckpt/mid-qwen25_math_7b-shuffled; then MODEL=qwen25_math_7b bash recipes/compare_midtrain.sh.
# Re-running the same command resumes from the last checkpoint in RUN.
set -euo pipefail

NNODES=${NNODES:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
INIT=${INIT:-/models/Qwen2.5-Math-7B}                 # a local HF checkpoint
PACK=${PACK:-/data/tpt-mid/pack-qwen25_math_7b}
RUN=${RUN:-/ckpt/mid-qwen25_math_7b}

exec torchrun --nnodes "$NNODES" --nproc-per-node "$GPUS_PER_NODE" --node-rank "$NODE_RANK" \
  --master-addr "$MASTER_ADDR" --master-port "$MASTER_PORT" \
  -m tpt train "$PACK" --output "$RUN" --init "$INIT" --fsdp \
  --tokens 100B --preset midtrain --lr 3e-5 --schedule cosine --warmup-steps 100 --batch-tokens 8388608 \
  --betas 0.9,0.95 --weight-decay 0.1 --grad-clip 0.3 --save-every 10B
