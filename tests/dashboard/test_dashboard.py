"""The dashboard in a real Chromium against the real API and worker: sign in, create, watch, cancel, compare."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import FilePayload, Locator, Page, expect

from app.security_headers import HEADERS
from tests.conftest import TOY_SPEC, wait_for_status
from tests.dashboard.conftest import PHONE, shoot, sign_in
from tests.support import million
from tests.support.service import settings
from wgan.config import TrainSpec, resolve

STATIC = Path(__file__).resolve().parents[2] / "app" / "static"
# Long enough to be seen running for several seconds, short enough for a test.
WATCHED_STEPS = 300
# A toy job with one checkpoint (and so one exact-W1 evaluation, the slow part of a toy job).
QUICK = {"steps": 60, "checkpoint_every": 60}


@pytest.fixture
def http(api: str, dashboard_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {dashboard_key}"}, timeout=30) as client:
        yield client


def submit(http: httpx.Client, **spec: Any) -> dict[str, Any]:
    response = http.post("/api/v1/jobs", json={**TOY_SPEC, **spec})
    assert response.status_code == 202, response.text
    return response.json()


def long_job(http: httpx.Client, name: str) -> dict[str, Any]:
    """A job that would train for minutes: the test cancels it."""
    return submit(http, name=name, steps=200_000, log_every=20, checkpoint_every=1000)


def chart(page: Page, title: str) -> Locator:
    return page.locator("figure.chart", has=page.locator("figcaption", has_text=title))


def points(locator: Locator) -> int:
    return int(locator.get_attribute("data-points") or 0)


def counts(locator: Locator) -> dict[str, int]:
    return json.loads(locator.get_attribute("data-counts") or "{}")


def natural_width(image: Locator) -> int:
    return int(image.evaluate("img => img.complete ? img.naturalWidth : 0"))


def no_horizontal_overflow(page: Page) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths[0]} px of content in {widths[1]} px"


# --- Served by the app, offline, under the CSP ---------------------------------------------------------------


def test_page_and_assets_are_served_by_the_app_with_security_headers(api: str) -> None:
    index = httpx.get(f"{api}/")
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert index.headers["content-security-policy"] == HEADERS["Content-Security-Policy"]
    assert index.headers["cache-control"] == "no-cache"
    html = index.text
    # Nothing from the internet, no inline script or style for the CSP to refuse.
    assert "http://" not in html
    assert "https://" not in html
    assert "style=" not in html
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None

    assets = re.findall(r'(?:src|href)="(static/[^"]+)"', html)
    modules = sorted(path.relative_to(STATIC).as_posix() for path in (STATIC / "js").glob("*.js"))
    assert "static/vendor/uplot/uPlot.iife.min.js" in assets
    assert "static/js/main.js" in assets
    for asset in [*assets, *(f"static/{module}" for module in modules)]:
        response = httpx.get(f"{api}/{asset}")
        assert response.status_code == 200, asset
        for name, value in HEADERS.items():
            assert response.headers[name] == value, (asset, name)
        # Revalidated on each load, so an upgrade never leaves a page running old and new modules together.
        assert response.headers["cache-control"] == "no-cache", asset
        assert httpx.get(f"{api}/{asset}", headers={"If-None-Match": response.headers["etag"]}).status_code == 304
        if asset.endswith(".js"):
            assert response.headers["content-type"].split(";")[0] in {"text/javascript", "application/javascript"}
    for module in modules:
        source = (STATIC / module).read_text()
        assert "http://" not in source and "https://" not in source, module
        assert "localStorage" not in source and "document.cookie" not in source, module

    version = (STATIC / "vendor" / "uplot" / "VERSION").read_text().strip()
    assert f"(v{version})" in (STATIC / "vendor" / "uplot" / "uPlot.iife.min.js").read_text()[:200]
    assert httpx.get(f"{api}/static/nope.js").status_code == 404


@pytest.mark.browser
def test_the_api_docs_are_linked_from_the_dashboard_and_run_offline_under_the_csp(page: Page, api: str) -> None:
    response = httpx.get(f"{api}/docs")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == HEADERS["Content-Security-Policy"]
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", response.text) is None  # no inline script
    assert "https://" not in response.text
    page.goto("/")
    page.get_by_role("link", name="API docs").click()
    expect(page).to_have_url(re.compile(r"/docs$"))
    # Swagger UI, from the vendored bundle, renders this service's own document (the page fixture fails
    # the test on any CSP refusal).
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/jobs/preview")).to_be_visible()
    expect(page.get_by_role("button", name="Authorize")).to_be_visible()
    version = (STATIC / "vendor" / "swagger-ui" / "VERSION").read_text().strip()
    assert httpx.get(f"{api}/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200
    assert version.count(".") == 2


# --- The key ----------------------------------------------------------------------------------------------------


@pytest.mark.browser
def test_key_prompt_keeps_the_key_in_session_storage_only(page: Page, dashboard_key: str) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    key_box = page.get_by_label("API key")
    expect(key_box).to_be_focused()
    key_box.fill("wgan_not-a-real-key")
    key_box.press("Enter")
    expect(page.get_by_text("That key is not valid or has been revoked.")).to_be_visible()
    expect(key_box).to_have_attribute("aria-invalid", "true")
    shoot(page, "sign-in")

    key_box.fill(dashboard_key)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    expect(page.get_by_text("No jobs yet.")).to_be_visible()
    stored = page.evaluate(
        "() => ({session: Object.values(sessionStorage), local: localStorage.length, cookies: document.cookie})"
    )
    assert stored == {"session": [dashboard_key], "local": 0, "cookies": ""}
    assert page.context.cookies() == []

    # Kept across a reload of the tab, but not shared with another tab.
    page.reload()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    other = page.context.new_page()
    other.goto("/")
    expect(other.get_by_role("heading", name="Sign in")).to_be_visible()
    other.close()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0


# --- New job form, live curves, samples ---------------------------------------------------------------------------


@pytest.mark.browser
def test_create_a_job_from_the_form_and_watch_it_train(
    page: Page, http: httpx.Client, worker: object, dashboard_key: str
) -> None:
    sign_in(page, dashboard_key, "#/new")
    expect(page.get_by_role("heading", name="New job")).to_be_visible()
    page.get_by_label("WGAN-GP (Gulrajani et al. 2017)").check()
    expect(page.get_by_label("Data set", exact=True)).to_contain_text("25gaussians")
    page.get_by_label("Data set", exact=True).select_option("name:8gaussians")
    page.get_by_label("Name", exact=True).fill("form-8gaussians-gp")
    page.get_by_label("Steps", exact=True).fill(str(WATCHED_STEPS))
    page.get_by_label("Batch size").fill("32")
    page.get_by_label("Critic steps per generator step").fill("2")
    page.get_by_label("Checkpoint every").fill("100")
    page.get_by_label("Log every").fill("5")
    page.get_by_text("Advanced: model, optimiser, device").click()
    page.get_by_label("Width").fill("16")
    page.get_by_label("Depth").fill("2")
    # Before submitting: the API's preview fills the placeholders with what it will use, and the step
    # field says how long that many steps will train.
    toy = resolve(TrainSpec.model_validate({"dataset": {"name": "8gaussians"}}), "points", (2,))
    expect(page.get_by_label("Gradient penalty weight")).to_have_attribute("placeholder", "0.1")
    assert toy.optimizer.lr is not None
    learning_rate = page.get_by_label("Learning rate")
    page.wait_for_function(
        "(lr) => Number(document.querySelector('[name=lr]').placeholder) === lr", arg=toy.optimizer.lr
    )
    assert float(learning_rate.get_attribute("placeholder") or "nan") == toy.optimizer.lr
    steps_hint = page.locator("#" + (page.get_by_label("Steps", exact=True).get_attribute("id") or "") + "-hint")
    expect(steps_hint).to_have_text(re.compile(r"^Generator updates: about \d+ (s|min \d+ s) of training \(.+\)\.$"))
    page.get_by_label("Steps", exact=True).fill(str(100 * WATCHED_STEPS))
    expect(steps_hint).to_have_text(re.compile(r"about \d+ (min \d+ s|h \d+ min) of training"))
    page.get_by_label("Steps", exact=True).fill(str(WATCHED_STEPS))
    shoot(page, "new-job")
    page.get_by_role("button", name="Start training").click()

    expect(page).to_have_url(re.compile(r"#/jobs/[^/]+$"))
    expect(page.get_by_role("heading", name="form-8gaussians-gp")).to_be_visible()
    job_id = page.url.rsplit("/", 1)[1]
    spec = http.get(f"/api/v1/jobs/{job_id}").json()["spec"]
    assert (spec["loss"]["kind"], spec["dataset"], spec["steps"], spec["n_critic"]) == (
        "wgan-gp",
        {"name": "8gaussians", "id": None, "fit": None},
        WATCHED_STEPS,
        2,
    )
    assert (spec["model"]["hidden_dim"], spec["model"]["depth"], spec["optimizer"]["lr"]) == (16, 2, toy.optimizer.lr)

    # Watch it train: the curves gain points from the stream, the samples follow the checkpoints.
    losses = chart(page, "Critic and generator loss")
    badge = page.locator(".status-line .badge")
    image = page.locator(".samples-image")
    seen: list[tuple[int, str | None, str | None]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen.append((points(losses), badge.get_attribute("data-status"), image.get_attribute("data-step")))
        if seen[-1][1] == "succeeded":
            break
        page.wait_for_timeout(100)
    while_running = {n for n, status, _ in seen if status == "running" and n > 0}
    assert len(while_running) >= 2, f"the curve did not grow while the job ran: {seen}"
    sample_steps = {int(step) for _, _, step in seen if step is not None}
    assert len(sample_steps) >= 2, f"the samples did not follow the checkpoints: {sample_steps}"

    # Everything recorded is plotted, once: the same points as the metrics endpoint.
    recorded = http.get(f"/api/v1/jobs/{job_id}/metrics").json()["items"]
    expect(losses).to_have_attribute("data-points", str(len(recorded)))
    assert len(recorded) == WATCHED_STEPS // 5
    wasserstein = chart(page, "Wasserstein distance")
    exact = sum(point["exact_w1"] is not None for point in recorded)
    assert exact >= 1
    expect(wasserstein).to_have_attribute("data-counts", re.compile(rf'"exact W1":{exact}\b'))
    assert counts(wasserstein)["W estimate"] == len(recorded)
    assert counts(chart(page, "Gradient penalty"))["gradient penalty"] == len(recorded)
    expect(page.locator("progress").first).to_have_attribute("value", str(WATCHED_STEPS))

    # The newest checkpoint's samples, through a blob: URL fetched with the key.
    expect(image).to_have_attribute("data-step", str(WATCHED_STEPS))
    assert natural_width(image) > 0
    assert (image.get_attribute("src") or "").startswith("blob:")

    # Another seed, then the first checkpoint, chosen with the keyboard.
    first_src = image.get_attribute("src")
    seed = page.get_by_label("Seed")
    seed.fill("7")
    seed.press("Enter")
    expect(image).to_have_attribute("data-seed", "7")
    assert image.get_attribute("src") != first_src
    slider = page.get_by_label("Checkpoint")
    slider.focus()
    slider.press("Home")
    expect(page.locator(".slider-output")).to_have_text(re.compile(r"^step 100 \(1 of \d+\)$"))
    expect(image).to_have_attribute("data-step", "100")
    expect(image).to_have_attribute("data-seed", "7")
    assert natural_width(image) > 0
    slider.press("End")
    expect(image).to_have_attribute("data-step", str(WATCHED_STEPS))

    # Its quality: the best checkpoint by exact W1 and how the critic tracked it, and a way to its samples.
    summary = http.get(f"/api/v1/jobs/{job_id}").json()["summary"]
    quality = page.locator(".quality-summary dl")
    expect(quality).to_have_attribute("data-best-step", str(summary["best"]["step"]))
    expect(quality).to_contain_text(f"at step {summary['best']['step']}")
    expect(quality).to_contain_text("Spearman")
    page.get_by_role("button", name="Best checkpoint").click()
    expect(page.locator(".slider-output")).to_contain_text(f"step {summary['best']['step']} (")
    expect(page.locator(".slider-output")).to_contain_text("the best")
    expect(image).to_have_attribute("data-step", str(summary["best"]["step"]))
    # A latent walk from this seed to the next, drawn over the 2-D data; pressed again, the samples are back.
    walk = page.get_by_role("button", name="Latent walk")
    walk.click()
    expect(walk).to_have_attribute("aria-pressed", "true")
    expect(image).to_have_attribute("data-walk", "7,8")
    expect(page.locator(".samples-note")).to_contain_text("a walk from seed 7 to 8")
    assert natural_width(image) > 0
    walk.click()
    expect(image).to_have_attribute("data-walk", "")
    exact_points = counts(chart(page, "Wasserstein distance"))["exact W1"]
    expect(chart(page, "Modes covered")).to_have_attribute("data-counts", re.compile(rf'"covered":{exact_points}\b'))

    page.get_by_text("Spec (every default filled in)").click()
    expect(page.locator(".spec pre")).to_contain_text('"kind": "wgan-gp"')
    shoot(page, "job-page")


@pytest.mark.browser
def test_validation_errors_are_shown_next_to_their_fields(
    page: Page, http: httpx.Client, worker: object, dashboard_key: str
) -> None:
    sign_in(page, dashboard_key, "#/new")
    steps = page.get_by_label("Steps", exact=True)
    steps.fill("0")
    page.get_by_text("Advanced: model, optimiser, device").click()
    page.get_by_label("Learning rate").fill("5")
    page.get_by_role("button", name="Start training").click()

    # The API's 422 (errors[].loc ["body", "steps"] and ["body", "optimizer", "lr"]) lands beside each field.
    steps_error = page.locator(f"#{steps.get_attribute('id')}-error")
    expect(steps_error).to_be_visible()
    expect(steps_error).to_contain_text("greater than or equal to 1")
    expect(steps).to_have_attribute("aria-invalid", "true")
    expect(steps).to_have_attribute("aria-describedby", re.compile(rf"\b{steps_error.get_attribute('id')}\b"))
    lr = page.get_by_label("Learning rate")
    expect(page.locator(f"#{lr.get_attribute('id')}-error")).to_contain_text("less than or equal to 1")
    summary = page.get_by_role("alert").filter(has_text="The job was not created")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link")).to_have_count(2)
    shoot(page, "new-job-errors")
    assert http.get("/api/v1/jobs").json()["items"] == []

    # An upload's errors land beside its file box too; a good upload joins the data sets, chosen.
    page.get_by_text("Upload a data set").click()
    file_box = page.get_by_label("File", exact=True)
    broken: FilePayload = {"name": "broken.npz", "mimeType": "application/zip", "buffer": b"not a zip"}
    file_box.set_input_files(files=[broken])
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(f"#{file_box.get_attribute('id')}-error")).to_be_visible()
    expect(file_box).to_have_attribute("aria-invalid", "true")
    buffer = io.BytesIO()
    np.savez(buffer, x=np.random.default_rng(0).normal(size=(256, 2)).astype(np.float32))
    points_file: FilePayload = {"name": "points.npz", "mimeType": "application/zip", "buffer": buffer.getvalue()}
    file_box.set_input_files(files=[points_file])
    page.get_by_label("Data set name").fill("my-points")
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("Uploaded my-points: 256 examples.")).to_be_visible()
    expect(file_box).not_to_have_attribute("aria-invalid", "true")
    upload = next(d for d in http.get("/api/v1/datasets").json()["items"] if d["name"] == "my-points")
    expect(page.get_by_label("Data set", exact=True)).to_have_value(f"id:{upload['id']}")
    page.get_by_label("Data set", exact=True).select_option("name:8gaussians")

    # Fixed, the errors go and the job is made.
    steps.fill("20")
    lr.fill("")
    page.get_by_label("Batch size").fill("32")
    page.get_by_label("Width").fill("16")
    page.get_by_role("button", name="Start training").click()
    expect(page).to_have_url(re.compile(r"#/jobs/[^/]+$"))
    job_id = page.url.rsplit("/", 1)[1]
    wait_for_status(http, job_id, {"succeeded"})


# --- Cancel and delete ---------------------------------------------------------------------------------------------


@pytest.mark.browser
def test_cancel_a_running_job_then_delete_it(
    page: Page, http: httpx.Client, worker: object, dashboard_key: str
) -> None:
    job = long_job(http, "long-run")
    try:
        wait_for_status(http, job["id"], {"running"})
        sign_in(page, dashboard_key, f"#/jobs/{job['id']}")
        badge = page.locator(".status-line .badge")
        expect(badge).to_have_text("running")
        losses = chart(page, "Critic and generator loss")
        expect(losses).not_to_have_attribute("data-points", "0")
        delete = page.get_by_role("button", name="Delete job")
        expect(delete).to_be_disabled()

        page.get_by_role("button", name="Cancel job").click()
        expect(badge).to_have_text("cancelled")
        expect(page.get_by_role("button", name="Cancel job")).to_be_hidden()
        assert http.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "cancelled"
        expect(page.locator(".samples-image")).to_have_attribute("data-step", re.compile(r"^\d+$"))
        shoot(page, "job-cancelled")

        expect(delete).to_be_enabled()
        delete.click()
        keep = page.get_by_role("button", name="Keep it")
        expect(keep).to_be_focused()
        page.get_by_role("button", name="Yes, delete").click()
        expect(page).to_have_url(re.compile(r"#/jobs$"))
        expect(page.get_by_text("No jobs yet.")).to_be_visible()
        assert http.get(f"/api/v1/jobs/{job['id']}").status_code == 404
    finally:
        http.post(f"/api/v1/jobs/{job['id']}/cancel")


@pytest.mark.browser
def test_a_failed_job_shows_its_error(page: Page, dashboard_key: str) -> None:
    # No real job fails on demand, so the API's answers for one are played back to the page.
    spec = resolve(TrainSpec.model_validate(TOY_SPEC), "points", (2,)).model_dump(mode="json")
    job = {
        "id": "failed-job",
        "name": "diverged-run",
        "status": "failed",
        "spec": spec,
        "progress": {"step": 40, "total_steps": 60},
        "latest_metrics": {"step": 40, "critic_loss": 1.0, "generator_loss": 0.5, "wasserstein_estimate": 0.2},
        "error": {"type": "diverged", "message": "training diverged: critic_loss became nan between steps 41 and 45"},
        "created_at": "2026-01-01T00:00:00Z",
        "started_at": "2026-01-01T00:00:01Z",
        "finished_at": "2026-01-01T00:00:09Z",
        "cancel_requested": False,
        "attempts": 1,
        "links": {},
    }
    steps = list(range(5, 45, 5))
    values = {"critic_loss": 1.0, "generator_loss": 0.5, "wasserstein_estimate": 0.2, "gradient_penalty": 0.1}
    values["seconds_per_step"] = 0.01
    # Its history as GET …/metrics/history gives it: one bucket per point, for so short a job.
    history = {
        "points": len(steps),
        "bucket_steps": 1,
        "last_event_id": 3,
        "first_step": steps,
        "last_step": steps,
        "count": [1] * len(steps),
        "series": {name: {kind: [v] * len(steps) for kind in ("min", "max", "last")} for name, v in values.items()},
        "measured": {"step": [], "measures": []},
    }
    page.route("**/api/v1/jobs/failed-job", lambda route: route.fulfill(json=job))
    page.route("**/api/v1/jobs/failed-job/metrics/history*", lambda route: route.fulfill(json=history))
    page.route("**/api/v1/jobs/failed-job/checkpoints", lambda route: route.fulfill(json={"items": []}))

    sign_in(page, dashboard_key, "#/jobs/failed-job")
    alert = page.get_by_role("alert").filter(has_text="The job failed: diverged")
    expect(alert).to_contain_text("critic_loss became nan between steps 41 and 45")
    expect(page.locator(".status-line .badge")).to_have_text("failed")
    expect(page.get_by_role("button", name="Cancel job")).to_be_hidden()
    expect(page.get_by_role("button", name="Delete job")).to_be_enabled()
    expect(chart(page, "Critic and generator loss")).to_have_attribute("data-points", "8")
    expect(page.get_by_text("No checkpoint yet; samples appear after the first one.")).to_be_visible()
    shoot(page, "job-failed")


@pytest.mark.browser
def test_a_million_point_job_draws_its_whole_history_and_its_final_values(
    page: Page, http: httpx.Client, dashboard_key: str
) -> None:
    # A million points written straight into Postgres (training them would take hours), then read back by
    # the real API: the page draws the downsampled history, never the points one by one.
    job = submit(http, name="million", device="cuda", steps=1_000_000, log_every=1)
    url = settings().database_url
    million.fill(url, job["id"], 1_000_000)
    final = million.newest(url, 1_000_000)

    sign_in(page, dashboard_key, f"#/jobs/{job['id']}")
    losses = chart(page, "Critic and generator loss")
    described = losses.locator("p.visually-hidden")
    expect(described).to_contain_text("up to step 1000000;")
    # The chart's line ends on the job's newest point, with the values the dashboard's number() shows.
    latest = page.evaluate(
        "([c, g]) => [Number(c.toPrecision(4)).toString(), Number(g.toPrecision(4)).toString()]",
        [final["critic_loss"], final["generator_loss"]],
    )
    expect(described).to_contain_text(f"latest critic loss {latest[0]}, generator loss {latest[1]}.")
    # A few thousand points drawn, each bucket's min, max and last, and the dozen spikes among them.
    assert 1000 < points(losses) <= 3 * 2000 + 1000
    expect(page.locator(".status-line .badge")).to_have_text("succeeded")
    assert page.evaluate("() => performance.getEntriesByType('resource').every((r) => !r.name.includes('/metrics?'))")


# --- Compare --------------------------------------------------------------------------------------------------------


@pytest.mark.browser
def test_compare_two_jobs_from_the_list(page: Page, http: httpx.Client, worker: object, dashboard_key: str) -> None:
    common = {"dataset": {"name": "25gaussians"}, "steps": 200, "checkpoint_every": 100}  # 40 metric points each
    vanilla = submit(http, name="vanilla-25g", loss={"kind": "vanilla"}, **common)
    gp = submit(http, name="wgan-gp-25g", loss={"kind": "wgan-gp"}, **common)
    sign_in(page, dashboard_key)
    for job in (vanilla, gp):
        wait_for_status(http, job["id"], {"succeeded"})

    compare = page.get_by_role("button", name="Compare selected")
    expect(compare).to_be_disabled()
    page.get_by_label("Select vanilla-25g for comparison").check()
    page.get_by_label("Select wgan-gp-25g for comparison").check()
    expect(compare).to_be_enabled()
    compare.click()
    expect(page).to_have_url(re.compile(r"#/compare\?ids=[^,]+,[^,]+$"))
    assert set(page.url.split("ids=")[1].split(",")) == {vanilla["id"], gp["id"]}
    expect(page.get_by_role("heading", name="Compare jobs")).to_be_visible()

    # One series per job on each chart, each with every recorded point.
    estimate = chart(page, "Wasserstein estimate")
    expect(estimate).to_have_attribute("data-counts", re.compile(r'"vanilla-25g":40\b'))
    assert counts(estimate) == {"vanilla-25g": 40, "wgan-gp-25g": 40}
    exact = chart(page, "Exact W1")
    expect(exact).to_be_visible()
    assert set(counts(exact)) == {"vanilla-25g", "wgan-gp-25g"}
    assert min(counts(exact).values()) >= 1
    assert counts(chart(page, "Critic loss")) == {"vanilla-25g": 40, "wgan-gp-25g": 40}

    # Final and best measures side by side, as each job's summary has them.
    for job in (vanilla, gp):
        summary = http.get(f"/api/v1/jobs/{job['id']}").json()["summary"]
        row = page.locator(f".quality-table tr[data-job-id='{job['id']}']")
        expect(row).to_contain_text(f"(step {summary['best']['step']})")
        expect(row.locator("td").nth(1)).to_have_text("exact_w1")

    # Their sample grids side by side.
    cards = page.locator(".sample-card")
    expect(cards).to_have_count(2)
    for name in ("vanilla-25g", "wgan-gp-25g"):
        card = page.locator(".sample-card", has_text=name)
        image = card.locator("img")
        expect(image).to_have_attribute("data-step", "200")
        assert natural_width(image) > 0
    boxes = [cards.nth(i).bounding_box() for i in range(2)]
    assert boxes[0] and boxes[1] and abs(boxes[0]["y"] - boxes[1]["y"]) < 1, "the grids sit side by side"
    shoot(page, "compare")


# --- The list -------------------------------------------------------------------------------------------------------


@pytest.mark.browser
def test_list_filters_by_status_and_updates_live(
    page: Page, http: httpx.Client, worker: object, dashboard_key: str
) -> None:
    finished = submit(http, name="finished-toy", **QUICK)
    wait_for_status(http, finished["id"], {"succeeded"})
    running = long_job(http, "still-running")
    try:
        wait_for_status(http, running["id"], {"running"})
        sign_in(page, dashboard_key)
        page.evaluate("() => { window.notReloaded = true; }")
        rows = page.locator(".jobs-table tbody tr")
        expect(rows).to_have_count(2)
        row = rows.filter(has_text="still-running")
        expect(row.locator(".badge")).to_have_text("running")
        expect(row.locator(".eta")).to_contain_text("left")

        status = page.get_by_label("Status")
        status.select_option("running")
        expect(page).to_have_url(re.compile(r"#/jobs\?status=running$"))
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("still-running")
        # The progress bar moves on by itself.
        before = int(row.locator("progress").get_attribute("value") or 0)
        page.wait_for_function(
            "before => Number(document.querySelector('.jobs-table progress').value) > before", arg=before
        )
        shoot(page, "jobs-running")

        status.select_option("succeeded")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("finished-toy")
        expect(rows.first.locator(".badge")).to_have_text("succeeded")

        status.select_option("")
        expect(rows).to_have_count(2)
        http.post(f"/api/v1/jobs/{running['id']}/cancel")
        expect(row.locator(".badge")).to_have_text("cancelled")
        status.select_option("running")
        expect(page.get_by_text("No running jobs.")).to_be_visible()
        status.select_option("cancelled")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("still-running")
        assert page.evaluate("() => window.notReloaded") is True
        status.select_option("")
        expect(rows).to_have_count(2)
        shoot(page, "jobs")
    finally:
        http.post(f"/api/v1/jobs/{running['id']}/cancel")


# --- Narrow screens ---------------------------------------------------------------------------------------------------


@pytest.mark.browser
def test_every_page_fits_a_390_pixel_screen(page: Page, http: httpx.Client, worker: object, dashboard_key: str) -> None:
    first = submit(http, name="a-rather-long-job-name-that-has-to-wrap-somewhere-on-a-phone", **QUICK)
    second = submit(http, name="second", loss={"kind": "vanilla"}, **QUICK)
    page.set_viewport_size(PHONE)
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    no_horizontal_overflow(page)
    shoot(page, "phone-sign-in")
    sign_in(page, dashboard_key)
    for job in (first, second):
        wait_for_status(http, job["id"], {"succeeded"})

    expect(page.locator(".jobs-table tbody tr")).to_have_count(2)
    expect(page.locator(".jobs-table .badge").first).to_have_text("succeeded")
    no_horizontal_overflow(page)
    shoot(page, "phone-jobs")

    page.goto(f"/#/jobs/{first['id']}")
    expect(page.locator(".samples-image")).to_have_attribute("data-step", "60")
    expect(chart(page, "Critic and generator loss")).to_have_attribute("data-points", "12")
    no_horizontal_overflow(page)
    shoot(page, "phone-job")

    page.goto("/#/new")
    page.get_by_text("Advanced: model, optimiser, device").click()
    expect(page.get_by_label("Learning rate")).to_be_visible()
    no_horizontal_overflow(page)
    shoot(page, "phone-new-job")

    page.goto(f"/#/compare?ids={first['id']},{second['id']}")
    expect(page.locator(".sample-card img[data-step='60']")).to_have_count(2)
    no_horizontal_overflow(page)
    shoot(page, "phone-compare")
