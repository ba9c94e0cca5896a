#!/usr/bin/env bash
# Paper §3.2, Table 5 'Pre-train 8B': an 8B student (Llama-3-8B shape) from scratch on 100B TPT tokens.
# 4M-token batches (4 Mi = 512 rows of 8k; 100B / 4Mi = 23.8k steps, the paper rounds to 25k), lr 3e-4
# constant after 100 warmup steps, AdamW 0.9/0.95, wd 0.1, clip 1.0, 32 GPUs. Data: recipes/data_pretrain.sh.
# The vanilla baseline: the same command with PACK=$OUT/pack-raw (100B unique tokens of the original corpus,
# recipes/data_pretrain.sh) and another RUN. The shuffled control arm: PACK=$OUT/pack-tpt-shuffled
# RUN=/ckpt/tpt-shuffled-8b-100b. Then score and compare the three arms: recipes/compare_pretrain.sh.
# Launch the same command on each of the NNODES nodes, with its own NODE_RANK (0 = the rendezvous host):
#   NODE_RANK=0 MASTER_ADDR=<node 0> PACK=/data/tpt/pack-tpt RUN=/ckpt/tpt-8b-100b bash recipes/pretrain_8b_100b.sh
# Re-running the same command resumes from the last checkpoint in RUN.
set -euo pipefail

NNODES=${NNODES:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
PACK=${PACK:-/data/tpt/pack-tpt}
RUN=${RUN:-/ckpt/tpt-8b-100b}

exec torchrun --nnodes "$NNODES" --nproc-per-node "$GPUS_PER_NODE" --node-rank "$NODE_RANK" \
  --master-addr "$MASTER_ADDR" --master-port "$MASTER_PORT" \
  -m tpt train "$PACK" --output "$RUN" --model-size 8b --fsdp \
  --tokens 100B --preset pretrain --lr 3e-4 --schedule constant --warmup-steps 100 --batch-tokens 4194304 \
  --betas 0.9,0.95 --weight-decay 0.1 --grad-clip 1.0 --save-every 5B
