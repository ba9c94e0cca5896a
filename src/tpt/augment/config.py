"""The config of `tpt augment`: what to read, which teacher, how to prompt and decode, where to write.

The defaults are written here once; `augment/cli.py` takes its option defaults from these fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tpt.augment.backends.base import SamplingParams
from tpt.augment.budget import BudgetOptions
from tpt.augment.failfast import DEFAULT_LIMIT as DEFAULT_FAIL_FAST
from tpt.core.control_tokens import check_policy
from tpt.core.duplicate_ids import check_policy as check_duplicate_policy
from tpt.core.errors import ConfigError

LOOP_POLICIES = ("keep-prefix", "drop")


@dataclass(frozen=True, kw_only=True)
class AugmentConfig:
    inputs: list[str]
    output: Path
    """A local directory or a URL on object storage (s3://bucket/aug/; docs/object-storage.md)."""
    backend: str = "transformers"
    backend_options: Mapping[str, object] = field(default_factory=dict)
    """Backend options (model, base_url, concurrency, batch_size, ...): see backends/base.py."""
    text_field: str = "text"
    id_field: str = "id"
    template: str = "paper"
    max_doc_tokens: int = 2048
    sampling: SamplingParams = field(default_factory=SamplingParams)
    shard_size: int = 1000
    """Input items per output shard: the unit of commit and of resume."""
    output_format: str = "jsonl"
    """How a shard's records are committed: jsonl (part-K.jsonl) or parquet (part-K.parquet: columns,
    schema from formats.records.AugmentedRecord; formats/parquet.py)."""
    limit: int | None = None
    """Process only the first N input items (a later run with a larger limit continues)."""
    strict: bool = False
    """Stop at the first malformed line, missing field or empty document instead of recording it."""
    overwrite_config: bool = False
    retry_failed: bool = False
    """Do again the documents whose generation failed in earlier runs (their failure lines go)."""
    control_tokens: str = "neutralize"
    """What a server-templated backend (openai) does with a document holding the teacher's control
    strings: neutralize, reject (an input failure) or pass (core/control_tokens.py)."""
    duplicate_ids: str = "keep-both"
    """Documents whose id came before: keep-both (reported; the record says duplicate_of) or
    keep-first (the later ones are duplicate_id failures)."""
    progress: bool = True
    loop_policy: str = "keep-prefix"
    """What becomes of a trajectory the loop guard stopped: keep-prefix (a record with the thinking up
    to where the loop began, finish_reason 'repetition'; validate's loop_stopped check drops it unless
    disabled, and --paper-faithful packing keeps it) or drop (a 'repetition' failure, no record)."""
    thinking_budget: BudgetOptions | None = None
    """--thinking-budget and --allocation: the run's thinking tokens in all, and which documents get
    them (augment/budget.py); None: every document may use --max-thinking-tokens."""
    fail_fast: int = DEFAULT_FAIL_FAST
    """Stop the run (exit status 4) when this run's first N generations all fail and none succeeds: a
    teacher that cannot do the work (failfast.py says why 32); 0 never stops."""

    def __post_init__(self) -> None:
        from tpt.storage import as_path

        object.__setattr__(self, "output", as_path(self.output))  # a str, Path or URL
        if self.output_format not in ("jsonl", "parquet"):
            raise ConfigError(f"--output-format must be jsonl or parquet, got {self.output_format!r}")
        if self.max_doc_tokens < 1:
            raise ConfigError(f"--max-doc-tokens must be >= 1, got {self.max_doc_tokens}")
        if self.shard_size < 1:
            raise ConfigError(f"--shard-size must be >= 1, got {self.shard_size}")
        if self.limit is not None and self.limit < 0:
            raise ConfigError(f"--limit must be >= 0, got {self.limit}")
        if self.fail_fast < 0:
            raise ConfigError(f"--fail-fast must be >= 0 (0: never stop), got {self.fail_fast}")
        check_policy(self.control_tokens)
        check_duplicate_policy(self.duplicate_ids)
        if self.loop_policy not in LOOP_POLICIES:
            raise ConfigError(
                f"--loop-policy must be one of {', '.join(LOOP_POLICIES)}, got {self.loop_policy!r}"
            )
