"""schemathesis against /openapi.json: no 5xx, and every response as documented."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.conftest import ENV, make_key
from tests.support.processes import start_api

# No worker listens on this API's queue, so fuzzed jobs are stored and wait: nothing trains.
FUZZ_ENV = {
    **ENV,
    "WGAN_REDIS_PREFIX": ENV["WGAN_REDIS_PREFIX"] + "-fuzz",
    "WGAN_RATE_JOBS_PER_MINUTE": "0",
    "WGAN_RATE_SAMPLES_PER_MINUTE": "0",
}
EXAMPLES = 40
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzz_api(database: str, log_dir: Path) -> Iterator[str]:
    process, url = start_api(FUZZ_ENV, log_dir, name="api-fuzz")
    yield url
    process.stop()


@pytest.fixture(scope="module")
def fuzz_key(database: str) -> str:
    return make_key()


def test_no_server_errors_and_responses_match_the_schema(fuzz_api: str, fuzz_key: str) -> None:
    # Driven through hypothesis directly: schemathesis's pytest plugin does not load under pytest 9.
    schema = schemathesis.openapi.from_url(f"{fuzz_api}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def exercise(case) -> None:
            case.call_and_validate(
                base_url=fuzz_api, headers={"Authorization": f"Bearer {fuzz_key}"}, checks=CHECKS, timeout=30
            )

        try:
            exercise()
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert operations >= 14
    assert not failures, "\n\n".join(failures)
