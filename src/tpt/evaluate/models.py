"""Turn MODEL arguments into the models to score: a model, a GGUF, or every checkpoint of a training run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpt.core.errors import InputError
from tpt.core.hfmodel import is_embedded
from tpt.formats.checkpoint import CHECKPOINTS, read_state, tokens_in_name


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelRef:
    """One model to evaluate: how the user named it, where it is, and its place in a training run."""

    model: str
    path: str
    """A Hugging Face directory, a .gguf file or 'embedded' (resolved by tpt.core.hfmodel)."""
    checkpoint: str | None = None
    tokens_seen: int | None = None
    step: int | None = None


def read_checkpoint_meta(path: Path) -> tuple[int | None, int | None]:
    """(tokens_seen, step) from tpt_checkpoint.json; the directory name gives tokens_seen otherwise."""
    meta = read_state(path) or {}
    tokens, step = meta.get("tokens_seen"), meta.get("step")
    if tokens is None:
        tokens = tokens_in_name(path.name)
    return tokens, step


def prompt_bos(model_dir: Path) -> tuple[bool, int | None]:
    """How to start a prompt for this model: (known, bos_id). A tpt checkpoint records the BOS
    convention its data was packed with (pack/bos.py): known, with the id to put first or None for no
    BOS. Any other model: not known, and its tokenizer's own default applies."""
    meta = read_state(Path(model_dir))
    if meta is None or "bos_id" not in meta:
        return False, None
    bos = meta["bos_id"]
    return True, int(bos) if isinstance(bos, int) else None


def encode_prompts(tokenizer: Any, prompts: list[str], bos: tuple[bool, int | None]) -> list[list[int]]:
    """Token ids of each prompt: by the checkpoint's BOS convention when it records one, else with the
    tokenizer's default special tokens."""
    known, bos_id = bos
    if not known:
        return tokenizer(prompts, add_special_tokens=True)["input_ids"]
    ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    return [[bos_id, *row] for row in ids] if bos_id is not None else ids


def list_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """`tokens-XXXXXXXXXXXX/` directories that hold a model (config.json), in order of tokens seen."""
    found = [
        p
        for p in checkpoints_dir.iterdir()
        if p.is_dir() and tokens_in_name(p.name) is not None and (p / "config.json").is_file()
    ]
    return sorted(found, key=lambda p: p.name)


def expand_model(arg: str) -> list[ModelRef]:
    """A RUN_DIR or its checkpoints/ gives every checkpoint; anything else is one model."""
    if is_embedded(arg):
        return [ModelRef(model=arg, path=arg)]
    path = Path(arg).expanduser()
    if path.is_dir() and not (path / "config.json").is_file():
        ckpt_dir = path / CHECKPOINTS if (path / CHECKPOINTS).is_dir() else path
        ckpts = list_checkpoints(ckpt_dir)
        if ckpts:
            model = str(path.parent if ckpt_dir == path and path.name == CHECKPOINTS else path)
            refs = []
            for ck in ckpts:
                tokens, step = read_checkpoint_meta(ck)
                refs.append(
                    ModelRef(model=model, path=str(ck), checkpoint=ck.name, tokens_seen=tokens, step=step)
                )
            return refs
        if (path / CHECKPOINTS).is_dir() or any(path.glob("tokens-*")):
            raise InputError(f"{path} has no complete checkpoint yet (tokens-XXXXXXXXXXXX/ with config.json)")
        if not any(path.glob("*.gguf")):
            raise InputError(
                f"{path} is neither a model directory (config.json), a training run (checkpoints/) nor a "
                "checkpoints directory (tokens-XXXXXXXXXXXX/)"
            )
    if path.is_dir() and tokens_in_name(path.name) is not None:
        tokens, step = read_checkpoint_meta(path)
        return [ModelRef(model=arg, path=str(path), checkpoint=path.name, tokens_seen=tokens, step=step)]
    if path.is_dir():
        tokens, step = read_checkpoint_meta(path)
        return [ModelRef(model=arg, path=str(path), tokens_seen=tokens, step=step)]
    return [ModelRef(model=arg, path=arg)]  # a .gguf file, or an error raised when it is loaded


def expand_models(args: list[str]) -> list[ModelRef]:
    refs = [ref for arg in args for ref in expand_model(arg)]
    if not refs:
        raise InputError(
            "no model to evaluate: pass a model directory, a .gguf file, 'embedded' or a RUN_DIR"
        )
    return refs
