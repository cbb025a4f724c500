"""Data sets: the built-in list, checked uploads, and training on an upload."""

from __future__ import annotations

import io
import zipfile

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT, TOY_SPEC, wait_for_status


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def png_bytes(size: tuple[int, int], mode: str = "L", value: int = 128) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, value).save(buffer, format="PNG")
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def stored_datasets() -> list:
    folder = ROOT / "artifacts" / "datasets"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_builtin_datasets_are_listed_with_shape_and_size(client: httpx.Client) -> None:
    items = {item["name"]: item for item in client.get("/api/v1/datasets").json()["items"]}
    assert items["8gaussians"]["shape"] == [2]
    assert items["8gaussians"]["count"] is None
    assert items["digits"]["shape"] == [1, 8, 8]
    assert items["digits"]["count"] == 1797
    assert (items["mnist"]["shape"], items["mnist"]["count"]) == ([1, 28, 28], 5000)
    assert "at their own size" in items["mnist"]["description"]  # a DCGAN builds 28 px
    assert all(item["builtin"] for item in items.values())


def test_zip_upload_is_stored_listed_and_trains(client: httpx.Client, other_client: httpx.Client, worker) -> None:
    rng = np.random.default_rng(0)
    members = {f"img/{i}.png": png_bytes((8, 8), value=int(v)) for i, v in enumerate(rng.integers(0, 255, 12))}
    response = client.post(
        "/api/v1/datasets", files={"file": ("faces.zip", zip_bytes(members))}, data={"name": "tiny faces"}
    )
    assert response.status_code == 201, response.text
    uploaded = response.json()
    assert uploaded["shape"] == [1, 8, 8]
    assert uploaded["count"] == 12
    assert uploaded["name"] == "tiny faces"
    assert response.headers["location"] == f"/api/v1/datasets/{uploaded['id']}"
    listed = [item for item in client.get("/api/v1/datasets").json()["items"] if not item["builtin"]]
    assert [item["id"] for item in listed] == [uploaded["id"]]
    assert other_client.get(f"/api/v1/datasets/{uploaded['id']}").status_code == 404
    foreign = other_client.post("/api/v1/jobs", json={"dataset": {"id": uploaded["id"]}})
    assert foreign.status_code == 422

    spec = {
        **TOY_SPEC,
        "dataset": {"id": uploaded["id"]},
        "model": {"arch": "mlp", "hidden_dim": 16, "depth": 1},
        "steps": 10,
        "checkpoint_every": 10,
    }
    job = client.post("/api/v1/jobs", json=spec).json()
    assert job["spec"]["model"]["image_size"] == 8
    assert job["spec"]["model"]["channels"] == 1
    done = wait_for_status(client, job["id"], {"succeeded", "failed"})
    assert done["status"] == "succeeded", done["error"]
    grid = client.get(f"/api/v1/jobs/{job['id']}/samples", params={"n": 4})
    assert Image.open(io.BytesIO(grid.content)).mode == "L"
    assert client.delete(f"/api/v1/datasets/{uploaded['id']}").status_code == 409  # a job uses it


def test_npz_points_upload(client: httpx.Client) -> None:
    points = np.random.default_rng(1).normal(size=(50, 2)).astype(np.float32)
    response = client.post("/api/v1/datasets", files={"file": ("ring.npz", npz_bytes(x=points))})
    assert response.status_code == 201
    assert response.json()["shape"] == [2]
    assert response.json()["kind"] == "points"
    assert client.delete(f"/api/v1/datasets/{response.json()['id']}").status_code == 204


@pytest.mark.parametrize(
    ("filename", "payload", "status"),
    [
        ("broken.zip", b"PK\x03\x04 not really a zip", 422),
        ("empty.zip", zip_bytes({}), 422),
        ("mixed.zip", zip_bytes({"a.png": png_bytes((8, 8)), "b.png": png_bytes((9, 9))}), 422),
        ("notes.zip", zip_bytes({"a.png": png_bytes((8, 8)), "readme.txt": b"hello"}), 422),
        ("evil.zip", zip_bytes({"../evil.png": png_bytes((8, 8))}), 422),
        ("nan.npz", npz_bytes(x=np.full((4, 8, 8), np.nan, dtype=np.float32)), 422),
        ("nox.npz", npz_bytes(y=np.zeros((4, 8, 8), dtype=np.uint8)), 422),
        ("objects.npz", npz_bytes(x=np.array([{"a": 1}], dtype=object)), 422),
        ("data.csv", b"1,2\n3,4\n", 415),
        ("empty.npz", b"", 422),
    ],
)
def test_bad_uploads_are_4xx_and_store_nothing(
    client: httpx.Client, filename: str, payload: bytes, status: int
) -> None:
    before = stored_datasets()
    response = client.post("/api/v1/datasets", files={"file": (filename, payload)})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"]
    assert stored_datasets() == before
    assert [item for item in client.get("/api/v1/datasets").json()["items"] if not item["builtin"]] == []


def test_oversized_upload_is_413(client: httpx.Client) -> None:
    from tests.support.service import settings

    too_big = b"\0" * (settings().max_upload_bytes + 1)
    response = client.post("/api/v1/datasets", files={"file": ("big.npz", too_big)})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def _bomb() -> bytes:
    # 64 MB of zeros deflates to about 64 KB: small on the wire, over the expanded-size cap (32 MB in
    # the tests' settings) once unpacked.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive, archive.open("zeros.png", "w") as f:
        for _ in range(64):
            f.write(bytes(1024 * 1024))
    return buffer.getvalue()


def _npz_declaring(shape: tuple[int, ...]) -> bytes:
    # An .npy header that promises a huge array, with a few bytes behind it: refused from the header alone.
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
    return zip_bytes({"x.npy": header.getvalue() + bytes(64)})


def _with_flags(archive: bytes, flags: int) -> bytes:
    # Set general-purpose flag bits in every local and central header (zipfile cannot write encrypted files).
    data = bytearray(archive)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = data.find(signature)
        while start != -1:
            data[start + offset] |= flags
            start = data.find(signature, start + 4)
    return bytes(data)


def _bad_crc() -> bytes:
    data = bytearray(npz_bytes(x=np.ones((16, 2), dtype=np.float32)))
    one = data.find(np.float32(1.0).tobytes())
    data[one] ^= 0xFF  # the stored CRC no longer matches
    return bytes(data)


def _bzip2() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("a.png", png_bytes((8, 8)))
    return buffer.getvalue()


def _many_members(count: int) -> bytes:
    return zip_bytes({f"{i}.png": png_bytes((8, 8)) for i in range(count)})


@pytest.mark.parametrize(
    ("filename", "payload", "needle"),
    [
        ("bomb.zip", _bomb, "expands"),
        ("huge.zip", lambda: zip_bytes({"big.png": png_bytes((5000, 8))}), "largest side"),
        ("truncated.zip", lambda: zip_bytes({"a.png": png_bytes((8, 8))[:40]}), "not a readable image"),
        ("truncated.npz", lambda: npz_bytes(x=np.zeros((4, 8, 8), dtype=np.uint8))[:100], "npz"),
        ("int16.npz", lambda: npz_bytes(x=np.zeros((4, 8, 8), dtype=np.int16)), "uint8"),
        ("range.npz", lambda: npz_bytes(x=np.full((4, 8, 8), 7.0, dtype=np.float32)), "[0, 1]"),
        ("absolute.zip", lambda: zip_bytes({"/etc/evil.png": png_bytes((8, 8))}), "outside"),
        ("raw-member.npz", lambda: zip_bytes({"x": b"\x93NUMPY garbage"}), "no array named 'x'"),
        ("promises.npz", lambda: _npz_declaring((100_000, 1, 512, 512)), "bytes unpacked"),
        ("bad-crc.npz", _bad_crc, "Bad CRC"),
        ("encrypted.zip", lambda: _with_flags(zip_bytes({"a.png": png_bytes((8, 8))}), 0x1), "encrypted"),
        ("bzip2.zip", _bzip2, "zip method 12"),
    ],
)
def test_hostile_uploads_are_refused_with_a_reason_and_store_nothing(
    client: httpx.Client, filename: str, payload, needle: str
) -> None:
    before = stored_datasets()
    response = client.post("/api/v1/datasets", files={"file": (filename, payload())})
    assert response.status_code == 422, response.text
    assert needle in response.json()["detail"]
    assert stored_datasets() == before


def test_too_many_examples_is_refused(client: httpx.Client) -> None:
    from tests.support.service import settings

    limit = settings().max_upload_examples
    array = np.zeros((limit + 1, 2), dtype=np.float32)
    response = client.post("/api/v1/datasets", files={"file": ("many.npz", npz_bytes(x=array))})
    assert response.status_code == 422
    assert str(limit) in response.json()["detail"]


def test_uploads_are_stored_compressed_within_the_owners_quota(app_with) -> None:
    zeros = npz_bytes(x=np.zeros((2000, 1, 16, 16), dtype=np.uint8))  # 512 KB of pixels, compressible
    roomy = app_with()
    made = roomy.post("/api/v1/datasets", files={"file": ("zeros.npz", zeros)})
    assert made.status_code == 201, made.text
    stored = roomy.get(f"/api/v1/datasets/{made.json()['id']}")
    assert stored.status_code == 200
    from service.models import Dataset
    from tests.support.service import runtime

    with runtime().db.reads() as session:
        row = session.get(Dataset, made.json()["id"])
        assert row is not None
        size = row.size_bytes
    assert size < 2000 * 16 * 16 // 10, "kept compressed"
    # An owner whose uploads would pass the quota is refused with the quota named, and nothing is kept.
    key = roomy.headers["authorization"].removeprefix("Bearer ")
    tight = app_with(key=key, max_storage_bytes_per_owner=2 * size - 1)
    before = stored_datasets()
    over = tight.post("/api/v1/datasets", files={"file": ("again.npz", zeros)})
    assert over.status_code == 413
    assert "quota" in over.json()["detail"] and f"{2 * size - 1:,}" in over.json()["detail"]
    assert stored_datasets() == before
    assert (
        app_with(key=key, max_storage_bytes_per_owner=2 * size)
        .post("/api/v1/datasets", files={"file": ("fits.npz", zeros)})
        .status_code
        == 201
    )


def test_uploads_are_rate_limited_per_key(app_with) -> None:
    small = npz_bytes(x=np.zeros((10, 2), dtype=np.float32))
    client = app_with(rate_uploads_per_minute=2)
    codes = [client.post("/api/v1/datasets", files={"file": (f"{i}.npz", small)}).status_code for i in range(3)]
    assert codes == [201, 201, 429]
