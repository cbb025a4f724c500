"""Where checkpoints and uploaded data sets live, behind one small interface; paths come from ids only."""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from wgan.checkpoint import write_atomic


def checkpoint_prefix(job_id: str, attempt: int) -> str:
    """Each claim of a job writes under its own folder, so a stale trainer can never overwrite
    a file that the live one's checkpoint index points at."""
    return f"jobs/{job_id}/checkpoints/attempt-{attempt}"


def job_prefix(job_id: str) -> str:
    return f"jobs/{job_id}"


def dataset_key(dataset_id: str) -> str:
    return f"datasets/{dataset_id}.npz"


class ArtifactStore(ABC):
    @abstractmethod
    def local_dir(self, prefix: str) -> Path:
        """A local folder to write files that belong under `prefix`; `publish` makes them visible."""

    @abstractmethod
    def publish(self, prefix: str, names: list[str]) -> None:
        """Make files written in `local_dir(prefix)` durable under `prefix`, in the order given."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def fetch(self, key: str) -> Path:
        """A local path holding the artifact `key` (downloaded first where the store is remote)."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> None: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...


class LocalStore(ArtifactStore):
    """Artifacts on a local or shared (NFS, compose volume) file system."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"artifact key {key!r} leaves the store")
        return path

    def local_dir(self, prefix: str) -> Path:
        path = self._path(prefix)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def publish(self, prefix: str, names: list[str]) -> None:
        # Files written into local_dir are already in place (and written atomically).
        return None

    def put_bytes(self, key: str, data: bytes) -> None:
        write_atomic(self._path(key), data)

    def fetch(self, key: str) -> Path:
        path = self._path(key)
        if not path.exists():
            raise FileNotFoundError(f"artifact {key} is missing")
        return path

    def delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()


def open_store(url: str) -> ArtifactStore:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalStore(Path(url2pathname(parsed.path)))
    raise ValueError(f"unsupported artifact URL {url!r}: use file:///path")
