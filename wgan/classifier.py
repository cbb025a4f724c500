"""A small digit classifier for judging generated digits: class coverage, KL to uniform, Fréchet distance."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import safetensors.torch
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wgan.checkpoint import write_atomic
from wgan.data.sources import digits_array, digits_labels

WEIGHTS_NAME = "digits-classifier-v1.safetensors"
NATIVE_SIZE = 8
CLASSES = 10
TRAIN_EPOCHS = 40
TRAIN_BATCH = 64
TRAIN_LR = 1e-3
TRAIN_SEED = 0
HOLDOUT = 297


def cache_dir() -> Path:
    """Where derived weights are kept: $WGAN_CACHE_DIR, else the XDG cache."""
    explicit = os.environ.get("WGAN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wgan"


class DigitNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, 128),
            nn.ReLU(),
        )
        self.head = nn.Linear(128, CLASSES)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.features(x)
        return self.head(features), features


def to_native(images: np.ndarray) -> Tensor:
    """Images in [−1, 1], any size and 1 or 3 channels → 1×8×8, as the classifier was trained."""
    tensor = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    if tensor.shape[1] == 3:
        tensor = tensor.mean(dim=1, keepdim=True)
    if tensor.shape[-1] != NATIVE_SIZE:
        tensor = F.interpolate(
            tensor, size=(NATIVE_SIZE, NATIVE_SIZE), mode="bilinear", antialias=True, align_corners=False
        )
    return tensor


def train_classifier() -> tuple[DigitNet, float]:
    """Train on all but a held-out slice of the real digits; returns the net and held-out accuracy."""
    images, labels = torch.from_numpy(digits_array()), torch.from_numpy(digits_labels())
    generator = torch.Generator().manual_seed(TRAIN_SEED)
    order = torch.randperm(len(labels), generator=generator)
    test, train = order[:HOLDOUT], order[HOLDOUT:]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TRAIN_SEED)
        net = DigitNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=TRAIN_LR)
    for _ in range(TRAIN_EPOCHS):
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


def load_classifier(directory: Path | None = None) -> DigitNet:
    """The cached classifier, trained and cached first if it is missing or unreadable."""
    path = (directory or cache_dir()) / WEIGHTS_NAME
    net = DigitNet()
    try:
        net.load_state_dict(safetensors.torch.load_file(str(path)))
    except (OSError, RuntimeError, safetensors.SafetensorError):
        net, _ = train_classifier()
        write_atomic(path, safetensors.torch.save({k: v.contiguous() for k, v in net.state_dict().items()}))
    return net.eval()


@dataclass(frozen=True)
class DigitScores:
    classes_found: int
    kl_to_uniform: float
    frechet_distance: float
    histogram: list[float]


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    root = root.real if np.iscomplexobj(root) else root
    distance = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))
    # The matrix square root is inexact: two equal sets can come out a hair below zero.
    return max(distance, 0.0)


def score_digits(images: np.ndarray, net: DigitNet | None = None) -> DigitScores:
    """Judge generated digit images (N×C×H×W in [−1, 1]) against the real ones."""
    net = net or load_classifier()
    with torch.no_grad():
        logits, features = net(to_native(images))
        _, real_features = net(torch.from_numpy(digits_array()))
    counts = np.bincount(logits.argmax(1).numpy(), minlength=CLASSES)
    histogram = counts / counts.sum()
    nonzero = histogram > 0
    kl = float((histogram[nonzero] * np.log(histogram[nonzero] * CLASSES)).sum())
    return DigitScores(
        classes_found=int(nonzero.sum()),
        kl_to_uniform=kl,
        frechet_distance=frechet(features.numpy().astype(np.float64), real_features.numpy().astype(np.float64)),
        histogram=[float(h) for h in histogram],
    )
