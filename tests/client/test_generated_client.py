"""The OpenAPI document serves other generators than ours: a client that openapi-python-client generates
from the running API's /openapi.json builds, imports and takes a job through its life."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import TOY_SPEC, make_key

PACKAGE = "wgan_generated"


def _generate(api: str, where: Path) -> Any:
    document = where / "openapi.json"
    document.write_text(httpx.get(f"{api}/openapi.json").text)
    # The generator formats its output with ruff, which it looks for on PATH.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    generated = subprocess.run(
        [
            *(sys.executable, "-m", "openapi_python_client", "generate", "--path", str(document)),
            *("--output-path", str(where / PACKAGE), "--meta", "none", "--fail-on-warning"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    sys.path.insert(0, str(where))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))


def test_a_generated_client_runs_a_jobs_life(api: str, worker: Any, tmp_path: Path) -> None:
    generated = _generate(api, tmp_path)
    try:
        from wgan_generated.api.jobs import (
            create_job_api_v1_jobs_post,
            delete_job_api_v1_jobs_job_id_delete,
            get_job_api_v1_jobs_job_id_get,
            list_jobs_api_v1_jobs_get,
        )
        from wgan_generated.api.metrics import list_metrics_api_v1_jobs_job_id_metrics_get
        from wgan_generated.api.samples import get_samples_api_v1_jobs_job_id_samples_get
        from wgan_generated.models import Job, JobSpec, JobStatus, SampleSet
        from wgan_generated.models.get_samples_api_v1_jobs_job_id_samples_get_format import (
            GetSamplesApiV1JobsJobIdSamplesGetFormat as SampleFormat,
        )

        client = generated.AuthenticatedClient(base_url=api, token=make_key())
        with client:
            job = create_job_api_v1_jobs_post.sync(client=client, body=JobSpec.from_dict({**TOY_SPEC, "steps": 20}))
            assert isinstance(job, Job) and job.status == JobStatus.QUEUED

            deadline = time.monotonic() + 60
            while job.status not in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}:
                assert time.monotonic() < deadline, "the job did not end within a minute"
                time.sleep(0.2)
                job = get_job_api_v1_jobs_job_id_get.sync(job.id, client=client)
            assert job.status == JobStatus.SUCCEEDED
            assert job.spec.steps == 20 and job.progress.step == 20

            page = list_jobs_api_v1_jobs_get.sync(client=client)
            assert [item.id for item in page.items] == [job.id]

            metrics = list_metrics_api_v1_jobs_job_id_metrics_get.sync(job.id, client=client)
            assert [point.step for point in metrics.items] == list(range(5, 21, 5))

            answer = get_samples_api_v1_jobs_job_id_samples_get.sync_detailed(
                job.id, client=client, n=8, seed=2, format_=SampleFormat.JSON
            )
            assert answer.status_code == 200
            samples = SampleSet.from_dict(json.loads(answer.content))
            assert samples.seed == 2 and samples.checkpoint.step == 20
            assert len(samples.samples) == 8 and all(len(point) == 2 for point in samples.samples)

            deleted = delete_job_api_v1_jobs_job_id_delete.sync_detailed(job.id, client=client)
            assert deleted.status_code == 204
            assert get_job_api_v1_jobs_job_id_get.sync_detailed(job.id, client=client).status_code == 404
    finally:
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]
