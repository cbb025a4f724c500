"""What importing some modules loads, seen from a fresh interpreter (a test process has loaded much already)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable


def packages_loaded(modules: Iterable[str], of: Iterable[str]) -> list[str]:
    """Which of the top-level packages `of` are in sys.modules once `modules` are imported, sorted."""
    probe = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}: importlib.import_module(name)\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(of)!r}))))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded: list[str] = json.loads(result.stdout)
    return loaded
