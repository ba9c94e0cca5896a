"""`tpt sft` put together: load the checkpoint and its tokenizer, prepare the chat rows, run the session.

from tpt.sft.config import SftConfig
from tpt.sft.stage import run
summary = run(SftConfig(data=["chat.jsonl"], init="runs/a", output="runs/a-sft", epochs=3))
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tpt.core.errors import InputError
from tpt.formats.summaries import TrainSummary
from tpt.sft.config import SFT_EPOCHS, SftConfig
from tpt.sft.data import CHATML_TEMPLATE, prepare_sft
from tpt.train.config import fingerprint_fields, loop_config
from tpt.train.session import RunSpec, config_record, run_session


def resolve_template(choice: str | None, tokenizer: Any) -> str | None:
    """None keeps the tokenizer's template; 'chatml' or a file path gives a template string."""
    if choice is None:
        return None if getattr(tokenizer, "chat_template", None) else CHATML_TEMPLATE
    if choice == "chatml":
        return CHATML_TEMPLATE
    path = Path(choice)
    if not path.is_file():
        raise InputError(f"--chat-template {choice!r} is neither 'chatml' nor a readable file")
    return path.read_text(encoding="utf-8")


def _hash_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        try:
            h.update(p.read_bytes())
        except OSError as exc:
            raise InputError(f"cannot read SFT data {p}: {exc}") from None
    return h.hexdigest()[:16]


def run(config: SftConfig) -> TrainSummary:
    """Fine-tune config.init on config.data in config.output, resuming from its last checkpoint."""
    from transformers import AutoConfig, AutoTokenizer

    from tpt.core.hfmodel import resolve_model_dir
    from tpt.train import model as student

    paths = list(config.data)
    init = resolve_model_dir(config.init)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(init))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"--init {init} has no loadable tokenizer ({exc}); SFT needs the checkpoint's own"
        ) from None
    vocab_size = AutoConfig.from_pretrained(str(init)).vocab_size
    template = resolve_template(config.chat_template, tokenizer)
    rows, stats = prepare_sft(
        paths,
        tokenizer,
        seq_len=config.seq_len,
        template=template,
        vocab_size=vocab_size,
        max_examples=config.max_examples,
    )
    tokens = config.tokens or math.ceil((config.epochs or SFT_EPOCHS) * rows.num_rows) * config.seq_len
    cfg = loop_config(config, seq_len=config.seq_len, tokens=tokens)
    if template is not None:
        tokenizer.chat_template = template  # saved with every checkpoint, so generation uses it too

    def new_model() -> Any:
        return student.load_model(init, rope_theta_scale=config.rope_theta_scale, seq_len=config.seq_len)

    sft_spec = {
        "init": str(init.resolve()),
        "data": [str(p.resolve()) for p in paths],
        "data_sha256": _hash_files(paths),
        "seq_len": config.seq_len,
        "rope_theta_scale": config.rope_theta_scale,
        "max_examples": config.max_examples,
        "chat_template_sha256": hashlib.sha256(
            (template or tokenizer.chat_template or "").encode()
        ).hexdigest()[:16],
    }
    spec = RunSpec(
        stage="sft",
        run_dir=config.output,
        cfg=cfg,
        fingerprinted={"sft": sft_spec, **fingerprint_fields(cfg), "tokens": cfg.tokens},
        recorded={"sft": sft_spec, "prepared": asdict(stats), "train": config_record(cfg)},
        threads=config.threads,
        device=config.device,
        fsdp=config.fsdp,
        tensorboard=config.tensorboard,
        wandb=config.wandb,
        overwrite_config=config.overwrite_config,
    )
    # A resumed run loads its own checkpoint, whose config already carries the scaled RoPE base.
    return run_session(
        spec,
        source=rows,
        tokenizer=tokenizer,
        new_model=new_model,
        resume_model=lambda ckpt: student.load_model(ckpt),
    )
