"""The stub's long-tailed latency and its timing file (used by benchmarks/augment_soak.py)."""

from __future__ import annotations

import json
import statistics

from tpt.augment.backends.base import GenerationRequest, SamplingParams
from tpt.augment.backends.openai_http import OpenAIHttpBackend
from tpt.testing.openai_stub import StubProcess


def test_log_normal_latency_and_the_timing_file(tmp_path):
    timing = tmp_path / "timing.json"
    args = [
        "--latency-ms",
        "4",
        "--latency-sigma",
        "1.288",
        "--words",
        "4",
        "--timing-out",
        str(timing),
        "--fail-rate",
        "0.1",
        "--faults",
        "500",
        "--retry-after-s",
        "0",
    ]
    n = 400
    with StubProcess(args, max_seconds=60) as stub:
        backend = OpenAIHttpBackend(model="stub", base_url=stub.base_url, concurrency=64, retry_base_s=0.001)
        with backend:
            requests = (
                GenerationRequest(key=i, messages=({"role": "user", "content": f"doc {i}"},))
                for i in range(n)
            )
            results = list(backend.generate(requests, SamplingParams(max_tokens=8)))
    assert len(results) == n and not any(r.error for r in results)
    attempts = json.loads(timing.read_text())
    assert len(attempts) == n
    ok = sorted(a[1] for tries in attempts.values() for a in tries if a[2] == "ok")
    faults = [a for tries in attempts.values() for a in tries if a[2] == "500"]
    assert 0.05 * n < len(faults) < 0.2 * n and all(a[1] == 0.0 for a in faults)
    median = statistics.median(ok)
    assert 0.003 < median < 0.0055  # exp(sigma z) has median 1
    assert 8 < ok[int(0.99 * len(ok))] / median < 50  # p99 ~ 20x the median (400 draws: noisy)
    assert all(a[0] <= a[3] for tries in attempts.values() for a in tries)
