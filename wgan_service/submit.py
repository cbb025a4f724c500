"""`wgan-service submit SPEC [--follow]`: submit a job through the Python client, and with --follow show
its training as a progress bar driven by the job's event stream."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from wgan_client import CheckpointEvent, Client, Job, MetricsEvent, ProblemError, StatusEvent, WganError


def read_spec(source: str, stdin: TextIO) -> dict[str, Any]:
    """The spec from a JSON file, or from standard input for '-'."""
    text = stdin.read() if source == "-" else Path(source).read_text()
    spec = json.loads(text)
    if not isinstance(spec, dict):
        raise ValueError("a job spec is a JSON object")
    return spec


def dev_key(data_dir: Path, file_name: str) -> str | None:
    """The embedded default's key, which `wgan-service dev` keeps under its data directory."""
    path = data_dir / file_name
    return path.read_text().strip() if path.is_file() else None


def follow(client: Client, job: Job) -> Job:
    """Show the job's progress until it ends, and return it as it ended."""
    with tqdm(total=job.progress.total_steps, unit="step", desc=job.status, file=sys.stderr, dynamic_ncols=True) as bar:
        for event in client.follow(job):
            if isinstance(event, MetricsEvent) and event.data:
                point = event.data[-1]
                bar.update(point.step - bar.n)
                bar.set_postfix(w_estimate=f"{point.wasserstein_estimate:.4g}", refresh=False)
            elif isinstance(event, CheckpointEvent) and event.data.measures:
                found = event.data.measures
                if "exact_w1" in found:
                    bar.set_postfix(w1=f"{found['exact_w1']:.4g}", refresh=False)
            elif isinstance(event, StatusEvent):
                bar.set_description(event.data.status)
    return client.get(job)


def describe(job: Job) -> list[str]:
    """How the job ended, in a few lines for a person."""
    lines = [f"job {job.id} {job.status}: step {job.progress.step}/{job.progress.total_steps}"]
    if job.error is not None:
        lines.append(f"error: {job.error.type}: {job.error.message}")
    summary = job.summary
    if summary is not None:
        best = (
            f"best {summary.best.value:.4g} at step {summary.best.step}" if summary.best else "no evaluated checkpoint"
        )
        spearman = "n/a" if summary.spearman is None else f"{summary.spearman:.2f}"
        lines.append(
            f"summary: {summary.primary} {best}; {summary.checkpoints} checkpoints, {summary.evaluated} evaluated; "
            f"rank correlation of the critic's estimate with it {spearman}"
        )
    return lines


def run(spec_source: str, *, follow_job: bool, url: str, key: str | None) -> int:
    try:
        spec = read_spec(spec_source, sys.stdin)
    except (OSError, ValueError) as exc:
        print(f"wgan-service submit: cannot read the spec {spec_source}: {exc}", file=sys.stderr)
        return 2
    try:
        with Client(url, key) as client:
            job = client.submit(spec)
            if not follow_job:
                print(job.id)
                print(f"submitted job {job.id} ({job.status}); see {url}{job.links.self}", file=sys.stderr)
                return 0
            print(f"submitted job {job.id}", file=sys.stderr)
            ended = follow(client, job)
    except ProblemError as exc:
        print(f"wgan-service submit: {exc}", file=sys.stderr)
        for error in exc.errors or []:
            print(f"  {'.'.join(str(part) for part in error.get('loc', []))}: {error.get('msg')}", file=sys.stderr)
        return 1
    except WganError as exc:
        print(f"wgan-service submit: {exc}", file=sys.stderr)
        return 1
    print("\n".join(describe(ended)))
    return 0 if ended.status == "succeeded" else 1


def default_url(host: str, port: int) -> str:
    return os.environ.get("WGAN_URL") or f"http://{host}:{port}"
