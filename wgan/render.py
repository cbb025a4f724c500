"""Encoding samples for people: image grids, single images and scatter plots as PNG; latent walks as
animations (GIF, WebP) or strips."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

GRID_PADDING = 2
GRID_BACKGROUND = 32
SCATTER_SIZE = 512
SCATTER_MARGIN = 0.25
REFERENCE_RGB = np.array([150, 160, 175], dtype=np.float32)
SAMPLE_RGB = np.array([230, 110, 20], dtype=np.uint8)
BACKGROUND_RGB = np.array([255, 255, 255], dtype=np.float32)
# zlib's fastest level: on sample grids it costs a fraction of the default level's time (bench sampling),
# and the bytes it adds are cheaper to send than the compression is to run.
PNG_COMPRESS_LEVEL = 1


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Model-space images in [−1, 1] → uint8."""
    return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def encode_png(pixels: np.ndarray, level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """H×W or H×W×3 uint8 → PNG bytes (deterministic for the same pixels and level)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=level)
    return buffer.getvalue()


def _hwc(image: np.ndarray) -> np.ndarray:
    """C×H×W uint8 → H×W (grey) or H×W×3."""
    return image[0] if image.shape[0] == 1 else np.transpose(image, (1, 2, 0))


def image_png(image: np.ndarray) -> bytes:
    """One C×H×W uint8 image as PNG."""
    return encode_png(np.ascontiguousarray(_hwc(image)))


def image_grid(images: np.ndarray, columns: int | None = None) -> np.ndarray:
    """N×C×H×W uint8 → one padded grid, about square."""
    n, channels, height, width = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    pad = GRID_PADDING
    grid = np.full(
        (channels, rows * (height + pad) + pad, columns * (width + pad) + pad), GRID_BACKGROUND, dtype=np.uint8
    )
    for index in range(n):
        row, column = divmod(index, columns)
        top, left = pad + row * (height + pad), pad + column * (width + pad)
        grid[:, top : top + height, left : left + width] = images[index]
    return _hwc(grid)


def grid_png(images: np.ndarray) -> bytes:
    return encode_png(np.ascontiguousarray(image_grid(images)))


def plot_extent(reference: np.ndarray) -> tuple[float, float, float]:
    """A square (centre x, centre y, half-width) around the reference points, with a margin."""
    low, high = reference.min(axis=0), reference.max(axis=0)
    centre = (low + high) / 2
    half = float((high - low).max()) / 2 * (1 + SCATTER_MARGIN) or 1.0
    return float(centre[0]), float(centre[1]), half


def _to_pixels(points: np.ndarray, extent: tuple[float, float, float], size: int) -> tuple[np.ndarray, np.ndarray]:
    cx, cy, half = extent
    cols = np.floor((points[:, 0] - (cx - half)) / (2 * half) * size).astype(np.int64)
    rows = np.floor(((cy + half) - points[:, 1]) / (2 * half) * size).astype(np.int64)
    return rows, cols


def reference_layer(reference: np.ndarray, size: int = SCATTER_SIZE) -> np.ndarray:
    """The real distribution as a soft grey density on white, H×W×3 float."""
    extent = plot_extent(reference)
    rows, cols = _to_pixels(reference, extent, size)
    keep = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
    counts = np.zeros((size, size), dtype=np.float32)
    np.add.at(counts, (rows[keep], cols[keep]), 1.0)
    density = np.log1p(counts) / max(float(np.log1p(counts).max()), 1e-6)
    alpha = (0.85 * density)[..., None]
    return BACKGROUND_RGB * (1 - alpha) + REFERENCE_RGB * alpha


def scatter_png(
    points: np.ndarray, reference: np.ndarray, size: int = SCATTER_SIZE, background: np.ndarray | None = None
) -> bytes:
    """Generated `points` as orange dots over the real distribution drawn from `reference`."""
    canvas = (background if background is not None else reference_layer(reference, size)).astype(np.uint8)
    rows, cols = _to_pixels(points, plot_extent(reference), size)
    # Each point is a 3×3 dot; points outside the frame are pinned to its edge so none vanish.
    rows, cols = np.clip(rows, 1, size - 2), np.clip(cols, 1, size - 2)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            canvas[rows + dr, cols + dc] = SAMPLE_RGB
    return encode_png(canvas)


WALK_FRAME_MS = 90
WALK_SCALE = 4  # small generated images are scaled up (nearest) so an animation can be seen


def _frames(images: np.ndarray) -> list[Image.Image]:
    return [
        Image.fromarray(np.ascontiguousarray(_hwc(image))).resize(
            (image.shape[2] * WALK_SCALE, image.shape[1] * WALK_SCALE), Image.Resampling.NEAREST
        )
        for image in images
    ]


def animation(images: np.ndarray, fmt: str) -> bytes:
    """N×C×H×W uint8 frames as a looping animated GIF or WebP (lossless), deterministic for the same frames."""
    frames = _frames(images)
    buffer = io.BytesIO()
    if fmt == "gif":
        frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=WALK_FRAME_MS, loop=0)
    else:
        frames[0].save(
            buffer,
            format="WEBP",
            save_all=True,
            append_images=frames[1:],
            duration=WALK_FRAME_MS,
            loop=0,
            lossless=True,
        )
    return buffer.getvalue()


def strip_png(images: np.ndarray) -> bytes:
    """N×C×H×W uint8 frames in one row."""
    return encode_png(np.ascontiguousarray(image_grid(images, columns=len(images))))


def path_png(points: np.ndarray, reference: np.ndarray, background: np.ndarray | None = None) -> bytes:
    """A walk through 2-D data: its points joined in order over the real distribution."""
    size = SCATTER_SIZE
    canvas = (background if background is not None else reference_layer(reference, size)).astype(np.uint8)
    rows, cols = _to_pixels(points, plot_extent(reference), size)
    rows, cols = np.clip(rows, 1, size - 2), np.clip(cols, 1, size - 2)
    for (r0, c0), (r1, c1) in zip(
        zip(rows[:-1], cols[:-1], strict=True), zip(rows[1:], cols[1:], strict=True), strict=True
    ):
        steps = max(abs(int(r1) - int(r0)), abs(int(c1) - int(c0)), 1)
        line_rows = np.rint(np.linspace(r0, r1, steps + 1)).astype(np.int64)
        line_cols = np.rint(np.linspace(c0, c1, steps + 1)).astype(np.int64)
        canvas[line_rows, line_cols] = SAMPLE_RGB
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            canvas[rows + dr, cols + dc] = SAMPLE_RGB
    return encode_png(canvas)
