"""docker-compose.yml validates, and it and the Dockerfile start the service the way the tests do."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from wgan_service.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"


def compose_config(*args: str, password: str | None = "secret") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"}
    if password is not None:
        env["POSTGRES_PASSWORD"] = password
    return subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), *args, "config"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def config() -> dict:
    assert shutil.which("docker-compose"), "make test installs Debian's docker-compose"
    done = compose_config("--profile", "gpu")
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_compose_file_validates_and_has_every_service(config: dict) -> None:
    assert {"postgres", "redis", "migrate", "api", "worker", "webhooks", "worker-gpu"} <= config["services"].keys()
    assert config["services"]["postgres"]["healthcheck"]["test"]
    assert "pgdata" in config["volumes"]


def test_compose_refuses_to_run_without_a_database_password() -> None:
    done = compose_config(password=None)
    assert done.returncode != 0
    assert "POSTGRES_PASSWORD" in done.stderr


def test_gpu_worker_is_a_profile_with_an_nvidia_reservation(config: dict) -> None:
    gpu = config["services"]["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert "gpu" in gpu["command"][-1]
    assert gpu["build"]["args"]["TORCH_INDEX"].endswith("cu128")


def test_services_run_real_cli_commands_against_the_shared_stores(config: dict) -> None:
    parser = build_parser()
    for name in ("migrate", "api", "worker", "webhooks", "worker-gpu"):
        service = config["services"][name]
        command = service["command"]
        assert command[0] == "wgan-service"
        parser.parse_args(command[1:])  # exits (fails the test) on a command the CLI does not have
        env = service["environment"]
        assert env["WGAN_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["WGAN_BROKER_URL"].startswith("redis://")
        assert env["WGAN_ARTIFACT_URL"] == "file:///data/artifacts"
        assert "/data" in {_mount_target(volume) for volume in service["volumes"]}
    assert config["services"]["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def _mount_target(volume: str | dict) -> str:
    # docker-compose 1.x prints "source:target:mode"; the compose spec prints a mapping.
    return volume.split(":")[1] if isinstance(volume, str) else volume["target"]


def test_dockerfile_is_multi_stage_non_root_with_a_torch_build_argument() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, flags=re.M)) >= 2
    assert re.search(r"^USER (?!root)\w+", text, flags=re.M)
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in text
    assert "torch==2.13.0" in text
    for path in re.findall(r"^COPY (?!--)(\S+)", text, flags=re.M):
        if path not in {"pyproject.toml"}:
            assert (ROOT / path).exists(), f"the Dockerfile copies {path}, which does not exist"
    assert 'CMD ["wgan-service", "serve"]' in text


def test_the_s3_override_points_every_service_at_seaweedfs() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"POSTGRES_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY"}}
    files = ["-f", str(COMPOSE), "-f", str(ROOT / "docker-compose.s3.yml")]
    missing = subprocess.run(
        ["docker-compose", *files, "config"],
        env={**env, "POSTGRES_PASSWORD": "p"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode != 0
    assert "S3_ACCESS_KEY" in missing.stderr
    done = subprocess.run(
        ["docker-compose", *files, "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**env, "POSTGRES_PASSWORD": "p", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert "seaweedfs" in services
    for name in ("migrate", "api", "worker", "worker-gpu"):
        environment = services[name]["environment"]
        assert environment["WGAN_ARTIFACT_URL"].startswith("s3://")
        assert environment["WGAN_S3_ENDPOINT_URL"] == "http://seaweedfs:8333"
        assert environment["WGAN_DATABASE_URL"].startswith("postgresql+psycopg://")  # merged, not replaced
        assert services[name]["depends_on"]["seaweedfs"]["condition"] == "service_healthy"


def _dockerfile_healthcheck() -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    found = re.search(r"^HEALTHCHECK .*CMD (\[.*\])$", text, flags=re.M)
    assert found, "the image has a health check for its default command"
    return yaml.safe_load(found.group(1))


def test_each_container_has_a_health_check_that_fits_what_it_runs(config: dict) -> None:
    image_check = _dockerfile_healthcheck()
    assert image_check == ["wgan-service", "healthcheck", "api"]
    parser = build_parser()
    services = config["services"]
    assert "healthcheck" not in services["api"]  # the image's own check: the API's /healthz
    for name in ("worker", "webhooks", "worker-gpu"):
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD" and test[1:] == ["wgan-service", "healthcheck", "worker"], name
    assert services["migrate"]["healthcheck"]["test"] == ["NONE"]  # a one-shot job has no health to check
    for command in (image_check, services["worker"]["healthcheck"]["test"][1:]):
        parser.parse_args(command[1:])


def test_every_variable_the_deploy_files_set_is_a_setting_the_service_reads(config: dict) -> None:
    from service.settings import Settings

    known = {f"WGAN_{name.upper()}" for name in Settings.model_fields}
    dockerfile = (ROOT / "Dockerfile").read_text()
    set_in_image = set(re.findall(r"\b(WGAN_[A-Z0-9_]+)=", dockerfile))
    assert {"WGAN_DATA_DIR", "WGAN_WORKER_ALIVE_FILE"} <= set_in_image
    set_in_compose = {key for service in config["services"].values() for key in service.get("environment", {})}
    unread = {name for name in set_in_image | set_in_compose if name.startswith("WGAN_")} - known
    assert not unread, f"set but read by no setting: {sorted(unread)}"
