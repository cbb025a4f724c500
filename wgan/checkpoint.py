"""Checkpoints as safetensors plus a JSON manifest: atomic writes, checksums, nothing unpickled."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
from pydantic import ValidationError
from torch import Tensor

from wgan.config import TrainSpec

FORMAT = "wgan-checkpoint"
VERSION = 1
_STEM = re.compile(r"^step-(\d{8,})$")

# The parts of a checkpoint, by tensor-name prefix: sampling needs only the generator.
GENERATOR = "generator."
GENERATOR_EMA = "generator_ema."  # the moving average of the generator's weights, when the spec keeps one
CRITIC = "critic."
OPT_CRITIC = "opt_critic."
OPT_GENERATOR = "opt_generator."
RNG = "rng."


class CheckpointError(ValueError):
    """A file that is not a complete, intact checkpoint of ours, or one that does not fit the job."""


@dataclass
class Checkpoint:
    step: int
    spec: TrainSpec
    tensors: dict[str, Tensor]
    extra: dict[str, Any] = field(default_factory=dict)

    def part(self, prefix: str) -> dict[str, Tensor]:
        return {k[len(prefix) :]: v for k, v in self.tensors.items() if k.startswith(prefix)}


def stem(step: int) -> str:
    return f"step-{step:08d}"


def manifest_path(directory: Path, step: int) -> Path:
    return directory / f"{stem(step)}.json"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file beside `path`, fsync it, then rename over `path`: all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


@dataclass(frozen=True)
class TensorFile:
    """A checkpoint's tensors as written, before a manifest vouches for them."""

    path: Path
    size: int
    sha256: str


def write_tensors(directory: Path, checkpoint: Checkpoint) -> TensorFile:
    """The first half of save_checkpoint: the tensors alone, which nothing reads until their manifest exists."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in checkpoint.tensors.items()}
    blob = safetensors.torch.save(tensors, metadata={"format": FORMAT, "version": str(VERSION)})
    path = directory / f"{stem(checkpoint.step)}.safetensors"
    write_atomic(path, blob)
    return TensorFile(path, len(blob), hashlib.sha256(blob).hexdigest())


def write_manifest(directory: Path, checkpoint: Checkpoint, tensors: TensorFile) -> Path:
    """The second half: the manifest that commits the checkpoint; returns its path."""
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "step": checkpoint.step,
        "tensors": tensors.path.name,
        "size": tensors.size,
        "sha256": tensors.sha256,
        "spec": checkpoint.spec.model_dump(mode="json"),
        "extra": checkpoint.extra,
    }
    path = manifest_path(directory, checkpoint.step)
    write_atomic(path, json.dumps(manifest, indent=1, sort_keys=True).encode())
    return path


def save_checkpoint(directory: Path, checkpoint: Checkpoint) -> Path:
    """Write the tensors, then the manifest that vouches for them; returns the manifest's path.

    The manifest is the commit point: a crash before it leaves no manifest, so nothing
    ever reads a half-written checkpoint.
    """
    return write_manifest(directory, checkpoint, write_tensors(directory, checkpoint))


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise CheckpointError(f"no checkpoint at {path}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path.name} is not a checkpoint manifest: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is not a {FORMAT} manifest")
    if manifest.get("version") != VERSION:
        raise CheckpointError(f"{path.name} has format version {manifest.get('version')}; this code reads {VERSION}")
    missing = {"step", "tensors", "size", "sha256", "spec"} - manifest.keys()
    if missing:
        raise CheckpointError(f"{path.name} lacks {', '.join(sorted(missing))}")
    for key, kind in (("step", int), ("size", int), ("sha256", str), ("spec", dict)):
        # bool is an int to Python, never a step or a size.
        if not isinstance(manifest[key], kind) or isinstance(manifest[key], bool):
            raise CheckpointError(f"{path.name} has a malformed {key!r}: {manifest[key]!r}")
    if not isinstance(manifest.get("extra", {}), dict):
        raise CheckpointError(f"{path.name} has a malformed 'extra'")
    return manifest


class VerifiedFiles:
    """Tensor files already checked against their manifest's SHA-256, known by path, size, modification
    time and digest: one unchanged since is not read and hashed again (a sampler reloading a generator it
    evicted). Bounded, oldest forgotten first; safe to share between threads."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._seen: OrderedDict[tuple[str, int, int, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, key: tuple[str, int, int, str]) -> bool:
        with self._lock:
            return key in self._seen

    def add(self, key: tuple[str, int, int, str]) -> None:
        with self._lock:
            self._seen[key] = None
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)


def _verified_tensor_file(path: Path, manifest: dict[str, Any], verified: VerifiedFiles | None = None) -> Path:
    name = manifest["tensors"]
    if not isinstance(name, str) or "/" in name or name.startswith("."):
        raise CheckpointError(f"{path.name} names an unexpected tensor file {name!r}")
    tensor_path = path.parent / name
    try:
        stat = tensor_path.stat()
        known = (str(tensor_path.resolve()), stat.st_size, stat.st_mtime_ns, manifest["sha256"])
        if verified is not None and known in verified:
            return tensor_path
        blob = tensor_path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"the tensors of {path.name} cannot be read: {exc}") from exc
    if len(blob) != manifest["size"] or hashlib.sha256(blob).hexdigest() != manifest["sha256"]:
        raise CheckpointError(f"{tensor_path.name} does not match its manifest's checksum: damaged or incomplete")
    if verified is not None:
        verified.add(known)
    return tensor_path


def load_checkpoint(
    path: Path, prefixes: Iterable[str] | None = None, verified: VerifiedFiles | None = None
) -> Checkpoint:
    """Load and verify a checkpoint from its manifest `path`; only tensors under `prefixes` if given.
    With `verified`, a tensor file it vouches for unchanged is not hashed again."""
    manifest = read_manifest(path)
    tensor_path = _verified_tensor_file(path, manifest, verified)
    wanted = tuple(prefixes) if prefixes is not None else None
    tensors: dict[str, Tensor] = {}
    try:
        with safetensors.safe_open(str(tensor_path), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                if wanted is None or key.startswith(wanted):
                    tensors[key] = handle.get_tensor(key)
    except (safetensors.SafetensorError, OSError) as exc:
        raise CheckpointError(f"{tensor_path.name} is not a safetensors file: {exc}") from exc
    try:
        spec = TrainSpec.model_validate(manifest["spec"])
    except ValidationError as exc:
        raise CheckpointError(f"{path.name} holds a spec this code cannot read: {exc}") from exc
    return Checkpoint(step=int(manifest["step"]), spec=spec, tensors=tensors, extra=manifest.get("extra") or {})


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """(step, manifest path) of every manifest in `directory`, oldest first. Not yet verified."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.glob("step-*.json"):
        match = _STEM.match(path.stem)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest checkpoint in `directory` that verifies; damaged ones are skipped."""
    for _, path in reversed(list_checkpoints(directory)):
        try:
            _verified_tensor_file(path, read_manifest(path))
        except CheckpointError:
            continue
        return path
    return None
