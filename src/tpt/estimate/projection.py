"""Project a sample's measured augmentation onto a whole corpus: documents, tokens and GPU-hours.

Pure arithmetic over the sample's summary, so the numbers can be checked by hand (tests do). Token counts
are the teacher's (its tokenizer counts documents and thinking); a student tokenizer differs by ~10-20%.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tpt.core.errors import ConfigError

PAPER_A100_HOURS = 20_000.0
PAPER_TRAINING_TOKENS = 100e9
"""[P] App. A.1: 'roughly 20k A100 GPU hours to yield enough data for 100B training tokens'."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SampleMeasurement:
    """What the sample run measured (from its summary.json)."""

    items: int
    """Input items in the sample."""
    records: int
    """Items that became an augmented record."""
    doc_tokens: int
    """Teacher tokens of the documents as the teacher saw them (after --max-doc-tokens)."""
    prompt_tokens: int
    completion_tokens: int
    """Generated tokens: the thinking (what the GPUs spend their time on)."""
    wall_seconds: float
    loop_stopped: int = 0
    """Trajectories the loop guard stopped (records, or 'repetition' failures with --loop-policy drop)."""
    loop_stopped_tokens: int = 0
    """The tokens they generated before it did (in completion_tokens when they are records)."""

    def __post_init__(self) -> None:
        if self.items < 1 or self.records < 1:
            raise ConfigError(
                f"the sample produced {self.records} records from {self.items} items: nothing to "
                "project from (check failures.jsonl of the sample run, or use a larger --sample)"
            )
        if self.wall_seconds <= 0:
            raise ConfigError(f"the sample's wall time must be > 0, got {self.wall_seconds}")


@dataclass(frozen=True, kw_only=True, slots=True)
class Projection:
    corpus_items: int
    success_rate: float
    documents: float
    """Augmented samples the corpus yields (items x success rate)."""
    mean_doc_tokens: float
    mean_thinking_tokens: float
    augmentation_factor: float
    """(document + thinking) / document: the paper's runs imply about 3."""
    teacher_prompt_tokens: float
    teacher_generated_tokens: float
    training_tokens: float
    """Document + thinking tokens of the augmented corpus (template tokens excluded: a few per sample)."""
    measured_generated_tokens_per_s: float
    hours_at_measured_rate: float
    """Wall-clock hours for the whole corpus on what the sample ran on (one machine, or the cluster)."""
    gpu_tokens_per_s: float | None
    gpu_hours: float | None
    """Generated tokens / (the given per-GPU throughput), in GPU-hours."""
    gpus: int | None
    days_on_gpus: float | None
    paper_a100_hours: float
    """The paper's cost scaled to this many training tokens: 20k A100-hours per 100B."""
    documents_for_target: float | None
    target_training_tokens: float | None
    loop_stopped_share: float = 0.0
    """Share of the sample's items whose trajectory the loop guard stopped (validate's loop_stopped
    check drops them by default: the documents above still count them)."""
    loop_stopped_tokens_share: float = 0.0
    """Share of the generated tokens those trajectories took."""

    def as_dict(self) -> dict[str, int | float | None]:
        return asdict(self)


def project(
    m: SampleMeasurement,
    corpus_items: int,
    *,
    gpu_tokens_per_s: float | None = None,
    gpus: int | None = None,
    target_training_tokens: float | None = None,
) -> Projection:
    """Scale the sample to `corpus_items` input items."""
    if corpus_items < m.items:
        raise ConfigError(f"the corpus has {corpus_items} items, fewer than the sample's {m.items}")
    if gpu_tokens_per_s is not None and gpu_tokens_per_s <= 0:
        raise ConfigError(f"--gpu-throughput must be > 0 tokens/s, got {gpu_tokens_per_s}")
    if gpus is not None and gpus < 1:
        raise ConfigError(f"--gpus must be >= 1, got {gpus}")
    success = m.records / m.items
    documents = corpus_items * success
    doc_mean = m.doc_tokens / m.records
    think_mean = m.completion_tokens / m.records
    generated = documents * think_mean
    training = documents * (doc_mean + think_mean)
    rate = m.completion_tokens / m.wall_seconds
    gpu_hours = generated / gpu_tokens_per_s / 3600 if gpu_tokens_per_s else None
    return Projection(
        corpus_items=corpus_items,
        success_rate=success,
        documents=documents,
        mean_doc_tokens=doc_mean,
        mean_thinking_tokens=think_mean,
        augmentation_factor=(doc_mean + think_mean) / doc_mean if doc_mean else float("inf"),
        teacher_prompt_tokens=documents * m.prompt_tokens / m.records,
        teacher_generated_tokens=generated,
        training_tokens=training,
        measured_generated_tokens_per_s=rate,
        hours_at_measured_rate=generated / rate / 3600 if rate else float("inf"),
        gpu_tokens_per_s=gpu_tokens_per_s,
        gpu_hours=gpu_hours,
        gpus=gpus,
        days_on_gpus=gpu_hours / gpus / 24 if gpu_hours is not None and gpus else None,
        paper_a100_hours=PAPER_A100_HOURS * training / PAPER_TRAINING_TOKENS,
        documents_for_target=target_training_tokens / (doc_mean + think_mean)
        if target_training_tokens
        else None,
        target_training_tokens=target_training_tokens,
        loop_stopped_share=m.loop_stopped / m.items,
        loop_stopped_tokens_share=m.loop_stopped_tokens / m.completion_tokens if m.completion_tokens else 0.0,
    )


def human(n: float) -> str:
    """1234567 -> '1.23M' (k, M, B, T)."""
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.3g}"


def _num(x: float) -> str:
    """Hours and days: whole numbers when large, 3 significant digits when small (0.0123, 1.16)."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def report(p: Projection) -> str:
    """The projection as the lines `tpt estimate` prints."""
    lines = [
        f"corpus: {p.corpus_items:,} input items; {p.success_rate:.1%} of the sample became records",
        f"  documents (augmented samples): {human(p.documents)}",
        f"  per document: {p.mean_doc_tokens:,.0f} document + {p.mean_thinking_tokens:,.0f} thinking tokens "
        f"(x{p.augmentation_factor:.2f}; the paper's runs imply about x3)",
        f"  teacher tokens: {human(p.teacher_prompt_tokens)} prompt, {human(p.teacher_generated_tokens)} generated",
        f"  training tokens of the augmented corpus: {human(p.training_tokens)} (teacher tokenizer)",
        f"  at the measured {p.measured_generated_tokens_per_s:,.1f} generated tokens/s (this machine, start-up "
        f"included): {_num(p.hours_at_measured_rate)} hours",
    ]
    if p.loop_stopped_share:
        lines.append(
            f"  the loop guard stopped {p.loop_stopped_share:.1%} of the sample's trajectories "
            f"({p.loop_stopped_tokens_share:.1%} of the generated tokens); validate drops them (loop_stopped)"
        )
    if p.gpu_hours is not None:
        line = f"  at {p.gpu_tokens_per_s:,.0f} generated tokens/s per GPU: {_num(p.gpu_hours)} GPU-hours"
        if p.days_on_gpus is not None:
            line += f" = {_num(p.days_on_gpus)} days on {p.gpus} GPUs"
        lines.append(line)
    lines.append(
        f"  paper, for comparison: 20k A100-hours per 100B training tokens -> {_num(p.paper_a100_hours)} "
        f"A100-hours for {human(p.training_tokens)} tokens"
    )
    if p.documents_for_target is not None:
        enough = "enough" if p.documents >= p.documents_for_target else "NOT enough"
        lines.append(
            f"  {human(p.target_training_tokens or 0)} training tokens need {human(p.documents_for_target)} "
            f"augmented documents: this corpus has {enough}"
        )
    return "\n".join(lines)
