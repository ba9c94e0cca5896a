"""Training logs: RUN_DIR/metrics.jsonl, a progress line with ETA, and TensorBoard or W&B when asked for.

Only rank 0 writes. On resume the lines past the checkpoint's step are dropped, so metrics.jsonl
reads as one uninterrupted run. A missing optional logger is a warning, never a failed run.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path

METRICS = "metrics.jsonl"

MetricsRecord = dict[str, int | float | None]
"""One metrics.jsonl line: step, tokens, losses, lr, ... (None: not measured in that window, e.g. the loss
of a window whose steps were all skipped)."""


class MetricsLog:
    """Appends one JSON line per logging step and mirrors it to the optional loggers."""

    def __init__(
        self,
        run_dir: Path,
        *,
        resume_step: int,
        total_steps: int,
        enabled: bool = True,
        tensorboard: bool = False,
        wandb: bool = False,
        run_config: Mapping[str, object] | None = None,
    ) -> None:
        self.enabled = enabled
        self.total_steps = total_steps
        self.path = Path(run_dir) / METRICS
        self._last_print = 0.0
        self._tty = sys.stderr.isatty()
        self._tb = self._wandb = None
        if not enabled:
            return
        self._truncate(resume_step)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
            except ImportError:
                print(
                    "tpt train: warning: --tensorboard needs `pip install tensorboard`; not logging to it",
                    file=sys.stderr,
                )
        if wandb:
            try:
                import wandb as wb

                self._wandb = wb.init(
                    project="tpt",
                    dir=str(run_dir),
                    config=dict(run_config or {}),
                    name=Path(run_dir).name,
                    resume="allow",
                )
            except ImportError:
                print(
                    "tpt train: warning: --wandb needs `pip install wandb`; not logging to it",
                    file=sys.stderr,
                )

    def _truncate(self, resume_step: int) -> None:
        if not self.path.exists():
            return
        keep = []
        for line in self.path.read_text(encoding="utf-8").split("\n"):
            try:
                if json.loads(line).get("step", 0) <= resume_step:
                    keep.append(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash
        self.path.write_text("".join(k + "\n" for k in keep), encoding="utf-8")

    def write(self, record: MetricsRecord) -> None:
        if not self.enabled:
            return
        self._file.write(json.dumps(record, sort_keys=True) + "\n")
        self._file.flush()
        step = int(record["step"] or 0)
        if self._tb is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "step":
                    self._tb.add_scalar(f"train/{key}", value, step)
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in record.items() if isinstance(v, (int, float))}, step=step)
        self._progress(record)

    def _progress(self, r: MetricsRecord) -> None:
        now = time.monotonic()
        last = (r["step"] or 0) >= self.total_steps
        if not (self._tty or last or now - self._last_print > 30):
            return
        self._last_print = now
        tps = r.get("tokens_per_second") or 0.0
        step = int(r["step"] or 0)
        left = (self.total_steps - step) * (r.get("tokens_per_step") or 0) / tps if tps else 0.0
        # A window whose steps were all skipped as non-finite has no loss.
        loss = "n/a" if r["loss"] is None else f"{r['loss']:.4f}"
        line = (
            f"step {step}/{self.total_steps}  tokens {r['tokens']:,}  loss {loss}  "
            f"lr {r['lr']:.2e}  {tps:,.0f} tok/s  ETA {_hms(left)}"
        )
        end = "\n" if (last or not self._tty) else ""
        print(("\r" if self._tty else "") + line, end=end, file=sys.stderr, flush=True)

    def close(self) -> None:
        if not self.enabled:
            return
        self._file.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def _hms(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
