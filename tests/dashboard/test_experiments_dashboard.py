"""The experiments pages in a real Chromium against the real API and worker: the list, an experiment's
grid points with mean ± sd, its runs sorted, the best samples of each grid point, and the form."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import TOY_SPEC, wait_for
from tests.dashboard.conftest import shoot, sign_in


@pytest.fixture
def http(api: str, dashboard_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {dashboard_key}"}, timeout=30) as client:
        yield client


def test_an_experiment_page_ranks_its_runs_and_shows_each_grid_points_best_samples(
    page: Page, http: httpx.Client, worker: object, dashboard_key: str
) -> None:
    grid = {"loss.kind": ["wgan-gp", "vanilla"], "seed": [0, 1]}
    made = http.post("/api/v1/experiments", json={"name": "dash grid", "base": TOY_SPEC, "grid": grid}).json()
    sign_in(page, dashboard_key, "#/experiments")
    expect(page.get_by_role("heading", name="Experiments")).to_be_visible()
    page.get_by_role("link", name="dash grid").click()
    expect(page.get_by_role("heading", name="dash grid")).to_be_visible()

    # Kept current by the experiment's stream: the page ends with every run succeeded, without a reload.
    runs = page.locator("table.runs-table tbody tr")
    expect(runs).to_have_count(4)
    expect(page.locator("table.runs-table [data-status=succeeded]")).to_have_count(4, timeout=120_000)
    groups = page.locator("table.groups-table tbody tr")
    expect(groups).to_have_count(2)
    expect(groups.first).to_contain_text("loss.kind = wgan-gp")
    expect(groups.first.locator("[data-measure=best]")).to_contain_text("±")

    # Sorting by the best measure: ascending, then descending on a second click.
    page.get_by_role("button", name="Best").click()
    expect(page.locator("th[aria-sort=ascending]")).to_have_text("Best")
    done = http.get(f"/api/v1/experiments/{made['id']}", params={"sort": "best"}).json()
    expect(runs.first).to_have_attribute("data-job-id", done["runs"][0]["job_id"])
    page.get_by_role("button", name="Best").click()
    expect(page.locator("th[aria-sort=descending]")).to_have_text("Best")
    expect(runs.first).to_have_attribute("data-job-id", done["runs"][-1]["job_id"])

    # Every run's curves, coloured by the chosen axis: loss.kind first (two colours), or the seed.
    expect(page.get_by_label("Colour by")).to_have_value("loss.kind")
    legend = page.locator(".colour-legend li")
    expect(legend).to_have_count(2)
    expect(legend.first).to_contain_text("loss.kind = wgan-gp")
    estimate = page.locator("figure.chart", has=page.locator("figcaption", has_text="Wasserstein estimate"))
    expect(estimate).to_have_attribute("data-points", str(TOY_SPEC["steps"] // TOY_SPEC["log_every"]))
    for run in done["runs"]:
        expect(estimate).to_have_attribute("data-counts", re.compile(re.escape(f'"{run["name"]}":12')))
    measure = page.locator("figure.chart", has=page.locator("figcaption", has_text="Primary measure"))
    expect(measure).to_have_attribute("data-counts", re.compile(r'":3[,}]'))
    page.get_by_label("Colour by").select_option("seed")
    expect(legend.first).to_contain_text("seed = 0")

    # One sample image per grid point, from its best run's best checkpoint.
    images = page.locator(".experiment-sample img")
    expect(images).to_have_count(2)
    for index in range(2):
        expect(images.nth(index)).to_have_attribute("data-step", "60")
    overlay = page.get_by_role("link", name="Overlay the runs' curves").get_attribute("href") or ""
    assert set(overlay.removeprefix("#/compare?ids=").split(",")) == {run["job_id"] for run in made["runs"]}
    shoot(page, "experiment-page")
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", name="Experiments")).to_be_visible()
    assert http.get(f"/api/v1/experiments/{made['id']}").status_code == 404


def test_the_form_starts_the_papers_comparison_and_shows_errors_beside_their_fields(
    page: Page, http: httpx.Client, worker: object, dashboard_key: str
) -> None:
    sign_in(page, dashboard_key, "#/experiments/new")
    expect(page.get_by_role("heading", name="New experiment")).to_be_visible()
    expect(page.get_by_label("The WGAN paper's comparison")).to_be_checked()
    page.get_by_label("Data set").select_option("8gaussians")
    expect(page.get_by_label("Name")).to_have_value("The WGAN paper's comparison on 8gaussians")
    steps = page.get_by_label("Steps per run")
    steps.fill("0")
    page.get_by_role("button", name="Start the experiment").click()
    # The API names a run's field (["body", "runs", 0, "steps"]): it lands beside the base's Steps.
    error = page.locator(f"#{steps.get_attribute('id')}-error")
    expect(error).to_contain_text("greater than or equal to 1")
    expect(steps).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("alert").filter(has_text="The experiment was not started")).to_be_focused()
    assert http.get("/api/v1/experiments").json()["items"] == []

    steps.fill("20")
    page.get_by_role("button", name="Start the experiment").click()
    expect(page.get_by_role("heading", name="The WGAN paper's comparison on 8gaussians")).to_be_visible()
    expect(page.locator("table.runs-table tbody tr")).to_have_count(9)
    expect(page.locator("table.groups-table tbody tr")).to_have_count(3)
    (made,) = http.get("/api/v1/experiments").json()["items"]
    assert made["grid"] == {"loss.kind": ["vanilla", "wgan-clip", "wgan-gp"], "seed": [0, 1, 2]}
    shoot(page, "new-experiment")
    page.get_by_role("button", name="Cancel every run").click()

    def ended() -> bool:
        return bool(http.get(f"/api/v1/experiments/{made['id']}").json()["finished"])

    wait_for(ended, 120, "every run to end")
