"""README.md stays true: its commands exist and its configuration table lists every setting."""

from __future__ import annotations

import re
from pathlib import Path

from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_configuration_table() -> None:
    documented = set(re.findall(r"^\| `(WGAN_[A-Z0-9_]+)` \|", README, flags=re.M))
    assert documented == {f"WGAN_{name.upper()}" for name in Settings.model_fields}


def test_the_make_targets_the_readme_gives_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in set(re.findall(r"^make (\w+)", README, flags=re.M)) | {"run", "test", "lint", "bench"}:
        assert re.search(rf"^{target}:", makefile, flags=re.M), target


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_images_the_readme_shows_exist() -> None:
    for path in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README):
        assert (ROOT / path).exists(), path
