"""The config of `tpt pack`: inputs, student tokenizer, arm, mixing, shuffle, packing (pack/cli.py builds one)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tpt.core.duplicate_ids import check_policy as check_duplicate_policy
from tpt.core.errors import ConfigError
from tpt.pack.bos import BOS_SETTINGS
from tpt.pack.controls import CONTROLS
from tpt.pack.documents import DOCUMENT_TEXTS, default_document_text
from tpt.pack.packing import POLICIES
from tpt.pack.pieces import DEFAULT_CAPACITY
from tpt.pack.template import DEFAULT_TEMPLATE
from tpt.quality.checks import CheckConfig

MODES = ("tpt", "raw")
EXECUTORS = ("local", "ray")
# Settings that change how fast the output is made, not what it is.
_NOT_FINGERPRINTED = (
    "output",
    "batch_size",
    "batch_chars",
    "workers",
    "executor",
    "address",
    "unit_bytes",
    "piece_cache",
    "progress",
    "checks",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class PackConfig:
    """Everything `tpt pack` needs; the CLI builds one from its flags."""

    inputs: tuple[str, ...]
    output: Path
    tokenizer: str
    seq_len: int
    mode: str = "tpt"
    document_text: str | None = None
    """full: the original document (from the corpus an augment run recorded); truncated: the record's
    text, as the teacher saw it. None: full for --mode raw, truncated for --mode tpt (documents.py)."""
    raw_fraction: float | None = None
    """--mix: in tpt mode, the chance that a sample is the raw document instead (None: no mix)."""
    weights: dict[str, float] = field(default_factory=dict)
    template: str = DEFAULT_TEMPLATE
    eos_token: str | None = None
    bos: str = "auto"
    """auto: every sample starts with BOS when the student tokenizer adds one (pack/bos.py); on; off."""
    packing: str = "stream"
    seed: int = 0
    shuffle_buffer: int = 10_000
    """Samples held for the shuffle (0: keep input order)."""
    shard_tokens: int = 1 << 24
    """Tokens per shard (rows per shard = shard_tokens // seq_len)."""
    batch_size: int = 1000
    batch_chars: int = 1 << 21
    """A batch also ends once its records hold this many characters (keeps the workers' jobs even)."""
    workers: int | None = None
    """Processes that validate and tokenize (None: one per core; 0: all in this process)."""
    piece_cache: int = DEFAULT_CAPACITY
    """Pieces each worker caches (pieces.py; 0: the tokenizer encodes every text whole)."""
    progress: bool = False
    """A progress line on stderr (records, rate, tokens/s); the CLI turns it on."""
    megatron: bool = False
    validate: bool = True
    checks: CheckConfig = field(default_factory=CheckConfig)
    duplicate_ids: str = "keep-both"
    """Records whose id came before: keep-both (reported in flagged.jsonl) or keep-first (skipped)."""
    control: str | None = None
    """A control arm of the TPT arm (pack/controls.py): shuffled (each document with another document's
    trajectory) or filler (content-free thinking of the same token count); None: the TPT arm itself."""
    control_seed: int | None = None
    """Seed of the shuffled control's derangement (None: --seed)."""
    executor: str = "local"
    """Where the checks and tokenization run: local (worker processes) or ray (pack/raypool.py)."""
    address: str | None = None
    """--executor ray: the cluster to join (None: the connected one, else $RAY_ADDRESS)."""
    unit_bytes: int = 8 << 20
    """--executor ray: bytes of a plain record file per worker task (pack/inputunits.py)."""

    def __post_init__(self) -> None:
        from tpt.storage import is_remote

        if is_remote(self.output):  # its inputs may be URLs; its output is read by memory-mapping
            raise ConfigError(
                f"--output {self.output}: pack writes memory-mapped shards that training reads from a local "
                "disk; give a local --output (its inputs may be s3://... URLs), then copy PACK_DIR to object "
                "storage if you want it kept there (docs/object-storage.md)"
            )
        if self.mode not in MODES:
            raise ConfigError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.document_text is not None and self.document_text not in DOCUMENT_TEXTS:
            raise ConfigError(
                f"--document-text must be one of {', '.join(DOCUMENT_TEXTS)}, got {self.document_text!r}"
            )
        if self.control is not None and self.control not in CONTROLS:
            raise ConfigError(f"--control must be one of {', '.join(CONTROLS)}, got {self.control!r}")
        if self.control is not None and self.mode != "tpt":
            raise ConfigError(
                f"--control {self.control} replaces the thinking of the TPT arm; it needs --mode tpt "
                f"(got --mode {self.mode})"
            )
        if self.executor not in EXECUTORS:
            raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)}, got {self.executor!r}")
        if self.control_seed is not None and self.control != "shuffled":
            raise ConfigError("--control-seed seeds the derangement of --control shuffled; it needs it")
        if self.raw_fraction is not None and self.mode != "tpt":
            raise ConfigError("--mix mixes raw documents into the TPT arm; it needs --mode tpt")
        if self.bos not in BOS_SETTINGS:
            raise ConfigError(f"--bos must be one of {', '.join(BOS_SETTINGS)}, got {self.bos!r}")
        if self.packing not in POLICIES:
            raise ConfigError(f"--packing must be one of {', '.join(POLICIES)}, got {self.packing!r}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.unit_bytes < 1:
            raise ConfigError(f"--unit-bytes must be >= 1, got {self.unit_bytes}")
        if self.workers is not None and self.workers < 0:
            raise ConfigError(f"--workers must be >= 0, got {self.workers}")
        if self.piece_cache < 0:
            raise ConfigError(f"--piece-cache must be >= 0, got {self.piece_cache}")
        if self.shard_tokens < 1:
            raise ConfigError(f"--shard-tokens must be >= 1, got {self.shard_tokens}")
        check_duplicate_policy(self.duplicate_ids)

    @property
    def text(self) -> str:
        """Which text of each document is packed: full or truncated."""
        return self.document_text or default_document_text(self.mode)

    def fingerprinted(self) -> dict[str, Any]:
        """The settings that change the output."""
        out = {k: v for k, v in asdict(self).items() if k not in _NOT_FINGERPRINTED}
        out["checks"] = self.checks.as_dict() if self.validate else None
        out["document_text"] = self.text
        return out
