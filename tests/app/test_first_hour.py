"""What a new user meets first: defaults that suit the data, strict types, one title per status,
upload names and image fitting stated in the job, and a preview with the training time."""

from __future__ import annotations

import httpx
import pytest

from tests.app.test_datasets import png_bytes, zip_bytes
from tests.app.test_validation import assert_problem, locs
from tests.conftest import TOY_SPEC, wait_for_status


def test_a_toy_job_gets_the_toy_defaults_and_an_image_job_the_papers(client: httpx.Client) -> None:
    parked = {"device": "cuda"}  # queued on the GPU queue, which no test worker serves: nothing trains
    toy = client.post("/api/v1/jobs", json={"dataset": {"name": "8gaussians"}, **parked}).json()["spec"]
    assert (toy["loss"]["gp_weight"], toy["optimizer"]["betas"], toy["model"]["hidden_dim"]) == (0.1, [0.5, 0.9], 128)
    assert toy["optimizer"]["kind"] == "adam" and toy["n_critic"] == 5
    image = client.post("/api/v1/jobs", json={"dataset": {"name": "digits"}, **parked}).json()["spec"]
    assert (image["loss"]["gp_weight"], image["optimizer"]["betas"]) == (10.0, [0.0, 0.9])
    assert image["optimizer"]["lr"] == 1e-4
    clip = client.post(
        "/api/v1/jobs", json={"dataset": {"name": "8gaussians"}, "loss": {"kind": "wgan-clip"}, **parked}
    )
    assert clip.json()["spec"]["optimizer"] == {"kind": "rmsprop", "lr": 5e-5, "betas": None}


@pytest.mark.parametrize(
    ("field", "value"),
    [("steps", "100"), ("batch_size", 32.0), ("seed", True), ("evaluate", "yes"), ("compile", 1)],
)
def test_a_value_of_the_wrong_json_type_is_refused_not_coerced(client: httpx.Client, field: str, value: object) -> None:
    body = assert_problem(client.post("/api/v1/jobs", json={**TOY_SPEC, field: value}), 422)
    assert ["body", field] in locs(body)


def test_nested_numbers_are_strict_too_and_the_betas_pair_still_takes_a_json_array(client: httpx.Client) -> None:
    bad = client.post("/api/v1/jobs", json={**TOY_SPEC, "optimizer": {"lr": "1e-4"}})
    assert ["body", "optimizer", "lr"] in locs(assert_problem(bad, 422))
    bad_beta = client.post("/api/v1/jobs", json={**TOY_SPEC, "optimizer": {"betas": ["0.5", 0.9]}})
    assert any(loc[:3] == ["body", "optimizer", "betas"] for loc in locs(assert_problem(bad_beta, 422)))
    good = client.post("/api/v1/jobs", json={**TOY_SPEC, "device": "cuda", "optimizer": {"betas": [0.5, 0.99]}})
    assert good.status_code == 202, good.text
    assert good.json()["spec"]["optimizer"]["betas"] == [0.5, 0.99]


def test_every_problem_of_a_status_has_the_same_title_and_type(client: httpx.Client) -> None:
    # A 422 from the schema (pydantic) and one from the service's own checks.
    from_schema = assert_problem(client.post("/api/v1/jobs", json={**TOY_SPEC, "steps": 0}), 422)
    from_service = assert_problem(client.post("/api/v1/jobs", json={"dataset": {"name": "imagenet"}}), 422)
    assert from_schema["title"] == from_service["title"] == "Unprocessable Content"
    assert from_schema["type"] == from_service["type"]
    too_large = assert_problem(client.post("/api/v1/jobs", json={**TOY_SPEC, "padding": "y" * 200_000}), 413)
    assert too_large["title"] == "Content Too Large"
    assert too_large["type"].endswith("/content-too-large")


def _upload(client: httpx.Client, side: int, filename: str = "my digits.zip") -> dict:
    members = {f"{i}.png": png_bytes((side, side), value=40 * i) for i in range(6)}
    response = client.post("/api/v1/datasets", files={"file": (filename, zip_bytes(members))})
    assert response.status_code == 201, response.text
    return response.json()


def test_a_job_on_an_upload_is_named_after_it_and_says_how_its_images_are_fitted(
    client: httpx.Client, worker: object
) -> None:
    uploaded = _upload(client, 24)
    page = client.get(f"/api/v1/datasets/{uploaded['id']}").json()
    assert "24×24" in page["description"] and "resized to 28×28" in page["description"]
    assert uploaded["name"] == "my digits"
    tiny = {"steps": 4, "batch_size": 4, "checkpoint_every": 4, "log_every": 2, "evaluate": False}
    dcgan = {"arch": "dcgan", "hidden_dim": 4}
    resized = client.post("/api/v1/jobs", json={"dataset": {"id": uploaded["id"]}, "model": dcgan, **tiny}).json()
    assert resized["name"] == "my digits-wgan-gp"
    assert (resized["spec"]["dataset"]["fit"], resized["spec"]["model"]["image_size"]) == ("resize", 28)
    padded = client.post(
        "/api/v1/jobs", json={"dataset": {"id": uploaded["id"], "fit": "pad"}, "model": dcgan, **tiny}
    ).json()
    assert padded["spec"]["dataset"]["fit"] == "pad"
    mlp = client.post(
        "/api/v1/jobs", json={"dataset": {"id": uploaded["id"]}, "model": {"arch": "mlp", "hidden_dim": 4}, **tiny}
    )
    assert mlp.json()["spec"]["dataset"]["fit"] is None  # an MLP trains the images at their own 24×24
    for job in (resized, padded, mlp.json()):
        done = wait_for_status(client, job["id"], {"succeeded", "failed"})
        assert done["status"] == "succeeded", done["error"]
    shrink = client.post(
        "/api/v1/jobs",
        json={"dataset": {"id": uploaded["id"], "fit": "pad"}, "model": {**dcgan, "image_size": 16}, **tiny},
    )
    body = assert_problem(shrink, 422)
    assert ["body", "dataset", "fit"] in locs(body)
    assert "28 or 32 or 64" in body["errors"][0]["msg"]


def test_a_file_name_with_control_characters_becomes_a_clean_name(client: httpx.Client) -> None:
    # Built by hand: httpx would percent-encode the NUL, and a hostile client does not.
    archive = zip_bytes({f"{i}.png": png_bytes((8, 8)) for i in range(2)})
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="ca\x00ts\x1b.zip"\r\n'
        b"Content-Type: application/zip\r\n\r\n" + archive + b"\r\n--b--\r\n"
    )
    response = client.post(
        "/api/v1/datasets", content=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "cats"


def test_the_preview_resolves_costs_and_estimates_without_creating_a_job(client: httpx.Client, worker: object) -> None:
    # A width no other test uses, so the only job of this cost is the one trained here.
    spec = {**TOY_SPEC, "model": {"hidden_dim": 23, "depth": 2}, "steps": 40}
    first = client.post("/api/v1/jobs/preview", json=spec)
    assert first.status_code == 200, first.text
    preview = first.json()
    assert preview["spec"]["model"]["hidden_dim"] == 23 and preview["spec"]["loss"]["gp_weight"] == 0.1
    assert preview["queue"] == "cpu"
    cost = preview["cost"]
    assert cost["generator_params"] == 2 * 23 + 23 + 23 * 23 + 23 + 23 * 2 + 2
    assert cost["flops_per_step"] > 0
    assert preview["estimate"]["basis"] != "measured"
    assert preview["estimate"]["seconds"] == pytest.approx(40 * preview["estimate"]["seconds_per_step"])
    assert client.get("/api/v1/jobs").json()["items"] == []

    job = client.post("/api/v1/jobs", json=spec).json()
    done = wait_for_status(client, job["id"], {"succeeded"})
    measured = client.post("/api/v1/jobs/preview", json={**spec, "steps": 1000}).json()["estimate"]
    assert (measured["basis"], measured["jobs"]) == ("measured", 1)
    assert measured["seconds_per_step"] == pytest.approx(done["latest_metrics"]["seconds_per_step"])
    assert measured["seconds"] == pytest.approx(1000 * measured["seconds_per_step"])


def test_the_preview_refuses_what_submission_refuses(client: httpx.Client) -> None:
    body = assert_problem(client.post("/api/v1/jobs/preview", json={**TOY_SPEC, "steps": "9"}), 422)
    assert ["body", "steps"] in locs(body)
    unknown = assert_problem(client.post("/api/v1/jobs/preview", json={"dataset": {"name": "imagenet"}}), 422)
    assert ["body", "dataset", "name"] in locs(unknown)
