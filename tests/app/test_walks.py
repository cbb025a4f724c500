"""Latent walks over HTTP: deterministic animations and strips for images, a path over the data for 2-D
points, the first frame the sample of seed A, slerp and lerp apart, and the bad combinations refused."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import numpy as np
from PIL import Image

from tests.app.conftest import TINY_DCGAN
from tests.app.test_export import trained
from tests.conftest import TOY_SPEC
from wgan.render import to_uint8
from wgan.sampling import walk_latents


def test_an_image_walk_animates_from_seed_a_to_seed_b_the_same_every_time(client: httpx.Client, worker: Any) -> None:
    job = trained(client, TINY_DCGAN)
    url = f"/api/v1/jobs/{job['id']}/samples"
    params = {"interpolate": "3,8", "frames": 6}
    gif = client.get(url, params={**params, "format": "gif"})
    assert gif.status_code == 200 and gif.headers["content-type"] == "image/gif"
    assert client.get(url, params={**params, "format": "gif"}).content == gif.content
    assert (
        client.get(url, params={**params, "format": "gif"}, headers={"If-None-Match": gif.headers["etag"]}).status_code
        == 304
    )
    with Image.open(io.BytesIO(gif.content)) as animation:
        assert animation.n_frames == 6
    with Image.open(io.BytesIO(client.get(url, params={**params, "format": "webp"}).content)) as webp:
        assert (webp.format, webp.n_frames) == ("WEBP", 6)

    frames = np.load(io.BytesIO(client.get(url, params={**params, "format": "npy"}).content))
    assert frames.shape == (6, 1, 16, 16)
    # The walk starts at seed A's first sample and ends at seed B's.
    first_a = np.load(io.BytesIO(client.get(url, params={"n": 1, "seed": 3, "format": "npy"}).content))
    last_b = np.load(io.BytesIO(client.get(url, params={"n": 1, "seed": 8, "format": "npy"}).content))
    np.testing.assert_allclose(frames[0], first_a[0], atol=1e-5)
    np.testing.assert_allclose(frames[-1], last_b[0], atol=1e-5)
    lerp = np.load(io.BytesIO(client.get(url, params={**params, "path": "lerp", "format": "npy"}).content))
    assert not np.allclose(lerp[1:-1], frames[1:-1]), "slerp and lerp differ between the ends"

    strip = client.get(url, params={**params, "format": "png"})
    with Image.open(io.BytesIO(strip.content)) as image:
        assert image.size[0] > 5 * image.size[1], "one row of six frames"
    walked = client.get(url, params={**params, "format": "json"}).json()
    assert walked["seed"] == 3 and len(walked["samples"]) == 6
    with Image.open(io.BytesIO(base64.b64decode(walked["samples"][0]))) as one:
        np.testing.assert_array_equal(np.asarray(one), to_uint8(frames)[0, 0])


def test_a_points_walk_is_a_path_and_bad_combinations_are_refused(client: httpx.Client, worker: Any) -> None:
    job = trained(client, TOY_SPEC)
    url = f"/api/v1/jobs/{job['id']}/samples"
    path = client.get(url, params={"interpolate": "0,1", "frames": 10})
    assert path.status_code == 200 and path.headers["content-type"] == "image/png"
    points = np.load(io.BytesIO(client.get(url, params={"interpolate": "0,1", "frames": 10, "format": "npy"}).content))
    assert points.shape == (10, 2)
    assert client.get(url, params={"interpolate": "0,1", "format": "gif"}).status_code == 422
    assert client.get(url, params={"format": "gif"}).status_code == 422
    for bad in (
        {"interpolate": "1"},
        {"interpolate": "a,b"},
        {"interpolate": "0,1", "frames": 1},
        {"interpolate": "0,1", "frames": 65},
    ):
        assert client.get(url, params=bad).status_code == 422, bad


def test_slerp_keeps_the_latents_norm_where_lerp_shrinks_it() -> None:
    slerp, lerp = walk_latents(0, 1, 9, 64, "slerp"), walk_latents(0, 1, 9, 64, "lerp")
    ends = np.linalg.norm(slerp[[0, -1]], axis=1)
    assert np.linalg.norm(slerp[4]) >= ends.min() * 0.95
    assert np.linalg.norm(lerp[4]) < ends.min() * 0.8
    np.testing.assert_array_equal(slerp[0], lerp[0])
