"""A process of the service starts without the libraries that only measuring a checkpoint needs.

POT (with scikit-learn under it) and SciPy took about 3 of the 6–7 s an API or worker process spent
importing on a 2-core host: every restart, every worker scaled out, every CLI command paid them. They are
imported where a worker evaluates or summarises a job, so a process that never does never loads them
(tests/wgan/test_evaluation.py and tests/service/test_summary.py check that the measures still compute).
"""

from __future__ import annotations

from tests.support.imports import packages_loaded

LATE = ("ot", "sklearn", "scipy")
# What an API, a worker and the CLI import at start, and the modules that use the late libraries.
STARTS = ("app.main", "worker.app", "wgan_service.cli", "wgan.evaluation", "wgan.classifier", "service.summary")


def test_the_api_worker_and_cli_start_without_pot_scikit_learn_or_scipy() -> None:
    assert packages_loaded(STARTS, LATE) == []
