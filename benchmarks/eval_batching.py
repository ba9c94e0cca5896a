"""Benchmark: `tpt eval` generation throughput, batched versus one example at a time (same model, same run).

    python benchmarks/eval_batching.py                      # a ~1M-param student on testbed-like problems
    python benchmarks/eval_batching.py --model embedded --n 8 --max-new-tokens 32   # SmolLM2-135M on GSM8K prompts

Both passes run tpt's HF engine on the same prompts with greedy decoding, so they generate the same tokens
(checked); the figure is generated tokens per second of wall time, prefill included. With --hf-generate it
also times transformers' own batched `model.generate` on the same prompts (no stop strings) as a reference.
Prints a ratio line: `batched/sequential throughput: X.Xx`. Timings on a shared CPU are noisy (+-10-20%).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path


def testbed_prompts(n: int, seed: int = 0) -> list[str]:
    """Arithmetic word problems shaped like the reproduction testbed, in think-first form."""
    rng = random.Random(seed)
    names, items = ("dan", "amy", "bob", "eve", "fay", "gus"), ("pens", "cards", "cups", "hats")
    out = []
    for _ in range(n):
        a, b, c = rng.randint(2, 7), rng.randint(2, 7), rng.randint(2, 7)
        name, item = rng.choice(names), rng.choice(items)
        pad = " and some more" * rng.randint(0, 3)  # varied lengths, so that left padding matters
        out.append(
            f"{name} has {a} bags with {b} {item} each{pad} and {c} loose {item} . how many {item} ? <think>"
        )
    return out


def build_student(out: Path, prompts: list[str]) -> Path:
    """A randomly initialised ~1M-parameter Llama with a small BPE tokenizer (no pad token), saved to `out`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        prompts * 4,
        trainers.BpeTrainer(
            vocab_size=512,
            special_tokens=["<unk>", "<eos>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", unk_token="<unk>")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(hf_tok), hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=512, eos_token_id=hf_tok.eos_token_id, tie_word_embeddings=True,
    )  # fmt: skip
    model = LlamaForCausalLM(config)
    print(f"student: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, vocab {len(hf_tok)}")
    model.save_pretrained(out)
    hf_tok.save_pretrained(out)
    return out


def timed(engine, prompts, params) -> tuple[float, int, list]:
    t0 = time.perf_counter()
    outs = engine.generate(prompts, params)
    seconds = time.perf_counter() - t0
    return seconds, sum(c.num_tokens for row in outs for c in row), outs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny", help="'tiny' (built here), 'embedded', a HF dir or a .gguf")
    ap.add_argument("--n", type=int, default=64, help="prompts")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument(
        "--hf-generate", action="store_true", help="also time transformers' batched model.generate"
    )
    args = ap.parse_args()

    import torch

    from tpt.core.hfmodel import resolve_model_dir
    from tpt.evaluate.engine import GenParams
    from tpt.evaluate.hf_engine import HFEngine

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if args.model == "tiny":
            prompts = testbed_prompts(args.n)
            model_dir = build_student(Path(tmp) / "student", prompts)
        else:
            from tpt.evaluate.builtin import get_builtin
            from tpt.evaluate.prompts import prepare_task

            prompts = list(prepare_task(get_builtin("gsm8k"), limit=args.n).prompts)
            model_dir = resolve_model_dir(args.model)
        params = GenParams(max_new_tokens=args.max_new_tokens)  # no stops: every row runs to max or eos
        batched = HFEngine(model_dir, dtype=args.dtype, batch_size=args.batch_size)
        single = HFEngine(model_dir, dtype=args.dtype, batch_size=1)
        lengths = [len(ids) for ids in batched.encode(prompts)]
        print(
            f"model {args.model} ({batched.dtype}), {len(prompts)} prompts of {min(lengths)}-{max(lengths)} tokens, "
            f"max_new_tokens {args.max_new_tokens}, threads {args.threads}"
        )
        timed(batched, prompts[:2], GenParams(max_new_tokens=2))  # warm-up
        t_b, tok_b, out_b = timed(batched, prompts, params)
        t_s, tok_s, out_s = timed(single, prompts, params)
        same = sum(a[0].text == b[0].text for a, b in zip(out_b, out_s, strict=True))
        print(f"{'mode':<28}{'seconds':>9}{'tokens':>9}{'tokens/s':>10}")
        print(f"{'tpt sequential (batch 1)':<28}{t_s:9.2f}{tok_s:9d}{tok_s / t_s:10.1f}")
        print(f"{f'tpt batched (batch {args.batch_size})':<28}{t_b:9.2f}{tok_b:9d}{tok_b / t_b:10.1f}")
        if args.hf_generate:
            t_h, tok_h = hf_generate(batched, prompts, args)
            print(f"{f'HF generate (batch {args.batch_size})':<28}{t_h:9.2f}{tok_h:9d}{tok_h / t_h:10.1f}")
        print(f"identical generations, batched vs sequential: {same}/{len(prompts)}")
        print(f"batched/sequential throughput: {(tok_b / t_b) / (tok_s / t_s):.1f}x")
    return 0


def hf_generate(engine, prompts: list[str], args: argparse.Namespace) -> tuple[float, int]:
    """transformers' model.generate, batched with left padding, greedy, no stop strings."""
    import torch

    tok, model = engine.tokenizer, engine.model
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    total, t0 = 0, time.perf_counter()
    for s in range(0, len(order), args.batch_size):
        batch = tok([prompts[i] for i in order[s : s + args.batch_size]], return_tensors="pt", padding=True)
        with torch.inference_mode():
            out = model.generate(
                **batch,
                max_new_tokens=args.max_new_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
            )
        new = out[:, batch["input_ids"].shape[1] :]
        for row in new.tolist():  # count up to the first eos, as tpt does
            total += next((k for k, t in enumerate(row) if t in engine.eos_ids), len(row))
    return time.perf_counter() - t0, total


if __name__ == "__main__":
    sys.exit(main())
