#!/usr/bin/env bash
# Paper §3.3 (Table 7): data-constrained pre-training: 10B raw tokens, a 40B-token budget, an 8B student.
# The vanilla run sees the 10B raw tokens ~4 times; TPT sees the augmented ~40B about once. Data:
# recipes/data_pretrain_constrained.sh (both arms on one fixed 10B-token sample; the vanilla arm is
# PACK=/data/tpt-10b/pack-raw; the shuffled control PACK=/data/tpt-10b/pack-tpt-shuffled). Optimizer as the
# 100B run (Table 5), 40B / 4Mi = 9.5k steps. Then: CKPT=/ckpt SETTING=8b-40b bash recipes/compare_pretrain.sh.
# Launch the same command on each of the NNODES nodes, with its own NODE_RANK (0 = the rendezvous host):
#   NODE_RANK=0 MASTER_ADDR=<node 0> PACK=/data/tpt-10b/pack-tpt RUN=/ckpt/tpt-8b-40b bash recipes/pretrain_8b_40b_constrained.sh
# Re-running the same command resumes from the last checkpoint in RUN.
set -euo pipefail

NNODES=${NNODES:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
PACK=${PACK:-/data/tpt-10b/pack-tpt}
RUN=${RUN:-/ckpt/tpt-8b-40b}

exec torchrun --nnodes "$NNODES" --nproc-per-node "$GPUS_PER_NODE" --node-rank "$NODE_RANK" \
  --master-addr "$MASTER_ADDR" --master-port "$MASTER_PORT" \
  -m tpt train "$PACK" --output "$RUN" --model-size 8b --fsdp \
  --tokens 40B --preset pretrain --lr 3e-4 --schedule constant --warmup-steps 100 --batch-tokens 4194304 \
  --betas 0.9,0.95 --weight-decay 0.1 --grad-clip 1.0 --save-every 5B
