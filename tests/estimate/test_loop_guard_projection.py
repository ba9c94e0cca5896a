"""tpt estimate counts the trajectories the loop guard stopped in its sample, by hand."""

from dataclasses import replace

from tpt.estimate.projection import SampleMeasurement, project, report

# 10 sampled items -> 8 records, 2 of them stopped by the loop guard after 2000 of the 16000 tokens.
SAMPLE = SampleMeasurement(
    items=10, records=8, doc_tokens=8000, prompt_tokens=9600, completion_tokens=16000, wall_seconds=20.0,
    loop_stopped=2, loop_stopped_tokens=2000,
)  # fmt: skip


def test_the_share_stopped_and_its_tokens():
    p = project(SAMPLE, 1_000_000)
    assert p.loop_stopped_share == 0.2 and p.loop_stopped_tokens_share == 0.125
    assert (
        "the loop guard stopped 20.0% of the sample's trajectories (12.5% of the generated tokens)"
        in report(p)
    )


def test_no_line_when_nothing_was_stopped():
    p = project(replace(SAMPLE, loop_stopped=0, loop_stopped_tokens=0), 1_000_000)
    assert p.loop_stopped_share == 0 and "loop guard" not in report(p)
