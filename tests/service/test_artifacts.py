"""The artifact stores keep one contract, locally and on a real S3-compatible server (SeaweedFS)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from service.artifacts import ArtifactStore, LocalStore, S3Store, open_store
from tests.conftest import TOY_SPEC
from tests.support.seaweed import CREDENTIALS, SeaweedFS

BUCKET = "wgan-test"


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    server = SeaweedFS(tmp_path_factory.mktemp("seaweed"))
    server.start(BUCKET)
    yield server
    server.stop()


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    server: SeaweedFS = request.getfixturevalue("seaweed")
    return S3Store(BUCKET, f"run-{tmp_path.name}", tmp_path / "cache", server.client())


def test_put_fetch_exists_delete(store: ArtifactStore) -> None:
    store.put_bytes("datasets/a.npz", b"data")
    assert store.exists("datasets/a.npz")
    assert store.fetch("datasets/a.npz").read_bytes() == b"data"
    store.delete_prefix("datasets/a.npz")
    assert not store.exists("datasets/a.npz")
    with pytest.raises(FileNotFoundError):
        store.fetch("datasets/missing.npz")


def test_published_checkpoint_files_can_be_fetched_as_a_pair(store: ArtifactStore, tmp_path: Path) -> None:
    import torch

    from wgan.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
    from wgan.config import TrainSpec, resolve

    spec = resolve(TrainSpec.model_validate({"dataset": {"name": "8gaussians"}}), "points", (2,))
    prefix = "jobs/j1/checkpoints/attempt-1"
    manifest = save_checkpoint(store.local_dir(prefix), Checkpoint(7, spec, {"generator.w": torch.ones(3)}))
    store.publish(prefix, [f"step-{7:08d}.safetensors", manifest.name])
    if isinstance(store, S3Store):
        # A second host: an empty cache, everything comes from the bucket.
        store = S3Store(store.bucket, store.prefix, tmp_path / "other-host", store.client)
    loaded = load_checkpoint(store.fetch_checkpoint(f"{prefix}/{manifest.name}"))
    assert loaded.step == 7
    assert torch.equal(loaded.tensors["generator.w"], torch.ones(3))
    store.delete_prefix("jobs/j1")
    assert not store.exists(f"{prefix}/{manifest.name}")


@pytest.mark.parametrize("key", ["../escape", "/abs", "a/../../b", "", "a//b"])
def test_keys_cannot_leave_the_store(store: ArtifactStore, key: str) -> None:
    with pytest.raises(ValueError, match="artifact key"):
        store.put_bytes(key, b"x")


def test_prepare_creates_the_bucket(seaweed: SeaweedFS, tmp_path: Path) -> None:
    store = S3Store("fresh-bucket", "x", tmp_path, seaweed.client())
    assert not _bucket_exists(seaweed, "fresh-bucket")
    store.prepare()
    store.prepare()  # and again: nothing to do
    assert _bucket_exists(seaweed, "fresh-bucket")


def _bucket_exists(server: SeaweedFS, bucket: str) -> bool:
    try:
        server.client().head_bucket(Bucket=bucket)
    except Exception:
        return False
    return True


def test_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_store((tmp_path / "a").as_uri()), LocalStore)
    s3 = open_store("s3://bucket/some/prefix", tmp_path, "http://127.0.0.1:1")
    assert isinstance(s3, S3Store)
    assert (s3.bucket, s3.prefix) == ("bucket", "some/prefix")
    with pytest.raises(ValueError, match="unsupported"):
        open_store("ftp://x/y")


def test_a_job_trains_and_samples_with_artifacts_in_s3(make_stack, seaweed: SeaweedFS) -> None:
    env = {"artifact_url": f"s3://{BUCKET}/service", "s3_endpoint_url": seaweed.endpoint}
    stack = make_stack(**env)
    stack.env.update(
        {
            "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    stack.api()
    stack.worker()
    with stack.client() as client:
        job = client.post("/api/v1/jobs", json={**TOY_SPEC, "steps": 40}).json()["id"]
        done = stack.wait_job(job, lambda j: j["status"] not in {"queued", "running"}, 120, "the end")
        assert done["status"] == "succeeded", done["error"]
        keys = [
            item["Key"]
            for item in seaweed.client()
            .list_objects_v2(Bucket=BUCKET, Prefix=f"service/jobs/{job}/")
            .get("Contents", [])
        ]
        assert sorted(Path(key).name for key in keys) == [
            "step-00000020.json",
            "step-00000020.safetensors",
            "step-00000040.json",
            "step-00000040.safetensors",
        ]
        png = client.get(f"/api/v1/jobs/{job}/samples", params={"n": 16})
        assert png.status_code == 200
        Image.open(io.BytesIO(png.content)).load()
        assert client.delete(f"/api/v1/jobs/{job}").status_code == 204
        remaining = seaweed.client().list_objects_v2(Bucket=BUCKET, Prefix=f"service/jobs/{job}/")
        assert remaining.get("KeyCount", 0) == 0
