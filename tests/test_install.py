"""The pinned set installs from the public package index alone, not only from this machine's wheel folders."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_INDEX = "https://pypi.org/simple"


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        if version:
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return pins


def test_every_pin_resolves_from_the_public_index_alone(tmp_path: Path) -> None:
    # Metadata only (pip fetches wheels' .metadata, not the multi-GB torch wheel). --isolated drops PIP_*
    # variables such as PIP_FIND_LINKS; PIP_CONFIG_FILE=/dev/null drops every pip.conf, the global one with
    # this machine's local indexes and caps included.
    report = tmp_path / "report.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--isolated", "--dry-run", "--ignore-installed", "--quiet"),
            *("--no-cache-dir", "--index-url", PUBLIC_INDEX, "--report", str(report)),
            *("-c", str(ROOT / "constraints.txt"), f"{ROOT}[dev]"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"the pinned set does not resolve from {PUBLIC_INDEX}:\n{done.stderr[-4000:]}"
    installed = {
        re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower(): item
        for item in json.loads(report.read_text())["install"]
    }
    pins = _pins()
    assert not [pin for pin in pins.values() if "+" in pin], "a local version label (like +cpu) is not on PyPI"
    for name, item in installed.items():
        url = item["download_info"]["url"]
        assert url.startswith(("https://files.pythonhosted.org/", "file://" + str(ROOT))), (name, url)
        if name in pins:
            assert item["metadata"]["version"] == pins[name], name
    # torch above all: its pin must be the public version, which the CPU and CUDA builds both satisfy.
    assert "torch" in pins and installed["torch"]["metadata"]["version"] == pins["torch"]
