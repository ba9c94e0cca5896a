"""`tpt estimate`: augment a random sample of a corpus through the real augment stage, and project the cost
of the whole corpus from what it measured. `run(EstimateConfig(...)) -> EstimateSummary`.

    from tpt.augment.stage import AugmentConfig
    from tpt.estimate.config import EstimateConfig
    from tpt.estimate.stage import run
    teacher = AugmentConfig(inputs=["corpus/"], output="unused", backend="openai", backend_options={...})
    summary = run(EstimateConfig(augment=teacher, sample=64, gpu_throughput=1500, output="est"))
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tpt.core.artifacts import write_json
from tpt.core.errors import ConfigError
from tpt.estimate.config import EstimateConfig
from tpt.estimate.projection import Projection, SampleMeasurement, project
from tpt.estimate.sample import draw_sample
from tpt.formats.summaries import EstimateSummary

if TYPE_CHECKING:
    from tpt.augment.budget import BudgetOptions

__all__ = ["EstimateConfig", "run"]


def per_document(budget: BudgetOptions | None, corpus_items: int) -> BudgetOptions | None:
    """The sample runs under the corpus's thinking budget as a mean per document (a total for the whole
    corpus, given to a 64-document sample, would cap nothing), with the same allocation: the sample's
    caps then follow the corpus's, and so does the projection (tokens, hours) under that allocation."""
    if budget is None or budget.per_document:
        return budget
    return replace(budget, tokens=budget.tokens / corpus_items, per_document=True)


def run(config: EstimateConfig, *, executor: Any = None) -> EstimateSummary:
    """Draw the sample, augment it (`executor` as in augment.stage.run), project; estimate.json is
    written to config.output when one is given."""
    from tpt.augment.stage import run as augment

    with tempfile.TemporaryDirectory(prefix="tpt-estimate-") as tmp:
        root = config.output or Path(tmp)
        out, sample_file = root / "augmented", root / "sample.jsonl"
        if out.exists():  # a resumed sample would measure no throughput
            raise ConfigError(f"{root} already holds a sample run; give tpt estimate a new --output")
        inputs = [str(i) for i in config.augment.inputs]
        corpus_items, sample_items = draw_sample(
            inputs, config.sample, seed=config.sample_seed, out=sample_file
        )
        if sample_items == 0:
            raise ConfigError(f"{' '.join(inputs)} holds no items to sample")
        sample_config = replace(
            config.augment,
            inputs=[str(sample_file)],
            output=out,
            thinking_budget=per_document(config.augment.thinking_budget, corpus_items),
        )
        s = augment(sample_config, executor=executor)
    measured = SampleMeasurement(
        items=s.input_items,
        records=s.records,
        doc_tokens=s.doc_tokens,
        prompt_tokens=s.prompt_tokens,
        completion_tokens=s.completion_tokens,
        wall_seconds=s.wall_seconds,
        loop_stopped=s.stopped_by_loop_guard + s.failures_by_reason.get("repetition", 0),
        loop_stopped_tokens=s.loop_guard_tokens,
    )
    projection: Projection = project(
        measured,
        corpus_items,
        gpu_tokens_per_s=config.gpu_throughput,
        gpus=config.gpus,
        target_training_tokens=config.target_training_tokens,
    )
    summary = EstimateSummary(
        corpus_items=corpus_items,
        sample_items=sample_items,
        sample_seed=config.sample_seed,
        measured=asdict(measured),
        projection=projection.as_dict(),
        output=config.output,
        sample_run=s,
    )
    if config.output is not None:
        write_json(config.output / "estimate.json", summary.to_json())
    return summary
