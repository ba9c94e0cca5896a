"""The estimator's arithmetic, against numbers worked out by hand."""

import pytest

from tpt.core.errors import ConfigError
from tpt.estimate.projection import SampleMeasurement, human, project, report

# 10 sampled items -> 8 records; per record 1000 document, 1200 prompt and 2000 thinking tokens; 20 s.
SAMPLE = SampleMeasurement(
    items=10, records=8, doc_tokens=8000, prompt_tokens=9600, completion_tokens=16000, wall_seconds=20.0
)


def test_projection_by_hand():
    p = project(SAMPLE, 1_000_000, gpu_tokens_per_s=2000, gpus=8, target_training_tokens=100e9)
    assert p.success_rate == 0.8 and p.documents == 800_000
    assert p.mean_doc_tokens == 1000 and p.mean_thinking_tokens == 2000 and p.augmentation_factor == 3.0
    assert p.teacher_prompt_tokens == 960_000_000  # 800k x 1200
    assert p.teacher_generated_tokens == 1_600_000_000  # 800k x 2000
    assert p.training_tokens == 2_400_000_000  # 800k x (1000 + 2000)
    assert p.measured_generated_tokens_per_s == 800  # 16000 / 20
    assert p.hours_at_measured_rate == pytest.approx(555.5556, rel=1e-6)  # 1.6e9 / 800 / 3600
    assert p.gpu_hours == pytest.approx(222.2222, rel=1e-6)  # 1.6e9 / 2000 / 3600
    assert p.days_on_gpus == pytest.approx(1.157407, rel=1e-6)  # 222.2 / 8 / 24
    assert p.paper_a100_hours == pytest.approx(480.0)  # 20k x 2.4e9 / 100e9
    assert p.documents_for_target == pytest.approx(33_333_333.33, rel=1e-9)  # 100e9 / 3000


def test_the_paper_figure_is_20k_hours_at_100b_tokens():
    # a corpus that yields exactly 100B training tokens: 100e9 / 3000 tokens per document
    p = project(SAMPLE, round(100e9 / 3000 / 0.8))
    assert p.training_tokens == pytest.approx(100e9, rel=1e-6) and p.paper_a100_hours == pytest.approx(
        20_000, rel=1e-6
    )


def test_report_prints_every_figure():
    text = report(project(SAMPLE, 1_000_000, gpu_tokens_per_s=2000, gpus=8, target_training_tokens=100e9))
    for expected in (
        "800k",
        "x3.00",
        "1.6B generated",
        "2.4B (teacher tokenizer)",
        "556 hours",
        "222 GPU-hours = 1.16 days on 8 GPUs",
        "480 A100-hours",
        "NOT enough",
    ):
        assert expected in text, expected
    assert human(1_234_567) == "1.23M" and human(999) == "999"
    tiny = report(project(SAMPLE, 10, gpu_tokens_per_s=2000, gpus=8))
    assert "0.00222 GPU-hours = 1.16e-05 days" in tiny  # small corpora keep their digits


def test_impossible_inputs_are_refused():
    with pytest.raises(ConfigError, match="produced 0 records"):
        SampleMeasurement(
            items=5, records=0, doc_tokens=0, prompt_tokens=0, completion_tokens=0, wall_seconds=1
        )
    with pytest.raises(ConfigError, match="fewer than the sample"):
        project(SAMPLE, 5)
    with pytest.raises(ConfigError, match="--gpu-throughput must be > 0"):
        project(SAMPLE, 100, gpu_tokens_per_s=0)
