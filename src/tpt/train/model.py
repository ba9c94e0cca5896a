"""Student models: named Llama-shaped sizes built with transformers, or a local checkpoint to continue.

CPU sizes (tiny/small/medium) default to QK-norm through `Qwen3ForCausalLM`: it is the Llama block
(pre-RMSNorm, RoPE, SwiGLU, GQA) plus an RMSNorm on each head's queries and keys, nothing else. OLMo-2
also has QK-norm but moves the norms after each sub-layer and normalizes the whole projection, so it
differs from Llama in more than the one thing we want. `--no-qk-norm` gives a plain `LlamaForCausalLM`.
Sizes are named by non-embedding parameters, so `tiny` is ~0.85M whatever the vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpt.core.errors import ConfigError, InputError


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelShape:
    """One named student shape."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    rope_theta: float
    tie_embeddings: bool
    qk_norm: bool
    """Default for this size; the CLI can override it."""


SIZES: dict[str, ModelShape] = {
    # CPU students. tiny: 4 x (4*128^2 attention + 3*128*384 SwiGLU) = 0.85M non-embedding parameters.
    "tiny": ModelShape(
        hidden=128,
        layers=4,
        heads=4,
        kv_heads=4,
        ffn=384,
        rope_theta=10000.0,
        tie_embeddings=True,
        qk_norm=True,
    ),
    "small": ModelShape(
        hidden=256,
        layers=6,
        heads=4,
        kv_heads=4,
        ffn=768,
        rope_theta=10000.0,
        tie_embeddings=True,
        qk_norm=True,
    ),
    "medium": ModelShape(
        hidden=512,
        layers=6,
        heads=8,
        kv_heads=8,
        ffn=1536,
        rope_theta=10000.0,
        tie_embeddings=True,
        qk_norm=True,
    ),
    # GPU students: the Llama-3.2-1B, Llama-3.2-3B and Llama-3-8B (the paper's from-scratch) shapes.
    "1b": ModelShape(
        hidden=2048,
        layers=16,
        heads=32,
        kv_heads=8,
        ffn=8192,
        rope_theta=500000.0,
        tie_embeddings=True,
        qk_norm=False,
    ),
    "3b": ModelShape(
        hidden=3072,
        layers=28,
        heads=24,
        kv_heads=8,
        ffn=8192,
        rope_theta=500000.0,
        tie_embeddings=True,
        qk_norm=False,
    ),
    "8b": ModelShape(
        hidden=4096,
        layers=32,
        heads=32,
        kv_heads=8,
        ffn=14336,
        rope_theta=500000.0,
        tie_embeddings=False,
        qk_norm=False,
    ),
}


def build_config(
    size: str,
    *,
    vocab_size: int,
    seq_len: int,
    qk_norm: bool | None = None,
    bos_id: int | None = None,
    eos_id: int | None = None,
    pad_id: int | None = None,
) -> Any:
    """A transformers config for a named size (Qwen3Config with QK-norm, else LlamaConfig)."""
    from transformers import LlamaConfig, Qwen3Config

    if size not in SIZES:
        raise ConfigError(f"--model-size must be one of {', '.join(SIZES)}, got {size!r}")
    s = SIZES[size]
    common = dict(
        vocab_size=vocab_size,
        hidden_size=s.hidden,
        intermediate_size=s.ffn,
        num_hidden_layers=s.layers,
        num_attention_heads=s.heads,
        num_key_value_heads=s.kv_heads,
        head_dim=s.hidden // s.heads,
        max_position_embeddings=seq_len,
        rope_parameters={"rope_type": "default", "rope_theta": s.rope_theta},
        tie_word_embeddings=s.tie_embeddings,
        rms_norm_eps=1e-6,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        use_cache=True,
    )
    use_qk_norm = s.qk_norm if qk_norm is None else qk_norm
    return Qwen3Config(**common) if use_qk_norm else LlamaConfig(**common)


def create_model(config: Any, *, seed: int) -> Any:
    """A freshly initialized causal LM in fp32; the same seed gives the same weights on every rank."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    config._attn_implementation = "sdpa"
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="sdpa")


def load_model(path: str | Path, *, rope_theta_scale: float = 1.0, seq_len: int | None = None) -> Any:
    """A local Hugging Face causal LM in fp32, optionally with its RoPE base scaled for a longer context."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from tpt.core.hfmodel import resolve_model_dir

    directory = resolve_model_dir(path)
    try:
        config = AutoConfig.from_pretrained(str(directory))
    except (OSError, ValueError) as exc:
        raise InputError(f"could not read the model config in {directory}: {exc}") from None
    if rope_theta_scale != 1.0:
        scale_rope_theta(config, rope_theta_scale)
    if seq_len is not None and (config.max_position_embeddings or 0) < seq_len:
        config.max_position_embeddings = seq_len
    try:
        return AutoModelForCausalLM.from_pretrained(
            str(directory), config=config, dtype=torch.float32, attn_implementation="sdpa"
        )
    except (OSError, ValueError) as exc:
        raise InputError(f"could not load a causal LM from {directory}: {exc}") from None


def scale_rope_theta(config: Any, factor: float) -> float:
    """Multiply the RoPE base frequency (the paper: x16 for 8k -> 32k SFT); returns the new base."""
    if factor <= 0:
        raise ConfigError(f"--rope-theta-scale must be > 0, got {factor}")
    params = getattr(config, "rope_parameters", None)
    if isinstance(params, dict) and "rope_theta" in params:
        params["rope_theta"] = float(params["rope_theta"]) * factor
        return params["rope_theta"]
    if getattr(config, "rope_theta", None):
        config.rope_theta = float(config.rope_theta) * factor
        return config.rope_theta
    raise ConfigError(f"{type(config).__name__} has no RoPE base to scale (--rope-theta-scale)")


def count_parameters(model: Any) -> dict[str, int]:
    """Total and non-embedding parameters (tied weights counted once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    embedding = {id(model.get_input_embeddings().weight)}
    out = model.get_output_embeddings()
    if out is not None:
        embedding.add(id(out.weight))
    emb = sum({id(p): p.numel() for p in model.parameters() if id(p) in embedding}.values())
    return {"parameters": total, "non_embedding_parameters": total - emb}
