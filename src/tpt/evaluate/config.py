"""The config of `tpt eval`: what to score and how (checked when it is made; `evaluate/cli.py` takes its
option defaults from these fields)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tpt.core.errors import ConfigError
from tpt.evaluate.engine import DTYPES, ENGINES, GenParams
from tpt.evaluate.spec import TaskSpec


@dataclass(frozen=True, kw_only=True, slots=True)
class EvalConfig:
    """What to score and how; the settings that change scores go into each row's `config`."""

    models: tuple[str, ...]
    """Hugging Face model directories, .gguf files, 'embedded', or training run directories (RUN_DIR or
    RUN_DIR/checkpoints: every checkpoint is scored)."""
    tasks: tuple[str | TaskSpec, ...]
    """Built-in task names, task-file paths (.yaml/.yml/.json) or TaskSpecs."""
    output: Path | None = None
    """The results JSONL (rows are appended; samples go to OUTPUT.samples.jsonl); None: rows only returned."""
    engine: str = "hf"
    """hf (CPU or GPU) or vllm (GPU)."""
    dtype: str = "auto"
    device: str | None = None
    """None: cuda for vllm, cpu for hf."""
    batch_size: int = 32
    """Prompts per generation batch."""
    max_new_tokens: int | None = None
    """Overrides every task's own limit (built-ins: 2048, as in the paper)."""
    limit: int | None = None
    """Score only the first N questions of each task."""
    temperature: float = 0.0
    """0 is greedy decoding."""
    top_p: float = 1.0
    samples: int = 1
    """Samples per question; metrics are pass@1 averaged."""
    seed: int = 0
    threads: int | None = None
    """torch CPU threads (torch.set_num_threads)."""

    def __post_init__(self) -> None:
        if isinstance(self.models, str) or not self.models:
            raise ConfigError("no MODEL given: pass a model directory, a .gguf file, 'embedded' or a RUN_DIR")
        if isinstance(self.tasks, str | TaskSpec):
            raise ConfigError("tasks must be a sequence of task names, task files or TaskSpecs")
        object.__setattr__(self, "models", tuple(str(m) for m in self.models))
        object.__setattr__(self, "tasks", tuple(self.tasks))
        if self.output is not None:
            object.__setattr__(self, "output", Path(self.output))
        if self.device is None:
            object.__setattr__(self, "device", "cuda" if self.engine == "vllm" else "cpu")
        if self.engine not in ENGINES:
            raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be >= 1, got {self.limit}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.batch_size}")

    def gen_params(self, task: TaskSpec) -> GenParams:
        return GenParams(
            max_new_tokens=self.max_new_tokens or task.max_new_tokens,
            stop=task.stop,
            temperature=self.temperature,
            top_p=self.top_p,
            samples=self.samples,
            seed=self.seed,
        )
