"""Property-based tests from the app's own OpenAPI schema (schemathesis): valid and invalid
requests for every operation, sent to the app served by uvicorn; no 5xx, and every response
conforms to the schema."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Err
from schemathesis.generation import GenerationMode

if TYPE_CHECKING:
    from .conftest import LiveServer

EXAMPLES_PER_OPERATION = 120
MIN_CASES = 500


def test_the_documented_examples_are_valid(module_server: LiveServer) -> None:
    """Every example in the schema gets a successful answer (feedback needs a real id)."""
    spec = requests.get(f"{module_server.url}/openapi.json", timeout=10).json()
    predict = spec["paths"]["/api/v1/predict"]["post"]["requestBody"]["content"]
    schema_ref = predict["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    [example] = spec["components"]["schemas"][schema_ref]["examples"]
    response = requests.post(f"{module_server.url}/api/v1/predict", json=example, timeout=10)
    assert response.status_code == 200
    batch_ref = spec["paths"]["/api/v1/predict/batch"]["post"]["requestBody"]["content"]
    batch_name = batch_ref["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    [batch] = spec["components"]["schemas"][batch_name]["examples"]
    assert requests.post(f"{module_server.url}/api/v1/predict/batch", json=batch, timeout=10).ok
    feedback_name = spec["paths"]["/api/v1/feedback"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]["$ref"].rsplit("/", 1)[-1]
    [feedback] = spec["components"]["schemas"][feedback_name]["examples"]
    feedback["request_id"] = response.json()["request_id"]
    assert requests.post(f"{module_server.url}/api/v1/feedback", json=feedback, timeout=10).ok


def test_no_server_errors_over_generated_requests(module_server: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(f"{module_server.url}/openapi.json")
    session = requests.Session()
    statuses: list[int] = []

    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()
        # Invalid requests exist only for operations that take input (the POSTs).
        takes_input = operation.method.upper() == "POST"
        modes = (
            [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
            if takes_input
            else [GenerationMode.POSITIVE]
        )
        for mode in modes:

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                response = case.call_and_validate(base_url=module_server.url, session=session)
                statuses.append(response.status_code)
                assert response.status_code < 500, (case.method, case.path, response.text)

            check()

    print(f"{len(statuses)} generated requests, statuses {sorted(set(statuses))}")
    assert len(statuses) >= MIN_CASES, f"only {len(statuses)} cases were generated"
    assert all(status < 500 for status in statuses)
    assert 200 in statuses
    assert 422 in statuses
