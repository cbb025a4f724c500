"""Judging generated digits with a classifier trained on the real ones: class coverage, KL of the class
histogram to uniform, and a Fréchet distance in the classifier's feature space.

The Fréchet distance is the FID of Heusel et al. (2017) with a small digit classifier in place of
Inception, as is usual for MNIST-like data. Its reference statistics come from the real set taken through
exactly the pipeline the generated images went through (prepared to the model's image size and fit, then
back to the classifier's side): otherwise the resampling alone scores, not the generator. The distance of N
real images to that reference is the floor a perfect generator would reach at the same N.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wgan.checkpoint import write_atomic
from wgan.config import Fit
from wgan.data.sources import digits_array, digits_labels, mnist_array, mnist_labels, prepare_images

CLASSES = 10
FEATURES = 128
TRAIN_BATCH = 64
TRAIN_LR = 1e-3
TRAIN_SEED = 0
# pytorch-fid's fallback when the product of the covariances has no finite square root.
SQRTM_EPS = 1e-6
FEATURE_BATCH = 1000


@dataclass(frozen=True)
class LabelledSet:
    """A real data set with labels: what a classifier learns and judges generated images against."""

    name: str
    side: int
    images: Callable[[], np.ndarray]  # N×1×side×side, uint8 or float in [−1, 1]
    labels: Callable[[], np.ndarray]
    holdout: int  # examples kept out of training to measure its accuracy
    epochs: int

    @property
    def weights_name(self) -> str:
        return f"{self.name}-classifier-v2.safetensors"


LABELLED: dict[str, LabelledSet] = {
    "digits": LabelledSet("digits", 8, digits_array, digits_labels, holdout=297, epochs=40),
    "mnist": LabelledSet("mnist", 28, mnist_array, mnist_labels, holdout=500, epochs=6),
}


def default_cache_dir() -> Path:
    """Where trained weights are kept unless a directory is given: the user's XDG cache."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wgan"


class ClassifierNet(nn.Module):
    """Two 3×3 convolutions with ReLU and max-pooling, then a 128-wide feature layer and the class head.
    Images of side 16 or more are pooled after each convolution, smaller ones once."""

    def __init__(self, side: int) -> None:
        super().__init__()
        pool_both = side >= 16
        layers: list[nn.Module] = [nn.Conv2d(1, 32, 3, padding=1), nn.ReLU()]
        if pool_both:
            layers += [nn.MaxPool2d(2)]
        layers += [nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()]
        reduced = side // (4 if pool_both else 2)
        layers += [nn.Linear(64 * reduced * reduced, FEATURES), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(FEATURES, CLASSES)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.features(x)
        return self.head(features), features


def as_float(images: np.ndarray | Tensor) -> Tensor:
    """Images as float32 in [−1, 1] (uint8 0..255 mapped as the training data is)."""
    tensor = torch.as_tensor(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if tensor.dtype == torch.uint8:
        return tensor.float().div(127.5).sub(1.0)
    return tensor.float()


def to_native(images: np.ndarray | Tensor, side: int) -> Tensor:
    """Images in [−1, 1] (or uint8), any size and 1 or 3 channels → 1×side×side, as the classifier trained."""
    tensor = as_float(images)
    if tensor.shape[1] == 3:
        tensor = tensor.mean(dim=1, keepdim=True)
    if tensor.shape[-1] != side:
        tensor = F.interpolate(tensor, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
    return tensor


def train_classifier(labelled: LabelledSet) -> tuple[ClassifierNet, float]:
    """Train on all but a held-out slice of the real set; returns the net and its held-out accuracy."""
    images, labels = to_native(labelled.images(), labelled.side), torch.from_numpy(labelled.labels())
    generator = torch.Generator().manual_seed(TRAIN_SEED)
    order = torch.randperm(len(labels), generator=generator)
    test, train = order[: labelled.holdout], order[labelled.holdout :]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TRAIN_SEED)
        net = ClassifierNet(labelled.side)
    optimizer = torch.optim.Adam(net.parameters(), lr=TRAIN_LR)
    for _ in range(labelled.epochs):
        for batch in torch.randperm(len(train), generator=generator).split(TRAIN_BATCH):
            index = train[batch]
            logits, _ = net(images[index])
            loss = F.cross_entropy(logits, labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    net.eval()
    with torch.no_grad():
        accuracy = float((net(images[test])[0].argmax(1) == labels[test]).float().mean())
    return net, accuracy


def load_classifier(labelled: LabelledSet, directory: Path | None = None) -> ClassifierNet:
    """The cached classifier for `labelled`, trained and cached first if it is missing or unreadable."""
    path = (directory or default_cache_dir()) / labelled.weights_name
    net = ClassifierNet(labelled.side)
    try:
        net.load_state_dict(safetensors.torch.load_file(str(path)))
    except (OSError, RuntimeError, safetensors.SafetensorError):
        net, _ = train_classifier(labelled)
        write_atomic(path, safetensors.torch.save({k: v.contiguous() for k, v in net.state_dict().items()}))
    return net.eval()


def classify(net: ClassifierNet, images: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(predicted classes, float64 features) of native-size images, in batches."""
    classes, features = [], []
    with torch.no_grad():
        for batch in images.split(FEATURE_BATCH):
            logits, out = net(batch)
            classes.append(logits.argmax(1).numpy())
            features.append(out.numpy().astype(np.float64))
    return np.concatenate(classes), np.concatenate(features)


@dataclass(frozen=True)
class Gaussian:
    mean: np.ndarray
    cov: np.ndarray

    @staticmethod
    def of(features: np.ndarray) -> Gaussian:
        return Gaussian(features.mean(0), np.cov(features, rowvar=False))


def frechet(a: np.ndarray | Gaussian, b: np.ndarray | Gaussian) -> float:
    """The Fréchet distance between two Gaussians fitted to feature sets: ‖μa − μb‖² + Tr(Σa + Σb − 2(ΣaΣb)^½)."""
    ga = a if isinstance(a, Gaussian) else Gaussian.of(a)
    gb = b if isinstance(b, Gaussian) else Gaussian.of(b)
    # Imported here: only a worker judging images needs it, and it costs every process a quarter second.
    import scipy.linalg

    with warnings.catch_warnings():
        # A singular product (few samples, dead features) is expected; a non-finite root is handled below.
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(ga.cov @ gb.cov)
        if not np.isfinite(root).all():
            offset = np.eye(len(ga.cov)) * SQRTM_EPS
            root = scipy.linalg.sqrtm((ga.cov + offset) @ (gb.cov + offset))
    root = root.real if np.iscomplexobj(root) else root
    distance = float(((ga.mean - gb.mean) ** 2).sum() + np.trace(ga.cov + gb.cov - 2 * root))
    # The matrix square root is inexact: two equal sets can come out a hair below zero.
    return max(distance, 0.0)


def class_histogram(classes: np.ndarray) -> np.ndarray:
    counts = np.bincount(classes, minlength=CLASSES)
    return counts / max(counts.sum(), 1)


def kl_to_uniform(histogram: np.ndarray) -> float:
    nonzero = histogram > 0
    return float((histogram[nonzero] * np.log(histogram[nonzero] * CLASSES)).sum())


class Judge:
    """A labelled set's classifier, with its reference taken through the model's image pipeline."""

    def __init__(
        self,
        labelled: LabelledSet,
        image_size: int,
        channels: int,
        fit: Fit | None,
        n: int,
        seed: int,
        directory: Path | None = None,
    ) -> None:
        self.labelled = labelled
        self.net = load_classifier(labelled, directory)
        real = prepare_images(labelled.images(), image_size, channels, fit or "resize")
        real_native = to_native(real, labelled.side)
        _, real_features = classify(self.net, real_native)
        self.reference = Gaussian.of(real_features)
        # The floor: n real images, drawn as the evaluator draws its reference, against all of them.
        index = torch.randint(len(real_native), (n,), generator=torch.Generator().manual_seed(seed))
        self.floor = frechet(real_features[index.numpy()], self.reference)

    def measure(self, samples: np.ndarray) -> dict[str, float]:
        classes, features = classify(self.net, to_native(samples, self.labelled.side))
        histogram = class_histogram(classes)
        return {
            "classes_covered": float((histogram > 0).sum()),
            "class_kl": kl_to_uniform(histogram),
            "frechet": frechet(features, self.reference),
            "frechet_real": self.floor,
        }


def judge_for(
    dataset: str | None,
    image_size: int | None,
    channels: int | None,
    fit: Fit | None,
    n: int,
    seed: int,
    directory: Path | None = None,
) -> Judge | None:
    """The judge for a built-in labelled data set (digits, mnist); None for every other data set."""
    labelled = LABELLED.get(dataset or "")
    if labelled is None or image_size is None or channels is None:
        return None
    return Judge(labelled, image_size, channels, fit, n, seed, directory)
