"""Generators to take away, against the real stack: the ONNX file run in onnxruntime on the service's own
latents gives the service's samples; the safetensors file rebuilds the generator; the model card says how."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import onnxruntime
import pytest
import safetensors.numpy
import torch
from fastapi.testclient import TestClient

from tests.app.conftest import TINY_DCGAN
from tests.conftest import TOY_SPEC, wait_for_status
from wgan.config import TrainSpec
from wgan.networks import build_generator, model_data_shape
from wgan.sampling import latent

SEED, N = 11, 20
# The service computes a DCGAN in channels-last on 64-row chunks; an export or a rebuild computes the same
# function in plain NCHW on the rows given, whose sums round otherwise: 3.6e-5 apart was seen on a trained
# tiny DCGAN (outputs in [-1, 1]), so the bound is of rounding, not of a different model.
ROUNDING = 1e-4


def trained(client: httpx.Client, spec: dict[str, Any]) -> dict[str, Any]:
    job = client.post("/api/v1/jobs", json=spec).json()
    done = wait_for_status(client, job["id"], {"succeeded", "failed"}, timeout=120)
    assert done["status"] == "succeeded", done["error"]
    return done


@pytest.mark.parametrize("spec", [TOY_SPEC, TINY_DCGAN], ids=["mlp", "dcgan"])
def test_the_onnx_generator_gives_the_services_samples_and_safetensors_rebuild_it(
    client: httpx.Client, worker: Any, spec: dict[str, Any]
) -> None:
    job = trained(client, spec)
    resolved = TrainSpec.model_validate(job["spec"])
    url = f"/api/v1/jobs/{job['id']}/checkpoints/latest/generator"
    served = np.load(
        io.BytesIO(
            client.get(f"/api/v1/jobs/{job['id']}/samples", params={"n": N, "seed": SEED, "format": "npy"}).content
        )
    )
    assert resolved.model.latent_dim is not None
    z = latent(SEED, N, resolved.model.latent_dim)

    exported = client.get(url, params={"format": "onnx"})
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/onnx"
    assert exported.headers["content-disposition"].endswith('.onnx"')
    session = onnxruntime.InferenceSession(exported.content, providers=["CPUExecutionProvider"])
    (onnx_samples,) = session.run(None, {"z": z})
    assert onnx_samples.shape == served.shape
    assert float(np.abs(onnx_samples - served).max()) <= ROUNDING
    # The batch axis is dynamic: one latent at a time gives the same rows.
    (first,) = session.run(None, {"z": z[:1]})
    assert float(np.abs(first - served[:1]).max()) <= ROUNDING
    # On the CPU the service samples with this very graph (WGAN_SAMPLE_RUNTIME onnxruntime): called as its
    # card says, it gives the service's samples bit for bit.
    card = client.get(url, params={"format": "card"}).json()
    assert card["service_sampling"]["runtime"] == "onnxruntime"
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    one_thread = onnxruntime.InferenceSession(exported.content, options, providers=["CPUExecutionProvider"])
    chunk = np.zeros((card["service_sampling"]["chunk_rows"], z.shape[1]), dtype=np.float32)
    chunk[:N] = z
    np.testing.assert_array_equal(one_thread.run(None, {"z": chunk})[0][:N], served)

    weights = client.get(url, params={"format": "safetensors"})
    assert weights.status_code == 200
    tensors = safetensors.numpy.load(weights.content)
    generator = build_generator(resolved.model, model_data_shape(resolved.model))
    generator.load_state_dict({name: torch.from_numpy(value) for name, value in tensors.items()})
    with torch.no_grad():
        rebuilt = generator.eval()(torch.from_numpy(z)).numpy()
    assert float(np.abs(rebuilt - served).max()) <= ROUNDING

    assert card["latent"]["dimension"] == resolved.model.latent_dim
    assert card["output"]["shape"] == list(served.shape[1:])
    assert card["checkpoint"]["step"] == resolved.steps
    assert card["onnx"] == {"input": "z", "output": "x", "opset": 17, "batch_axis": "dynamic"}
    assert client.get(card["formats"]["onnx"]).content == exported.content, "byte-identical per request"


def test_an_exported_generator_is_etagged_scoped_and_named_by_any_checkpoint_reference(
    client: httpx.Client, other_client: httpx.Client, worker: Any
) -> None:
    job = trained(client, TOY_SPEC)
    checkpoints = client.get(f"/api/v1/jobs/{job['id']}/checkpoints").json()["items"]
    by_id = f"/api/v1/jobs/{job['id']}/checkpoints/{checkpoints[0]['id']}/generator"
    first = client.get(by_id, params={"format": "safetensors"})
    assert first.headers["cache-control"] == "private, max-age=31536000, immutable"
    assert first.headers["x-checkpoint-step"] == str(checkpoints[0]["step"])
    again = client.get(by_id, params={"format": "safetensors"}, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    by_step = client.get(
        f"/api/v1/jobs/{job['id']}/checkpoints/{checkpoints[0]['step']}/generator", params={"format": "safetensors"}
    )
    assert by_step.content == first.content
    assert other_client.get(by_id).status_code == 404
    assert client.get(f"/api/v1/jobs/{job['id']}/checkpoints/999999/generator").status_code == 404
    assert client.get(by_id, params={"format": "pickle"}).status_code == 422
    parked = client.post("/api/v1/jobs", json={**TOY_SPEC, "device": "cuda"}).json()
    assert client.get(f"/api/v1/jobs/{parked['id']}/checkpoints/latest/generator").status_code == 409
    client.post(f"/api/v1/jobs/{parked['id']}/cancel")


def test_each_sampling_runtime_has_its_own_etags_and_the_card_names_it(
    client: httpx.Client, worker: Any, app_with: Callable[..., TestClient]
) -> None:
    # The runtimes agree to rounding, not bit for bit: an ETag from one must not vouch for the other's bytes.
    job = trained(client, TINY_DCGAN)
    on_torch = app_with(key=client.headers["Authorization"].removeprefix("Bearer "), sample_runtime="torch")
    url, params = f"/api/v1/jobs/{job['id']}/samples", {"n": N, "seed": SEED, "format": "npy"}
    onnx_answer, torch_answer = client.get(url, params=params), on_torch.get(url, params=params)
    assert onnx_answer.headers["etag"] != torch_answer.headers["etag"]
    np.testing.assert_allclose(
        np.load(io.BytesIO(onnx_answer.content)), np.load(io.BytesIO(torch_answer.content)), rtol=0, atol=ROUNDING
    )
    assert on_torch.get(url, params=params, headers={"If-None-Match": torch_answer.headers["etag"]}).status_code == 304
    assert on_torch.get(url, params=params, headers={"If-None-Match": onnx_answer.headers["etag"]}).status_code == 200
    card_url = f"/api/v1/jobs/{job['id']}/checkpoints/latest/generator"
    cards = [app.get(card_url, params={"format": "card"}) for app in (client, on_torch)]
    assert [card.json()["service_sampling"]["runtime"] for card in cards] == ["onnxruntime", "torch"]
    assert cards[0].headers["etag"] != cards[1].headers["etag"]
