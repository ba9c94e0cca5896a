#!/usr/bin/env bash
# Paper §3.4, Table 5 'Mid-train': continual pre-training of Llama-3.2-3B on 100B TPT tokens.
# 8M-token batches (8 Mi = 1024 rows of 8k; 100B / 8Mi = 11.9k steps, the paper: 12.5k), lr 4e-5 cosine
# after 100 warmup steps, AdamW 0.9/0.95, wd 0.1, clip 0.3, 32 GPUs. Teacher: DeepSeek-R1-Distill-Qwen-7B
# (recipes/data_midtrain.sh with STUDENT_TOKENIZER=Llama-3.2-3B). Then SFT: recipes/sft_llama32_3b.sh.
# Launch the same command on each of the NNODES nodes, with its own NODE_RANK (0 = the rendezvous host):
#   NODE_RANK=0 MASTER_ADDR=<node 0> INIT=/models/Llama-3.2-3B PACK=/data/tpt-mid/pack-llama32_3b RUN=/ckpt/mid-llama32_3b bash recipes/midtrain_llama32_3b.sh
# The shuffled control arm: the same command with PACK=/data/tpt-mid/pack-llama32_3b-shuffled
# RUN=/ckpt/mid-llama32_3b-shuffled; then MODEL=llama32_3b bash recipes/compare_midtrain.sh.
# Re-running the same command resumes from the last checkpoint in RUN.
set -euo pipefail

NNODES=${NNODES:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
INIT=${INIT:-/models/Llama-3.2-3B}                 # a local HF checkpoint
PACK=${PACK:-/data/tpt-mid/pack-llama32_3b}
RUN=${RUN:-/ckpt/mid-llama32_3b}

exec torchrun --nnodes "$NNODES" --nproc-per-node "$GPUS_PER_NODE" --node-rank "$NODE_RANK" \
  --master-addr "$MASTER_ADDR" --master-port "$MASTER_PORT" \
  -m tpt train "$PACK" --output "$RUN" --init "$INIT" --fsdp \
  --tokens 100B --preset midtrain --lr 4e-5 --schedule cosine --warmup-steps 100 --batch-tokens 8388608 \
  --betas 0.9,0.95 --weight-decay 0.1 --grad-clip 0.3 --save-every 10B
