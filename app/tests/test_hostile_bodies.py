"""No body the API agrees to read makes its resident memory grow by more than 64 MiB.

Measured on `credit-api serve` in a fresh process, as deployed: before each body its peak
resident size (VmHWM) is reset, and the peak it reaches while answering is compared with the
resident size before. Each body goes twice, so memory it leaves behind shows too.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from credit_api.config import Settings

from .api_process import ApiProcess
from .hostile_bodies import BATCH, PREDICT, ROW, Hostile, hostile_bodies, rows_within

MiB = 1024 * 1024
GROWTH_BOUND = 64 * MiB
LIMIT = Settings.model_fields["max_body_bytes"].default
MAX_BATCH = Settings.model_fields["max_batch_size"].default


def send(api: ApiProcess, hostile: Hostile, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{api.url}{hostile.route}",
        content=body,
        headers={"content-type": hostile.content_type},
        timeout=60,
    )


@pytest.mark.slow
def test_no_body_grows_resident_memory_by_more_than_64_mib(
    make_api: Callable[..., ApiProcess],
) -> None:
    api = make_api()
    # Warm up the allocator and the scoring path with valid traffic, as a serving pod has.
    with httpx.Client(base_url=api.url, timeout=60) as client:
        for _ in range(20):
            client.post(PREDICT, content=ROW, headers={"content-type": "application/json"})
        warm = rows_within(ROW, LIMIT, MAX_BATCH)
        for _ in range(3):
            client.post(BATCH, content=warm, headers={"content-type": "application/json"})
    baseline = api.resident_bytes()

    report, failures = [], []
    for hostile in hostile_bodies(MAX_BATCH):
        body = hostile.build(LIMIT)
        assert len(body) <= LIMIT, (hostile.name, len(body))
        peak_growth = 0
        for _ in range(2):
            before = api.resident_bytes()
            api.reset_peak()
            response = send(api, hostile, body)
            peak_growth = max(peak_growth, api.peak_resident_bytes() - before)
            assert response.status_code == hostile.status, (hostile.name, response.text[:300])
            if hostile.first_loc is not None:
                first = response.json()["detail"][0]
                assert tuple(first["loc"]) == hostile.first_loc, (hostile.name, first)
                assert first["msg"], (hostile.name, first)
                assert first["type"], (hostile.name, first)
        left = api.resident_bytes() - baseline
        # The figures docs/reliability.md quotes (pytest -s shows them).
        report.append(
            f"{hostile.name}: {len(body) / MiB:.2f} MiB body, peak +{peak_growth / MiB:.1f} MiB,"
            f" resident since warm-up {left / MiB:+.1f} MiB"
        )
        print(report[-1])
        if peak_growth > GROWTH_BOUND or left > GROWTH_BOUND:
            failures.append(hostile.name)
    assert not failures, "\n".join(report)
