"""Experiments as data: a grid (or list) of overrides expanded into run specs, and the runs' results
ranked and grouped by grid point with the spread over seeds. No I/O here: the lifecycle stores what
this computes, and the API shows it."""

from __future__ import annotations

import copy
import itertools
import math
import statistics
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from service.errors import InvalidInput
from service.models import Job
from wgan.config import TrainSpec

BODY = "body"
SEED = "seed"


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def path_error(path: str) -> str | None:
    """Why `path` ("loss.kind", "seed") names no field of a job spec, or None when it does."""
    model: type[BaseModel] = TrainSpec
    parts = path.split(".")
    for depth, part in enumerate(parts):
        field = model.model_fields.get(part)
        where = ".".join(parts[:depth]) or "the spec"
        if field is None:
            return f"{where} has no field {part!r} (it has: {', '.join(model.model_fields)})"
        nested = _nested_model(field.annotation)
        if depth < len(parts) - 1:
            if nested is None:
                return f"{'.'.join(parts[: depth + 1])} is a value, not a group of fields"
            model = nested
    return None


def apply(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The base spec with each dotted path set to its value."""
    spec = copy.deepcopy(base)
    for path, value in overrides.items():
        node = spec
        *parents, leaf = path.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = copy.deepcopy(value)
    return spec


def expand(grid: dict[str, list[Any]] | None, runs: list[dict[str, Any]] | None, max_runs: int) -> list[dict[str, Any]]:
    """Each run's overrides: the product of the grid's axes (in the order given, the last varying
    fastest), or the runs as listed. Raises InvalidInput naming the axis or run at fault."""
    if (grid is None) == (runs is None):
        raise InvalidInput("give a grid or a list of runs", [((BODY,), "give exactly one of 'grid' and 'runs'")])
    if grid is not None:
        if not grid:
            raise InvalidInput("the grid is empty", [((BODY, "grid"), "give at least one axis")])
        count = math.prod(len(values) for values in grid.values())
        for path, values in grid.items():
            problem = path_error(path) or (None if values else "give at least one value")
            if problem is not None:
                raise InvalidInput(f"bad grid axis {path!r}", [((BODY, "grid", path), problem)])
        if count > max_runs:
            raise InvalidInput("too many runs", [((BODY, "grid"), f"the grid makes {count} runs; at most {max_runs}")])
        return [dict(zip(grid, point, strict=True)) for point in itertools.product(*grid.values())]
    assert runs is not None
    if not runs:
        raise InvalidInput("no runs", [((BODY, "runs"), "give at least one run")])
    if len(runs) > max_runs:
        raise InvalidInput("too many runs", [((BODY, "runs"), f"{len(runs)} runs; at most {max_runs}")])
    for index, overrides in enumerate(runs):
        for path in overrides:
            problem = path_error(path)
            if problem is not None:
                raise InvalidInput(f"bad field in run {index}", [((BODY, "runs", index, path), problem)])
    return [dict(overrides) for overrides in runs]


def status_counts(runs: Sequence[Job]) -> dict[str, int]:
    """Runs by the status the API shows."""
    counts: dict[str, int] = {}
    for job in runs:
        status = job.status.status.value
        counts[status] = counts.get(status, 0) + 1
    return counts


def label(overrides: dict[str, Any]) -> str:
    """A run's overrides as a short name: "loss.kind=vanilla, seed=1"."""
    return ", ".join(f"{path}={value}" for path, value in overrides.items()) or "base"


def grid_point(overrides: dict[str, Any]) -> dict[str, Any]:
    """The overrides that define what is compared: all but the seed, which only repeats it."""
    return {path: value for path, value in overrides.items() if path != SEED}


@dataclass(frozen=True)
class RunResult:
    job: Job
    final: float | None  # the primary measure at the newest checkpoint (lower is better)
    best: float | None  # and at the best one


def run_result(job: Job) -> RunResult:
    summary = job.summary or {}
    newest, best = summary.get("newest"), summary.get("best")
    return RunResult(job, newest["value"] if newest else None, best["value"] if best else None)


SORT_KEYS = ("best", "final", "status", "created")


def ranked(results: Sequence[RunResult], sort: str) -> list[RunResult]:
    """Sorted by `sort` ("best", "-final", …); runs without the value go last either way."""
    descending = sort.startswith("-")
    key = sort.removeprefix("-")
    if key not in SORT_KEYS:
        raise InvalidInput("bad sort", [(("query", "sort"), f"one of {', '.join(SORT_KEYS)}, '-' first to reverse")])
    if key == "status":
        return sorted(results, key=lambda r: r.job.status.status.value, reverse=descending)
    if key == "created":
        return sorted(results, key=lambda r: r.job.created_at, reverse=descending)
    present = [r for r in results if getattr(r, key) is not None]
    missing = [r for r in results if getattr(r, key) is None]
    return sorted(present, key=lambda r: getattr(r, key), reverse=descending) + missing


@dataclass(frozen=True)
class Spread:
    mean: float | None
    sd: float | None  # sample standard deviation; None below two values
    n: int


def spread(values: Sequence[float | None]) -> Spread:
    known = [v for v in values if v is not None]
    if not known:
        return Spread(None, None, 0)
    return Spread(statistics.fmean(known), statistics.stdev(known) if len(known) > 1 else None, len(known))


@dataclass(frozen=True)
class Group:
    point: dict[str, Any]
    runs: list[RunResult]
    final: Spread
    best: Spread


def groups(results: Sequence[RunResult]) -> list[Group]:
    """Runs that differ only in seed, together, in the order their grid points first appear."""
    by_point: dict[str, list[RunResult]] = {}
    points: dict[str, dict[str, Any]] = {}
    for result in results:
        point = grid_point(result.job.overrides or {})
        key = label(point)
        by_point.setdefault(key, []).append(result)
        points[key] = point
    return [
        Group(points[key], members, spread([m.final for m in members]), spread([m.best for m in members]))
        for key, members in by_point.items()
    ]
