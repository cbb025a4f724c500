"""Where checkpoints and uploaded data sets live, behind one small interface; paths come from ids only."""

from __future__ import annotations

import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from service.settings import Settings
from wgan.checkpoint import read_manifest, write_atomic


def checkpoint_prefix(job_id: str, attempt: int) -> str:
    """Each claim of a job writes under its own folder, so a stale trainer can never overwrite
    a file that the live one's checkpoint index points at."""
    return f"jobs/{job_id}/checkpoints/attempt-{attempt}"


def job_prefix(job_id: str) -> str:
    return f"jobs/{job_id}"


def dataset_key(dataset_id: str) -> str:
    return f"datasets/{dataset_id}.npz"


def _checked(key: str) -> str:
    """Keys are made from ids; refuse anything that could climb out of the store."""
    if not key or any(part in ("..", ".", "") for part in key.split("/")) or "\\" in key:
        raise ValueError(f"bad artifact key {key!r}")
    return key


class ArtifactStore(ABC):
    def prepare(self) -> None:
        """Make the store ready to use (run once, by `wgan-service migrate`)."""
        return None

    def fetch_checkpoint(self, manifest_key: str) -> Path:
        """A local manifest path whose tensor file sits beside it, as wgan.checkpoint expects."""
        manifest = self.fetch(manifest_key)
        tensors = read_manifest(manifest)["tensors"]
        self.fetch(f"{manifest_key.rsplit('/', 1)[0]}/{tensors}")
        return manifest

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
        path = (self.root / _checked(key)).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"artifact key {key!r} leaves the store")
        return path

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

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


class S3Store(ArtifactStore):
    """Artifacts in an S3-compatible bucket, for workers and API processes on many hosts.

    Objects are immutable once written (checkpoint files are per attempt, uploads per id), so a
    downloaded copy in the local cache never goes stale. Credentials come from the environment
    (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), as boto3 reads them.
    """

    def __init__(self, bucket: str, prefix: str, cache_dir: Path, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.cache = cache_dir
        self.client = client

    def prepare(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            if not _missing(exc):
                raise
            self.client.create_bucket(Bucket=self.bucket)

    def _key(self, key: str) -> str:
        key = _checked(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def local_dir(self, prefix: str) -> Path:
        path = self.cache / _checked(prefix)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def publish(self, prefix: str, names: list[str]) -> None:
        # In order: the manifest, named last, must not be visible before the tensors it vouches for.
        for name in names:
            self.client.upload_file(str(self.local_dir(prefix) / name), self.bucket, self._key(f"{prefix}/{name}"))

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def fetch(self, key: str) -> Path:
        local = self.cache / _checked(key)
        if local.exists():
            return local
        local.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{local.name}.", suffix=".download", dir=local.parent)
        os.close(fd)
        try:
            self.client.download_file(self.bucket, self._key(key), tmp)
            os.replace(tmp, local)
        except Exception as exc:
            Path(tmp).unlink(missing_ok=True)
            if _missing(exc):
                raise FileNotFoundError(f"artifact {key} is missing") from exc
            raise
        return local

    def delete_prefix(self, prefix: str) -> None:
        full = self._key(prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            objects = [
                {"Key": item["Key"]}
                for item in page.get("Contents", [])
                if item["Key"] == full or item["Key"].startswith(full + "/")
            ]
            if objects:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})
        local = self.cache / _checked(prefix)
        if local.is_dir():
            shutil.rmtree(local, ignore_errors=True)
        else:
            local.unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if _missing(exc):
                return False
            raise
        return True


def _missing(exc: Exception) -> bool:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code")) in {"404", "NoSuchKey", "NotFound"}


def open_store(url: str, cache_dir: Path | None = None, s3_endpoint_url: str = "") -> ArtifactStore:
    """`file:///path` or `s3://bucket/prefix` (S3 needs a local `cache_dir` for what it downloads)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalStore(Path(url2pathname(parsed.path)))
    if parsed.scheme == "s3":
        import boto3

        if cache_dir is None:
            raise ValueError("an s3:// artifact store needs a local cache directory")
        client = boto3.client("s3", endpoint_url=s3_endpoint_url or None)
        return S3Store(parsed.netloc, parsed.path, cache_dir, client)
    raise ValueError(f"unsupported artifact URL {url!r}: use file:///path or s3://bucket/prefix")


def store_for(settings: Settings) -> ArtifactStore:
    """The artifact store the settings name (one per process is enough: stores hold no state)."""
    cache = settings.artifact_cache_dir or settings.data_dir / "artifact-cache"
    return open_store(settings.artifact_url, cache, settings.s3_endpoint_url)
