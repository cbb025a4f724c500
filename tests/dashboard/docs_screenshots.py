"""The README's screenshots (docs/dashboard-*.png) from jobs that train long enough to show something.

A generator, not a test (pytest does not collect this file by itself); run it by name with the folder:
    WGAN_DOCS_SCREENSHOTS=docs .venv/bin/pytest tests/dashboard/docs_screenshots.py
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import wait_for_status
from tests.dashboard.conftest import DOCS_SCREENSHOTS, shoot_for_docs, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not DOCS_SCREENSHOTS, reason="set WGAN_DOCS_SCREENSHOTS=docs to say where to write them"),
]

MODEL = {"hidden_dim": 128, "depth": 3}
TRAINING = {"batch_size": 256, "steps": 2000, "log_every": 10, "checkpoint_every": 250, "model": MODEL}


def submit(http: httpx.Client, **spec: Any) -> str:
    response = http.post("/api/v1/jobs", json={**TRAINING, **spec})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


@pytest.mark.timeout(900)
def test_docs_screenshots(page: Page, api: str, worker: object, dashboard_key: str) -> None:
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {dashboard_key}"}, timeout=30) as http:
        gp = submit(http, name="8gaussians-wgan-gp", dataset={"name": "8gaussians"}, loss={"kind": "wgan-gp"})
        vanilla = submit(http, name="8gaussians-vanilla", dataset={"name": "8gaussians"}, loss={"kind": "vanilla"})
        for job_id in (gp, vanilla):
            wait_for_status(http, job_id, {"succeeded"}, timeout=600)

    sign_in(page, dashboard_key, f"#/jobs/{gp}")
    expect(page.locator(".samples-image")).to_have_attribute("data-step", "2000")
    page.wait_for_timeout(500)  # the charts draw on the next animation frame
    shoot_for_docs(page, "dashboard-job")

    page.goto(f"/#/compare?ids={vanilla},{gp}")
    expect(page.locator(".sample-card img[data-step='2000']")).to_have_count(2)
    page.wait_for_timeout(500)
    shoot_for_docs(page, "dashboard-compare")
