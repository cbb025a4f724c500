"""Write a small image data set to upload: scikit-learn's handwritten digits as PNG files in a zip.

    .venv/bin/python scripts/sample_upload.py scratch/digits.zip [--size 28] [--count 1797]

The digits are 8×8; they are scaled up (bicubic) to --size, 28 by default (MNIST's side). A job that trains
them at another side shows how the service fits images to the model (see the job's dataset.fit).
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

DIGIT_MAX = 16  # scikit-learn's digits have pixel values 0..16


def digit_pngs(size: int, count: int) -> list[bytes]:
    images = load_digits().images[:count]
    pngs = []
    for image in images:
        pixels = np.round(image * (255 / DIGIT_MAX)).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).resize((size, size), Image.Resampling.BICUBIC).save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    return pngs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the .zip to write")
    parser.add_argument("--size", type=int, default=28, help="image side in pixels (28)")
    parser.add_argument("--count", type=int, default=1797, help="how many digits, at most 1797 (all)")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pngs = digit_pngs(args.size, args.count)
    with zipfile.ZipFile(args.out, "w", compression=zipfile.ZIP_STORED) as archive:
        for i, png in enumerate(pngs):
            archive.writestr(f"digit-{i:04d}.png", png)
    print(f"wrote {len(pngs)} {args.size}×{args.size} digit images to {args.out}")


if __name__ == "__main__":
    main()
