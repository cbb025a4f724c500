"""A job's quality over its checkpoints: its primary measure at the newest and the best checkpoint, and
how closely the critic's Wasserstein estimate tracks it (the WGAN paper's claim, checked per job)."""

from __future__ import annotations

import math
from typing import Any

from wgan.config import TrainSpec

# Lower is better for both. Digits and MNIST are judged by a classifier's Fréchet distance (wgan.judge);
# everything else, uploads included, by the exact W1 in data space.
JUDGED_DATASETS = frozenset({"digits", "mnist"})
MIN_POINTS_FOR_SPEARMAN = 3


def primary_measure(spec: TrainSpec) -> str:
    return "frechet" if spec.dataset.name in JUDGED_DATASETS else "exact_w1"


def add_checkpoint(
    summary: dict[str, Any] | None,
    primary: str,
    *,
    step: int,
    checkpoint_id: str,
    estimate: float | None,
    measures: dict[str, float] | None,
) -> dict[str, Any]:
    """The summary with this checkpoint in it (a step checkpointed again replaces its earlier entry)."""
    series = [entry for entry in (summary or {}).get("series", []) if entry[0] != step]
    value = (measures or {}).get(primary)
    series.append([step, checkpoint_id, estimate, value])
    series.sort(key=lambda entry: entry[0])
    return {"primary": primary, "series": series, **_derived(series)}


def _derived(series: list[list[Any]]) -> dict[str, Any]:
    measured = [entry for entry in series if _number(entry[3])]
    newest = measured[-1] if measured else None
    best = min(measured, key=lambda entry: entry[3]) if measured else None
    paired = [(entry[2], entry[3]) for entry in measured if _number(entry[2])]
    return {
        "checkpoints": len(series),
        "evaluated": len(measured),
        "newest": _at(newest),
        "best": _at(best),
        "spearman": _spearman(paired),
    }


def _at(entry: list[Any] | None) -> dict[str, Any] | None:
    return None if entry is None else {"step": entry[0], "checkpoint_id": entry[1], "value": entry[3]}


def _spearman(pairs: list[tuple[float, float]]) -> float | None:
    """Rank correlation of the critic's estimate with the measure; None while undefined (few or constant)."""
    if len(pairs) < MIN_POINTS_FOR_SPEARMAN:
        return None
    estimates, values = zip(*pairs, strict=True)
    if len(set(estimates)) < 2 or len(set(values)) < 2:
        return None
    # Imported here: scipy.stats takes most of a second to import, which every API process paid at start
    # for a figure only a job's summary needs.
    from scipy.stats import spearmanr

    rho = float(spearmanr(estimates, values).statistic)
    return rho if math.isfinite(rho) else None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def public(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the API shows: everything but the series it is derived from."""
    if summary is None:
        return None
    return {key: value for key, value in summary.items() if key != "series"}
