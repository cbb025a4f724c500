"""How many torch threads a job trains on: the setting when given, else one for small models on the CPU."""

from __future__ import annotations

import torch

from tests.support.service import settings
from wgan.config import TrainSpec, resolve
from worker.training import DEFAULT_THREADS, training_threads


def _spec(width: int) -> TrainSpec:
    return resolve(
        TrainSpec.model_validate({"dataset": {"name": "8gaussians"}, "model": {"hidden_dim": width}}), "points", (2,)
    )


def test_small_cpu_jobs_train_on_one_thread_and_large_ones_on_torchs_default() -> None:
    auto = settings().model_copy(update={"worker_torch_threads": 0, "worker_single_thread_flops": 1e10})
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert training_threads(_spec(128), cpu, auto) == 1  # ~1.5 GFLOP per step
    assert training_threads(_spec(512), cpu, auto) == DEFAULT_THREADS  # ~23 GFLOP per step
    assert training_threads(_spec(128), cuda, auto) == DEFAULT_THREADS  # the host threads only feed the GPU


def test_a_thread_count_in_the_settings_always_wins() -> None:
    fixed = settings().model_copy(update={"worker_torch_threads": 3})
    assert training_threads(_spec(128), torch.device("cpu"), fixed) == 3
    assert training_threads(_spec(512), torch.device("cpu"), fixed) == 3
