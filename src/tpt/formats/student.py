"""The student tokenizer, as it crosses stages: `tpt tokenizer` writes it, `tpt pack` loads it (or any local
Hugging Face tokenizer: a directory or a tokenizer.json) and saves it into PACK_DIR/tokenizer, which
`tpt train` reads.

Packing uses the Rust `tokenizers` library directly (fast, no torch or transformers import). A directory
without a `tokenizer.json` (a slow, Python-only tokenizer) is converted once through transformers.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpt.core.errors import ConfigError, InputError, MissingDependencyError
from tpt.core.jsontypes import JSONObject

# End-of-sequence tokens of common model families, tried in this order when the tokenizer's own config
# does not name one.
KNOWN_EOS = (
    "<|endoftext|>",
    "</s>",
    "<|end_of_text|>",
    "<eos>",
    "<|im_end|>",
    "<｜end▁of▁sentence｜>",
)
# Files of a Hugging Face tokenizer directory that are copied with it (model weights are not).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "tokenizer.model",
    "spiece.model",
    "chat_template.jinja",
    "chat_template.json",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class StudentTokenizer:
    """A loaded student tokenizer and the facts packing needs about it."""

    tokenizer: Any  # tokenizers.Tokenizer, with truncation and padding switched off
    source: Path
    eos_token: str
    eos_id: int
    pad_id: int
    vocab_size: int
    """Largest id + 1, added tokens included: what a model's embedding table needs."""
    unk_id: int | None
    special_tokens: tuple[str, ...]
    """Contents of the tokenizer's special added tokens (a text containing one is encoded to it)."""
    added_tokens: tuple[str, ...]
    """Contents of all added tokens, special or not (they are matched before the model's merges)."""
    config: JSONObject
    """The directory's tokenizer_config.json (empty for a bare tokenizer.json)."""
    bos_token: str | None = None
    """The beginning-of-sequence token the tokenizer puts in front of a text when it adds special
    tokens (Llama 3's `<|begin_of_text|>`); None when it adds none (GPT-2, Qwen2, tpt's own)."""
    bos_id: int | None = None

    def is_single_token(self, text: str) -> bool:
        return text in self.added_tokens


def load_student_tokenizer(path: str | Path, *, eos_token: str | None = None) -> StudentTokenizer:
    """Load TOK for `tpt pack`. Raises InputError if it cannot be loaded, ConfigError without an EOS."""
    from tokenizers import Tokenizer

    source = Path(path).expanduser()
    config: JSONObject = {}
    if source.is_dir():
        config = _read_json(source / "tokenizer_config.json")
        special_map = _read_json(source / "special_tokens_map.json")
        if (source / "tokenizer.json").is_file():
            tok = _from_file(Tokenizer, source / "tokenizer.json")
        else:
            tok = _convert_slow(source)
    elif source.is_file() and source.suffix == ".json":
        special_map = {}
        tok = _from_file(Tokenizer, source)
    elif source.exists():
        raise InputError(
            f"--tokenizer {source}: expected a Hugging Face tokenizer directory or a tokenizer.json"
        )
    else:
        raise InputError(f"--tokenizer {source} does not exist (tpt never downloads tokenizers from a hub)")
    # A tokenizer.json may carry truncation or padding settings; packing must see every token.
    tok.no_truncation()
    tok.no_padding()
    added = tok.get_added_tokens_decoder()
    special = tuple(t.content for _, t in sorted(added.items()) if t.special)
    eos = eos_token or _token_name(config.get("eos_token")) or _token_name(special_map.get("eos_token"))
    if eos is None:
        eos = next((t for t in KNOWN_EOS if tok.token_to_id(t) is not None), None)
    if eos is None:
        raise ConfigError(
            f"--tokenizer {source} names no end-of-sequence token and has none of {', '.join(KNOWN_EOS)}; "
            "pass --eos-token TOKEN (a token of its vocabulary)"
        )
    eos_id = tok.token_to_id(eos)
    if eos_id is None:
        raise ConfigError(f"end-of-sequence token {eos!r} is not in the vocabulary of {source}")
    pad = _token_name(config.get("pad_token")) or _token_name(special_map.get("pad_token"))
    pad_id = tok.token_to_id(pad) if pad else None
    unk = getattr(tok.model, "unk_token", None)
    vocab = tok.get_vocab(with_added_tokens=True)
    bos_id = _added_bos(tok, config)
    return StudentTokenizer(
        tokenizer=tok,
        source=source,
        eos_token=eos,
        eos_id=eos_id,
        pad_id=pad_id if pad_id is not None else eos_id,
        vocab_size=max(vocab.values()) + 1 if vocab else 0,
        unk_id=tok.token_to_id(unk) if unk else None,
        special_tokens=special,
        added_tokens=tuple(t.content for _, t in sorted(added.items())),
        config=config,
        bos_token=tok.id_to_token(bos_id) if bos_id is not None else None,
        bos_id=bos_id,
    )


def _added_bos(tok: Any, config: JSONObject) -> int | None:
    """The id the tokenizer puts first when it encodes with special tokens, if any.

    Read from what it does (its post-processor) unless tokenizer_config.json says `add_bos_token`
    (transformers rebuilds the post-processor from that flag, for Llama-style tokenizers)."""
    flag = config.get("add_bos_token")
    if flag is False:
        return None
    if flag is True and (name := _token_name(config.get("bos_token"))):
        return tok.token_to_id(name)
    plain = tok.encode("a", add_special_tokens=False).ids
    special = tok.encode("a", add_special_tokens=True).ids
    if len(special) > len(plain) and special[1 : 1 + len(plain)] == plain:
        return int(special[0])
    return None


def save_student_tokenizer(student: StudentTokenizer, out_dir: Path) -> None:
    """Write the tokenizer to out_dir so that `AutoTokenizer.from_pretrained(out_dir)` loads it.

    A directory's tokenizer files are copied as they are; a bare tokenizer.json (or a directory without
    a tokenizer_config.json) gets one that names the fast tokenizer class and the EOS/pad tokens.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    if student.source.is_dir():
        for name in TOKENIZER_FILES:
            if (student.source / name).is_file():
                shutil.copy2(student.source / name, out_dir / name)
    if not (out_dir / "tokenizer.json").is_file():
        # Saved from the loaded object: what packing used (truncation and padding off).
        student.tokenizer.save(str(out_dir / "tokenizer.json"))
    if not (out_dir / "tokenizer_config.json").is_file():
        pad = student.tokenizer.id_to_token(student.pad_id)
        write_tokenizer_config(
            out_dir, eos_token=student.eos_token, pad_token=pad, bos_token=student.bos_token
        )


def write_tokenizer_config(
    out_dir: Path,
    *,
    eos_token: str,
    pad_token: str | None = None,
    bos_token: str | None = None,
    model_max_length: int | None = None,
) -> None:
    """The minimal tokenizer_config.json that makes AutoTokenizer load tokenizer.json as a fast tokenizer."""
    config: JSONObject = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": eos_token,
        "pad_token": pad_token or eos_token,
        "clean_up_tokenization_spaces": False,
    }
    if bos_token:
        config["bos_token"] = bos_token
    if model_max_length:
        config["model_max_length"] = model_max_length
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _token_name(value: Any) -> str | None:
    """tokenizer_config.json writes a token as a string or as {"content": ..., ...}."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _read_json(path: Path) -> JSONObject:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from None
    return value if isinstance(value, dict) else {}


def _from_file(tokenizer_cls: Any, path: Path) -> Any:
    try:
        return tokenizer_cls.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception for any parse error
        raise InputError(f"--tokenizer: {path} is not a tokenizers JSON file that loads ({exc})") from None


def _convert_slow(source: Path) -> Any:
    """A directory with only a slow tokenizer (vocab.json + merges.txt, sentencepiece, ...)."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise MissingDependencyError(
            "transformers", f"loading {source}, which has no tokenizer.json", "hf"
        ) from None
    try:
        hf = AutoTokenizer.from_pretrained(str(source))
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(
            f"--tokenizer {source}: no tokenizer.json, and transformers cannot load it: {exc}"
        ) from None
    backend = getattr(hf, "backend_tokenizer", None) or getattr(hf, "_tokenizer", None)
    if backend is None:
        raise InputError(
            f"--tokenizer {source}: transformers loads it only as a slow tokenizer; "
            "save a tokenizer.json for it (PreTrainedTokenizerFast) and pass that"
        )
    return backend
