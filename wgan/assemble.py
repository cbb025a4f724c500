"""Putting a run together from a spec: resolve it against its data, open the data, build the trainer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wgan.classifier import judge_for
from wgan.config import SpecError, TrainSpec, resolve
from wgan.data.files import DataError
from wgan.data.sources import BUILTIN, DatasetInfo, DataSource, info_for_array, open_builtin, source_from_array
from wgan.devices import pick_device
from wgan.evaluation import EVAL_SEED, Evaluator, default_examples
from wgan.trainer import Trainer


def dataset_info(spec: TrainSpec, uploaded: np.ndarray | None = None) -> DatasetInfo:
    """What the spec's data set is: a built-in one by name, or the given uploaded array."""
    if spec.dataset.name is not None:
        info = BUILTIN.get(spec.dataset.name)
        if info is None:
            raise SpecError(
                ("dataset", "name"), f"no built-in data set {spec.dataset.name!r}; choose one of {', '.join(BUILTIN)}"
            )
        return info
    if uploaded is None:
        raise SpecError(("dataset", "id"), "this uploaded data set is not available")
    return info_for_array(spec.dataset.id or "upload", uploaded)


def resolve_for_data(spec: TrainSpec, info: DatasetInfo) -> TrainSpec:
    return resolve(spec, info.kind, info.shape)


def open_data(spec: TrainSpec, device: torch.device, uploaded: np.ndarray | None = None) -> DataSource:
    """The data source for a resolved spec, on `device`."""
    image_size, channels, fit = spec.model.image_size, spec.model.channels, spec.dataset.fit
    if spec.dataset.name is not None:
        return open_builtin(spec.dataset.name, device, image_size, channels, fit)
    if uploaded is None:
        raise DataError("the spec names an uploaded data set but none was given")
    return source_from_array(uploaded, device, image_size, channels, fit)


@dataclass
class Run:
    spec: TrainSpec
    trainer: Trainer
    evaluator: Evaluator | None


def assemble(
    spec: TrainSpec,
    uploaded: np.ndarray | None = None,
    device: torch.device | None = None,
    eval_examples: int | None = None,
    cache_dir: Path | None = None,
) -> Run:
    """A trainer for `spec` (resolved here if it is not yet), and its evaluator when the spec asks for one.

    `eval_examples`: how many generated and real examples each evaluation compares (by default
    wgan.evaluation's, by kind of data). `cache_dir`: where the digit classifiers' trained weights are kept.
    """
    spec = resolve_for_data(spec, dataset_info(spec, uploaded))
    device = device or pick_device(spec.device)
    data = open_data(spec, device, uploaded)
    evaluator = None
    if spec.evaluate:
        n = eval_examples or default_examples(data.kind)
        m = spec.model
        judge = judge_for(spec.dataset.name, m.image_size, m.channels, spec.dataset.fit, n, EVAL_SEED, cache_dir)
        evaluator = Evaluator(data, n=n, judge=judge)
    return Run(spec=spec, trainer=Trainer(spec, data, device), evaluator=evaluator)
