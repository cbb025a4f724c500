"""README.md's curl walk-through, run as written against `wgan-service dev` (what `make run` starts).

Only the address and the two trained jobs' step counts change (jobs of the README's length belong in
the benchmarks); everything else is the README's text, so the walk-through cannot rot unnoticed.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.support.processes import ROOT, ServiceProcess, free_port
from tests.support.stack import embedded_env

README = (ROOT / "README.md").read_text()
FIRST_JOB = """'{"dataset": {"name": "8gaussians"}}'"""
SHORT_FIRST_JOB = """'{"dataset": {"name": "8gaussians"}, "steps": 150, "checkpoint_every": 50}'"""
DIGITS_STEPS, SHORT_DIGITS_STEPS = '"steps": 1000}', '"steps": 20}'


def walkthrough() -> str:
    section = README.split("## A walk through with curl", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.S)
    assert block, "the walk-through has a sh block"
    return block.group(1)


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc: Linux, as the tests' machine)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_the_readme_walkthrough_succeeds_as_written(tmp_path: Path) -> None:
    port = free_port()
    script = walkthrough()
    assert script.count(FIRST_JOB) == 1 and script.count(DIGITS_STEPS) == 1
    assert script.count("http://127.0.0.1:8000") == 1
    script = script.replace(FIRST_JOB, SHORT_FIRST_JOB).replace(DIGITS_STEPS, SHORT_DIGITS_STEPS)
    script = script.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}")
    # The README runs from the repository root with make run's virtualenv; here the tmp folder is the root.
    script = script.replace(".venv/bin/python scripts/", f"{sys.executable} {ROOT}/scripts/")

    env = {**embedded_env(tmp_path / "var"), "WGAN_PORT": str(port)}
    env.pop("WGAN_DATA_DIR")  # as make run: the default, var/ under the working directory
    dev = ServiceProcess(
        "walkthrough-dev", [sys.executable, "-m", "wgan_service", "dev"], env, tmp_path / "logs", cwd=tmp_path
    ).start()
    try:
        dev.wait_for_log("wgan-service is ready", timeout=120)
        # The key is the last thing on screen, after the worker's and the API's start-up lines.
        tail = dev.log().rstrip().splitlines()[-3:]
        assert any("API key    wgan_" in line for line in tail), tail
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env={key: value for key, value in env.items() if not key.startswith("WGAN_")},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}\n{dev.log()[-3000:]}"
    finally:
        children = _children(dev.pid)
        dev.stop()
    # Stopped as make run is stopped: its worker and webhook sender end with it, none left running orphaned.
    assert len(children) == 2, children
    assert dev.proc is not None and dev.proc.returncode != -9, "dev had to be killed"
    assert [pid for pid in children if Path(f"/proc/{pid}").exists()] == []
    out = done.stdout
    assert re.search(r"HTTP/1.1 202 Accepted\r?\n(?:.*\r?\n)*?location: /api/v1/jobs/[0-9a-f-]{36}", out, re.I)
    assert re.search(r"HTTP/1.1 201 Created\r?\n(?:.*\r?\n)*?location: /api/v1/datasets/", out, re.I)
    assert '"status":"succeeded"' in out  # the first job's event stream ran to its end
    assert '"estimate":{"seconds_per_step":' in out  # the preview
    assert '"cancel_requested":true' in out
    assert re.search(r'"items":\[\{"id":"[0-9a-f-]{36}","step":\d+', out)  # the cancelled job kept a checkpoint
    assert "\n204\n" in out
    for name in ("8gaussians.png", "digits.png"):
        Image.open(io.BytesIO((tmp_path / "scratch" / name).read_bytes())).verify()
    job = (tmp_path / "scratch" / "images.json").read_text()
    assert '"name":"digits-wgan-gp"' in job and '"fit":"resize"' in job and '"image_size":16' in job
