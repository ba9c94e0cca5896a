"""Named student sizes: parameter counts, QK-norm architecture choice, RoPE base scaling."""

from __future__ import annotations

from pathlib import Path

import pytest

from tpt.core.errors import ConfigError
from tpt.train.model import build_config, count_parameters, create_model, load_model


@pytest.mark.parametrize("vocab", [100, 50_000])
def test_tiny_is_about_one_million_non_embedding_parameters_with_any_vocabulary(vocab: int) -> None:
    model = create_model(build_config("tiny", vocab_size=vocab, seq_len=128), seed=0)
    sizes = count_parameters(model)
    assert 0.8e6 < sizes["non_embedding_parameters"] < 1.0e6
    assert sizes["parameters"] - sizes["non_embedding_parameters"] == vocab * 128  # tied: counted once
    assert type(model).__name__ == "Qwen3ForCausalLM"  # QK-norm by default on CPU sizes
    assert model.model.layers[0].self_attn.q_norm.weight.shape == (32,)  # per head (head_dim 32)


def test_no_qk_norm_gives_plain_llama_and_gpu_sizes_are_llama_shapes() -> None:
    config = build_config("tiny", vocab_size=100, seq_len=128, qk_norm=False)
    assert type(config).__name__ == "LlamaConfig"
    big = build_config("8b", vocab_size=128_256, seq_len=8192)
    assert type(big).__name__ == "LlamaConfig"
    assert (
        big.hidden_size,
        big.num_hidden_layers,
        big.num_key_value_heads,
        big.intermediate_size,
    ) == (4096, 32, 8, 14336)
    assert big.rope_parameters["rope_theta"] == 500000.0
    with pytest.raises(ConfigError, match="--model-size"):
        build_config("huge", vocab_size=100, seq_len=128)


def test_rope_base_scaled_on_load(tmp_path: Path) -> None:
    model = create_model(build_config("tiny", vocab_size=50, seq_len=64), seed=0)
    model.save_pretrained(tmp_path / "m")
    loaded = load_model(tmp_path / "m", rope_theta_scale=16, seq_len=256)
    assert loaded.config.rope_parameters["rope_theta"] == 160_000.0
    assert loaded.config.max_position_embeddings == 256
    # The rotary frequencies follow the new base: inv_freq[1] = base^(-2/head_dim).
    inv = loaded.model.rotary_emb.inv_freq
    assert float(inv[1]) == pytest.approx(160_000.0 ** (-2 / 32), rel=1e-5)
