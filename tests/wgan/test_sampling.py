"""Sampling: deterministic per (checkpoint, seed, n), prefix-stable in n, and the PNGs it renders."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

import wgan.sampling
from tests.wgan.helpers import TINY_DIGITS, tiny_trainer
from wgan.checkpoint import CheckpointError, save_checkpoint
from wgan.render import (
    GRID_PADDING,
    SAMPLE_RGB,
    SCATTER_SIZE,
    grid_png,
    image_grid,
    image_png,
    plot_extent,
    scatter_png,
    to_uint8,
)
from wgan.sampling import (
    SAMPLE_CHUNK,
    SamplingStopped,
    generate_together,
    latent,
    load_sampler,
    padding,
    sample,
    walk,
    walk_latents,
)


@pytest.fixture(scope="module")
def points_checkpoint(tmp_path_factory):
    trainer = tiny_trainer(steps=3)
    trainer.fit()
    return save_checkpoint(tmp_path_factory.mktemp("points"), trainer.checkpoint()), trainer


@pytest.fixture(scope="module")
def images_checkpoint(tmp_path_factory):
    # Batch norm in the generator: sampling must use its running statistics (eval mode),
    # or a sample would depend on the others in its batch.
    trainer = tiny_trainer(TINY_DIGITS, steps=3, model={"generator_batch_norm": True})
    trainer.fit()
    return save_checkpoint(tmp_path_factory.mktemp("images"), trainer.checkpoint()), trainer


def test_latent_rows_do_not_depend_on_n():
    np.testing.assert_array_equal(latent(5, 3, 4), latent(5, 200, 4)[:3])
    assert not np.array_equal(latent(5, 3, 4), latent(6, 3, 4))
    # Negative seeds are valid and distinct from their positive twins.
    assert not np.array_equal(latent(-5, 3, 4), latent(5, 3, 4))


def test_points_are_deterministic_and_prefix_stable(points_checkpoint):
    path, trainer = points_checkpoint
    sampler = load_sampler(path)
    assert sampler.step == 3
    assert not sampler.is_images
    many = sample(sampler, 150, seed=7)  # spans several generator chunks, the last one padded
    assert many.shape == (150, 2)
    assert many.dtype == np.float32
    np.testing.assert_array_equal(many, sample(load_sampler(path), 150, seed=7))
    for k in (1, 5, SAMPLE_CHUNK, SAMPLE_CHUNK + 1):
        np.testing.assert_array_equal(sample(sampler, k, seed=7), many[:k])
    assert not np.array_equal(sample(sampler, 5, seed=8), many[:5])
    # The samples are the trained generator's: its moving average, which the toys keep by default.
    assert trainer.spec.generator_ema
    averaged = trainer.sampling_generator
    with torch.no_grad():
        expected = averaged.eval()(torch.from_numpy(latent(7, 5, 2))).numpy()
        live = trainer.generator.eval()(torch.from_numpy(latent(7, 5, 2))).numpy()
    trainer.generator.train()
    np.testing.assert_allclose(many[:5], expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(many[:5], live)


def test_images_are_deterministic_and_prefix_stable_with_batch_norm(images_checkpoint):
    path, _ = images_checkpoint
    sampler = load_sampler(path)
    assert sampler.is_images
    images = sample(sampler, 70, seed=0)
    assert images.shape == (70, 1, 16, 16)
    assert images.min() >= -1
    assert images.max() <= 1
    np.testing.assert_array_equal(sample(sampler, 3, seed=0), images[:3])
    np.testing.assert_array_equal(sample(load_sampler(path), 70, seed=0), images)


def test_images_come_from_the_trained_generator_computed_in_nhwc_as_plain_nchw_rows(images_checkpoint):
    path, trainer = images_checkpoint
    sampler = load_sampler(path)
    images = sample(sampler, 5, seed=2)
    assert images.flags.c_contiguous, "callers get plain NCHW rows whatever layout computed them"
    # The faster layout changes rounding only: the same values as the trained generator in its own layout.
    averaged = trainer.sampling_generator.eval()
    with torch.no_grad():
        z = torch.from_numpy(latent(2, SAMPLE_CHUNK, trainer.spec.model.latent_dim))
        expected = averaged(z)[:5].numpy()
    np.testing.assert_allclose(images, expected, rtol=1e-4, atol=1e-5)


def test_loading_for_sampling_reads_only_the_generator_that_samples(points_checkpoint, monkeypatch):
    path, _ = points_checkpoint
    loaded = []
    real_load = wgan.sampling.load_checkpoint

    def spy(*args, **kwargs):
        checkpoint = real_load(*args, **kwargs)
        loaded.append(checkpoint)
        return checkpoint

    monkeypatch.setattr(wgan.sampling, "load_checkpoint", spy)
    sampler = load_sampler(path)
    (checkpoint,) = loaded
    assert checkpoint.tensors
    assert all(k.startswith("generator_ema.") for k in checkpoint.tensors)
    assert not sampler.generator.training
    assert not any(p.requires_grad for p in sampler.generator.parameters())


def test_a_damaged_checkpoint_cannot_be_sampled(tmp_path, points_checkpoint):
    _, trainer = points_checkpoint
    path = save_checkpoint(tmp_path, trainer.checkpoint())
    tensors = path.with_suffix(".safetensors")
    tensors.write_bytes(tensors.read_bytes()[:-10])
    with pytest.raises(CheckpointError):
        load_sampler(path)


# --- PNGs ---------------------------------------------------------------------------------------


def _decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG"
    return image


def test_to_uint8_maps_the_model_range_and_clips():
    assert to_uint8(np.array([-1.0, 0.0, 1.0, -3.0, 3.0])).tolist() == [0, 128, 255, 0, 255]


@pytest.mark.parametrize(("n", "channels", "mode"), [(16, 1, "L"), (10, 3, "RGB"), (1, 1, "L")])
def test_grid_png_decodes_to_the_expected_size(n, channels, mode):
    images = np.random.default_rng(0).integers(0, 256, (n, channels, 16, 16), dtype=np.uint8)
    png = grid_png(images)
    columns = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    decoded = _decode(png)
    assert decoded.mode == mode
    assert decoded.size == (columns * (16 + GRID_PADDING) + GRID_PADDING, rows * (16 + GRID_PADDING) + GRID_PADDING)
    # Each cell holds its image, in order.
    pixels = np.asarray(decoded)
    last = n - 1
    top = GRID_PADDING + (last // columns) * (16 + GRID_PADDING)
    left = GRID_PADDING + (last % columns) * (16 + GRID_PADDING)
    cell = pixels[top : top + 16, left : left + 16]
    expected = images[last, 0] if channels == 1 else images[last].transpose(1, 2, 0)
    np.testing.assert_array_equal(cell, expected)
    assert grid_png(images) == png


def test_single_image_png():
    image = np.random.default_rng(1).integers(0, 256, (3, 8, 8), dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(_decode(image_png(image))), image.transpose(1, 2, 0))
    assert image_grid(image[None]).shape == (8 + 2 * GRID_PADDING, 8 + 2 * GRID_PADDING, 3)


def test_sample_pngs_are_byte_identical_for_the_same_inputs(images_checkpoint, points_checkpoint):
    images_path, _ = images_checkpoint
    first = grid_png(to_uint8(sample(load_sampler(images_path), 9, seed=3)))
    again = grid_png(to_uint8(sample(load_sampler(images_path), 9, seed=3)))
    other = grid_png(to_uint8(sample(load_sampler(images_path), 9, seed=4)))
    assert first == again != other

    points_path, trainer = points_checkpoint
    reference = trainer.data.reference(500, 0).numpy()
    scatter = scatter_png(sample(load_sampler(points_path), 50, seed=3), reference)
    assert scatter == scatter_png(sample(load_sampler(points_path), 50, seed=3), reference)


def test_scatter_png_draws_every_point_over_the_reference():
    reference = np.random.default_rng(0).normal(size=(1000, 2))
    points = np.array([[0.0, 0.0], [100.0, 100.0]])  # the second far outside: pinned to the edge, not lost
    decoded = _decode(scatter_png(points, reference))
    assert decoded.mode == "RGB"
    assert decoded.size == (SCATTER_SIZE, SCATTER_SIZE)
    pixels = np.asarray(decoded)
    orange = (pixels == SAMPLE_RGB).all(axis=2)
    cx, cy, half = plot_extent(reference)
    col = int((0.0 - (cx - half)) / (2 * half) * SCATTER_SIZE)
    row = int(((cy + half) - 0.0) / (2 * half) * SCATTER_SIZE)
    assert orange[row - 1 : row + 2, col - 1 : col + 2].all()  # a 3×3 dot at (0, 0)
    assert orange[:3, -3:].any()  # top right corner
    # The reference density is drawn (grey) and the background is white.
    assert (pixels == 255).all(axis=2).mean() > 0.3
    assert ((pixels < 250).any(axis=2) & ~orange).sum() > 100


def test_sampling_stops_between_chunks_when_asked_and_not_otherwise(points_checkpoint):
    path, _ = points_checkpoint
    sampler = load_sampler(path)
    asked = []

    def after_one_chunk() -> bool:
        asked.append(1)
        return len(asked) > 1

    with pytest.raises(SamplingStopped, match=f"after {SAMPLE_CHUNK} of {3 * SAMPLE_CHUNK}"):
        sample(sampler, 3 * SAMPLE_CHUNK, seed=0, should_stop=after_one_chunk)
    never = sample(sampler, 3 * SAMPLE_CHUNK, seed=0, should_stop=lambda: False)
    np.testing.assert_array_equal(never, sample(sampler, 3 * SAMPLE_CHUNK, seed=0))


# Where and on what the API may run its passes: torch on the CPU or a GPU, onnxruntime on the CPU.
RUNS = [
    pytest.param("cpu", "torch", id="cpu-torch"),
    pytest.param("cpu", "onnxruntime", id="cpu-onnxruntime"),
    pytest.param(
        "cuda",
        "torch",
        id="cuda-torch",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this host"),
    ),
]


@pytest.mark.parametrize(("device", "runtime"), RUNS)
@pytest.mark.parametrize("which", ["points_checkpoint", "images_checkpoint"])
def test_a_row_gets_the_same_bits_at_every_offset_of_its_chunk(which, device, runtime, request):
    # What lets requests share a pass (app.sample_batches): a sample's bits do not depend on where in its
    # chunk it is computed, nor on the rows beside it (batch norm in the images generator included). On a
    # GPU too, where sampling runs when its host has one, and on onnxruntime, which the API's CPU passes use.
    sampler = load_sampler(request.getfixturevalue(which)[0], torch.device(device), runtime=runtime)
    assert sampler.runtime == runtime
    dim = sampler.spec.model.latent_dim
    alone = sample(sampler, 1, seed=3)
    for offset in range(SAMPLE_CHUNK):
        _, rider = generate_together(sampler, [latent(9, offset, dim), latent(3, 1, dim)])
        np.testing.assert_array_equal(rider, alone, err_msg=f"row offset {offset}")


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
def test_batches_generated_together_each_get_their_own_samples_bit_for_bit(images_checkpoint, runtime):
    sampler = load_sampler(images_checkpoint[0], runtime=runtime)
    dim = sampler.spec.model.latent_dim
    # A first batch spanning two chunks, then others in its padding, one of them a latent walk.
    first, second, third = latent(1, SAMPLE_CHUNK + 5, dim), latent(2, 7, dim), walk_latents(4, 5, 6, dim)
    assert len(second) + len(third) <= padding(len(first))
    together = generate_together(sampler, [first, second, third])
    assert [len(batch) for batch in together] == [SAMPLE_CHUNK + 5, 7, 6]
    np.testing.assert_array_equal(together[0], sample(sampler, SAMPLE_CHUNK + 5, seed=1))
    np.testing.assert_array_equal(together[1], sample(sampler, 7, seed=2))
    np.testing.assert_array_equal(together[2], walk(sampler, 4, 5, 6))


def test_padding_is_the_room_left_in_the_last_chunk():
    assert [padding(rows) for rows in (1, SAMPLE_CHUNK - 1, SAMPLE_CHUNK, SAMPLE_CHUNK + 1)] == [
        SAMPLE_CHUNK - 1,
        1,
        0,
        SAMPLE_CHUNK - 1,
    ]


@pytest.mark.parametrize("which", ["points_checkpoint", "images_checkpoint"])
def test_onnxruntime_samples_the_trained_generator_as_torch_does_to_rounding(which, request):
    path, _ = request.getfixturevalue(which)
    on_onnx = load_sampler(path, runtime="onnxruntime")
    on_torch = load_sampler(path)
    # Deterministic per request on its runtime, as on torch.
    np.testing.assert_array_equal(sample(on_onnx, 70, seed=5), sample(on_onnx, 70, seed=5))
    np.testing.assert_allclose(sample(on_onnx, 70, seed=5), sample(on_torch, 70, seed=5), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="CPU"):
        load_sampler(path, torch.device("meta"), runtime="onnxruntime")
