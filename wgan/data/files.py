"""Reading user data (an .npz with an array `x`, or a folder or .zip of PNG/JPEG) into one checked array."""

from __future__ import annotations

import io
import math
import posixpath
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# How Pillow opens 16-bit greyscale PNGs.
SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L")


class DataError(ValueError):
    """User data that cannot be used; the message names the problem for the person who sent it."""


@dataclass(frozen=True)
class ReadLimits:
    """Bounds that keep one file from exhausting the machine."""

    max_examples: int = 100_000
    max_image_side: int = 1024
    max_expanded_bytes: int = 512 * 1024 * 1024
    max_members: int = 100_000


def read_data(path: Path, limits: ReadLimits = ReadLimits()) -> np.ndarray:
    """Read a data file or folder into its canonical array.

    Images come back as uint8 N×C×H×W (C 1 or 3) or float32 N×C×H×W in [−1, 1];
    points as float32 N×D. Raises DataError naming the problem.
    """
    if path.is_dir():
        return _stack_images(_folder_images(path, limits), limits)
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return read_npz(path, limits)
    if suffix == ".zip":
        return read_zip(path, limits)
    raise DataError(
        f"unsupported file type {suffix or '(none)'!r}: send an .npz with an array 'x' or a .zip of PNG/JPEG"
    )


def read_npz(path: Path | IO[bytes], limits: ReadLimits = ReadLimits()) -> np.ndarray:
    """The array `x` of an .npz, its size checked from the .npy header before a byte of it is read."""
    # np.load would read a bare .npy as an array and try anything else as a pickle: open the zip ourselves.
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError("not a readable .npz file: it is not a zip archive (save it with numpy.savez)") from exc
    with archive:
        members = _checked_members(archive, limits, ".npz")
        names = [m.filename for m in members]
        if NPZ_MEMBER not in names:
            held = [
                name.removesuffix(".npy") if name.endswith(".npy") else f"{name} (not an .npy array)" for name in names
            ]
            raise DataError(f"the .npz holds no array named 'x' (it has: {', '.join(held) or 'nothing'})")
        try:
            with archive.open(NPZ_MEMBER) as member:
                shape, dtype = _npy_header(member)
                if dtype.hasobject:
                    raise DataError("'x' is an object array, which cannot be read without unpickling (refused)")
                if shape[:1] and shape[0] > limits.max_examples:
                    raise DataError(f"'x' holds {shape[0]} examples; the limit is {limits.max_examples}")
                size = math.prod(shape) * dtype.itemsize
                if size > limits.max_expanded_bytes:
                    raise DataError(f"'x' is {size} bytes unpacked; the limit is {limits.max_expanded_bytes}")
            with archive.open(NPZ_MEMBER) as member:
                x = np.lib.format.read_array(member, allow_pickle=False)
        except DataError:
            raise
        except ValueError as exc:
            raise DataError(f"'x' cannot be read (damaged, or it needs unpickling, which is refused): {exc}") from exc
        except ZIP_READ_ERRORS as exc:
            raise DataError(f"'x' cannot be read from the .npz: {exc}") from exc
    return canonical_array(x, limits)


NPZ_MEMBER = "x.npy"
# What reading a damaged or unusual member raises: a bad CRC (BadZipFile), a password (RuntimeError), a
# compression method zipfile lacks (NotImplementedError), a truncated stream (EOFError, zlib.error).
ZIP_READ_ERRORS = (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, OSError, zlib.error)
READABLE_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
ENCRYPTED = 0x1  # bit 0 of a zip member's general-purpose flags


def _npy_header(member: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    try:
        version = np.lib.format.read_magic(member)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = reader(member)
    except ValueError as exc:
        raise DataError(f"'x' is not an .npy array: {exc}") from exc
    return tuple(int(n) for n in shape), dtype


def _checked_members(archive: zipfile.ZipFile, limits: ReadLimits, kind: str) -> list[zipfile.ZipInfo]:
    """The archive's files, refused before any is read when there are too many, they would expand past
    the limit, one is encrypted or packed in a way zipfile cannot read, or one points outside it."""
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) > limits.max_members:
        raise DataError(f"the {kind} holds {len(members)} files; the limit is {limits.max_members}")
    expanded = sum(m.file_size for m in members)
    if expanded > limits.max_expanded_bytes:
        raise DataError(
            f"the {kind} expands to {expanded} bytes; the limit is {limits.max_expanded_bytes} (a zip bomb?)"
        )
    for member in members:
        _check_member_name(member.filename)
        if member.flag_bits & ENCRYPTED:
            raise DataError(f"{member.filename!r} in the {kind} is encrypted; send it without a password")
        if member.compress_type not in READABLE_METHODS:
            raise DataError(
                f"{member.filename!r} in the {kind} is packed with zip method {member.compress_type}; "
                "use stored or deflate (what numpy.savez and every zip tool write by default)"
            )
    return members


def canonical_array(x: np.ndarray, limits: ReadLimits = ReadLimits()) -> np.ndarray:
    """Check an array of examples and bring it to the canonical layout and range."""
    if x.dtype == object or x.dtype.kind not in "uif":
        raise DataError(f"'x' has dtype {x.dtype}; use uint8 or a float type")
    if x.ndim < 2 or x.shape[0] == 0:
        raise DataError(f"'x' must hold at least one example along its first axis; its shape is {x.shape}")
    if x.shape[0] > limits.max_examples:
        raise DataError(f"'x' holds {x.shape[0]} examples; the limit is {limits.max_examples}")
    if x.ndim == 2:
        return _points(x)
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        if x.shape[1] not in (1, 3) and x.shape[3] in (1, 3):
            x = np.transpose(x, (0, 3, 1, 2))
        elif x.shape[1] not in (1, 3):
            raise DataError(f"images must be N×C×H×W or N×H×W×C with 1 or 3 channels; the shape is {x.shape}")
    else:
        raise DataError(f"'x' must be N×D points or N×(C×)H×W images; its shape is {x.shape}")
    if min(x.shape[2], x.shape[3]) == 0:
        raise DataError(f"images must be at least 1×1 pixel; the shape is {x.shape}")
    side = max(x.shape[2], x.shape[3])
    if side > limits.max_image_side:
        raise DataError(f"images are {x.shape[2]}×{x.shape[3]}; the largest side allowed is {limits.max_image_side}")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if x.dtype.kind in "ui":
        raise DataError(f"integer images must be uint8, not {x.dtype}")
    return _float_images(x)


def _points(x: np.ndarray) -> np.ndarray:
    if x.shape[1] != 2:
        raise DataError(f"points must be N×2 (the service trains 2-D point sets); 'x' is {x.shape}")
    if x.dtype.kind != "f":
        x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise DataError("'x' contains NaN or infinite values")
    return np.ascontiguousarray(x, dtype=np.float32)


def _float_images(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise DataError("'x' contains NaN or infinite values")
    low, high = float(x.min()), float(x.max())
    if low >= 0.0 and high <= 1.0:
        return np.ascontiguousarray(x * 2.0 - 1.0)
    if low >= -1.0 and high <= 1.0:
        return np.ascontiguousarray(x)
    raise DataError(f"float images must lie in [0, 1] or [-1, 1]; these span [{low:g}, {high:g}]")


def read_zip(path: Path | IO[bytes], limits: ReadLimits = ReadLimits()) -> np.ndarray:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"not a readable .zip file: {exc}") from exc
    with archive:
        members = _checked_members(archive, limits, ".zip")
        images = [m for m in members if not _is_metadata(m.filename)]
        return _stack_images(_zip_images(archive, images, limits), limits)


def _check_member_name(name: str) -> None:
    normal = posixpath.normpath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or normal.startswith("../") or normal == ".." or ":" in name.split("/")[0]:
        raise DataError(f"the .zip member {name!r} points outside the archive")


def _is_metadata(name: str) -> bool:
    # Archives made on macOS carry resource forks and Finder files that are not images.
    base = posixpath.basename(name)
    return name.startswith("__MACOSX/") or base.startswith("._") or base == ".DS_Store"


def _zip_images(
    archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], limits: ReadLimits
) -> Iterator[tuple[str, np.ndarray]]:
    for member in members:
        if not member.filename.lower().endswith(IMAGE_SUFFIXES):
            raise DataError(f"{member.filename!r} is not a PNG or JPEG image")
        try:
            data = archive.read(member)
        except ZIP_READ_ERRORS as exc:
            raise DataError(f"{member.filename!r} cannot be read from the .zip: {exc}") from exc
        yield member.filename, _decode_image(member.filename, data, limits)


def _folder_images(folder: Path, limits: ReadLimits) -> Iterator[tuple[str, np.ndarray]]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not _is_metadata(p.name))
    if len(files) > limits.max_members:
        raise DataError(f"the folder holds {len(files)} files; the limit is {limits.max_members}")
    for path in files:
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(f"{path.name!r} is not a PNG or JPEG image")
        yield path.name, _decode_image(path.name, path.read_bytes(), limits)


def _decode_image(name: str, data: bytes, limits: ReadLimits) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ("PNG", "JPEG"):
                raise DataError(f"{name!r} is a {image.format} file, not a PNG or JPEG image")
            width, height = image.size
            if max(width, height) > limits.max_image_side:
                raise DataError(f"{name!r} is {width}×{height}; the largest side allowed is {limits.max_image_side}")
            image.load()
    except DataError:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise DataError(f"{name!r} is not a readable image: {exc}") from exc
    if image.mode in SIXTEEN_BIT_MODES:
        # convert("L") would clamp 16-bit values at 255 (a white image): scale 0..65535 to 0..255 instead.
        wide = np.asarray(image).astype(np.float64)
        return np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8)[None]
    if image.mode in ("1", "L", "F", "LA"):
        return np.asarray(image.convert("L"), dtype=np.uint8)[None]
    return np.transpose(np.asarray(image.convert("RGB"), dtype=np.uint8), (2, 0, 1))


def _stack_images(images: Iterator[tuple[str, np.ndarray]], limits: ReadLimits) -> np.ndarray:
    arrays: list[np.ndarray] = []
    first_name, first_size = "", (0, 0)
    total = 0
    for name, array in images:
        if not arrays:
            first_name, first_size = name, array.shape[1:]
        elif array.shape[1:] != first_size:
            raise DataError(
                f"mixed shapes: {name!r} is {array.shape[2]}×{array.shape[1]} but {first_name!r} is "
                f"{first_size[1]}×{first_size[0]}; all images must be the same size"
            )
        total += array.nbytes
        if total > limits.max_expanded_bytes:
            raise DataError(f"the images decode to more than {limits.max_expanded_bytes} bytes")
        if len(arrays) >= limits.max_examples:
            raise DataError(f"more than {limits.max_examples} images; that is the limit")
        arrays.append(array)
    if not arrays:
        raise DataError("no images found: the upload is empty")
    if any(a.shape[0] == 3 for a in arrays):
        arrays = [np.repeat(a, 3, axis=0) if a.shape[0] == 1 else a for a in arrays]
    return np.stack(arrays)
