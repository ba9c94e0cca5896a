"""`tpt train` put together: check the data and the model against each other, then run the session.

from tpt.train.config import TrainConfig, testbed
from tpt.train.stage import run
summary = run(TrainConfig(data_dir="pack", output="runs/a", tokens=3_000_000, preset=testbed()))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tpt.core.artifacts import fingerprint
from tpt.core.errors import InputError
from tpt.formats.summaries import TrainSummary
from tpt.train.config import TrainConfig, fingerprint_fields, loop_config
from tpt.train.data import PackedData
from tpt.train.session import RunSpec, config_record, run_session


def load_pack_tokenizer(data: PackedData) -> Any:
    from transformers import AutoTokenizer

    path = data.path / data.index["tokenizer"]
    try:
        tok = AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is not a loadable tokenizer ({exc}); re-run `tpt pack`") from None
    if len(tok) > data.vocab_size:
        raise InputError(
            f"{path} has {len(tok)} tokens but {data.path}/index.json says vocab_size {data.vocab_size}"
        )
    return tok


def check_init_vocabulary(init: str, data: PackedData, tokenizer: Any) -> None:
    """Refuse a checkpoint whose vocabulary differs from the data's, before any training work."""
    from transformers import AutoConfig, AutoTokenizer

    from tpt.core.hfmodel import resolve_model_dir

    directory = resolve_model_dir(init)
    rows = AutoConfig.from_pretrained(str(directory)).vocab_size
    if rows < data.vocab_size:
        raise InputError(
            f"--init {init} has {rows} embedding rows but the data in {data.path} uses "
            f"vocab_size {data.vocab_size}; pack with the checkpoint's tokenizer"
        )
    has_tokenizer = any(
        (directory / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
    )
    if not has_tokenizer:
        return  # only the size can be checked; the checkpoint did not ship its tokenizer
    theirs = AutoTokenizer.from_pretrained(str(directory)).get_vocab()
    ours = tokenizer.get_vocab()
    if theirs != ours:
        diff = sorted(set(ours.items()) ^ set(theirs.items()), key=lambda kv: kv[1])[:3]
        raise InputError(
            f"the tokenizer of {data.path} ({len(ours)} tokens) and of --init {init} ({len(theirs)} tokens) "
            f"disagree (e.g. {diff}); pack the data with the checkpoint's tokenizer"
        )


def run(config: TrainConfig) -> TrainSummary:
    """Train to config.tokens in config.output, resuming from its last checkpoint if there is one."""
    data = PackedData(config.data_dir, block_attention=config.block_attention)
    cfg = loop_config(config, seq_len=data.seq_len, tokens=config.tokens)
    tokenizer = load_pack_tokenizer(data)
    if config.init:
        check_init_vocabulary(config.init, data, tokenizer)
    from tpt.train import model as student

    def new_model() -> Any:
        if config.init:
            return student.load_model(config.init, seq_len=data.seq_len)
        shape = student.build_config(
            config.model_size,
            vocab_size=data.vocab_size,
            seq_len=data.seq_len,
            qk_norm=config.qk_norm,
            bos_id=tokenizer.bos_token_id,
            eos_id=data.index.get("eos_id"),
            pad_id=data.index.get("pad_id"),
        )
        return student.create_model(shape, seed=cfg.seed)

    model_spec = {
        "init": str(Path(config.init).resolve()) if config.init else None,
        "model_size": None if config.init else config.model_size,
        "qk_norm": config.qk_norm,
        "block_attention": config.block_attention,
    }
    data_spec = {"data_dir": str(data.path.resolve()), "index": fingerprint(data.index)}
    spec = RunSpec(
        stage="train",
        run_dir=config.output,
        cfg=cfg,
        fingerprinted={"model": model_spec, "data": data_spec, **fingerprint_fields(cfg)},
        recorded={"model": model_spec, "data": data_spec, "train": config_record(cfg)},
        threads=config.threads,
        device=config.device,
        fsdp=config.fsdp,
        tensorboard=config.tensorboard,
        wandb=config.wandb,
        overwrite_config=config.overwrite_config,
        # The BOS convention the data was packed with (pack/bos.py; absent in older packs: no BOS),
        # for `tpt eval` to encode prompts the same way.
        checkpoint_info={"bos_id": data.index.get("bos_id")},
    )
    return run_session(
        spec,
        source=data,
        tokenizer=tokenizer,
        new_model=new_model,
        resume_model=lambda ckpt: student.load_model(ckpt),
    )
