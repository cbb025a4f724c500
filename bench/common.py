"""What every benchmark shares: the run context, result files, timing helpers and Markdown pieces."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DOCS_DIR = REPO / "docs" / "bench"
MARKDOWN = REPO / "BENCHMARKS.md"

Result = dict[str, Any]


@dataclass(frozen=True)
class Context:
    """How this invocation runs: the command that started it, where results go, and how big."""

    command: str
    results_dir: Path
    docs_dir: Path
    quick: bool
    threads: int

    def steps(self, full: int, quick: int) -> int:
        return quick if self.quick else full


@dataclass(frozen=True)
class Benchmark:
    """One named benchmark: `run` measures and returns JSON-able data; `render` turns it into Markdown."""

    name: str
    title: str
    summary: str
    run: Callable[[Context], Result]
    render: Callable[[Result], str]
    # How to run it, where that is not `python -m bench NAME` on this machine.
    how: str | None = None

    @property
    def command(self) -> str:
        return self.how or f"python -m bench {self.name}"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads (proc(5): fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "wgan"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' + uncommitted changes in wgan/' if dirty else ''}"


def environment() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
        "python": platform.python_version(),
        "engine_revision": git_revision(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def save_result(directory: Path, name: str, result: Result) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def load_result(directory: Path, name: str) -> Result | None:
    path = directory / f"{name}.json"
    if not path.is_file():
        return None
    loaded: Result = json.loads(path.read_text())
    return loaded


def progress(label: str, total: int, every: int, sink: Callable[[Any], None]) -> Callable[[Any], None]:
    """An on_metrics hook that passes each point to `sink` and prints a progress line every `every` steps."""
    start = time.perf_counter()

    def on_metrics(point: Any) -> None:
        sink(point)
        if point.step % every == 0 or point.step == total:
            elapsed = time.perf_counter() - start
            print(
                f"  {label}: step {point.step}/{total}, {point.step / elapsed:.1f} steps/s", file=sys.stderr, flush=True
            )

    return on_metrics


# --- timing ---------------------------------------------------------------------------------


def interleaved(trials: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Run each trial once per round, in the same order every round (A B A B ...); each returns a rate."""
    rates: dict[str, list[float]] = {name: [] for name in trials}
    for _ in range(rounds):
        for name, trial in trials.items():
            rates[name].append(trial())
    return rates


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def paired_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> list[float]:
    """Ratio of each round's rates: neighbours in time see the same machine load."""
    return [a / b for a, b in zip(numerator, denominator, strict=True)]


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.start


# --- Markdown -------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}"


def verdict(passed: bool) -> str:
    return "**pass**" if passed else "**FAIL**"


def relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)
