"""Each command's OpenMP policy: a training worker spins boundedly, everything else waits passively, and
an operator's own setting is left alone."""

from __future__ import annotations

import subprocess
import sys

from service.settings import Settings
from tests.support.processes import ROOT
from wgan_service import openmp


def test_a_worker_spins_boundedly_and_the_api_and_webhook_sender_never_spin() -> None:
    settings = Settings(worker_omp_spincount=10_000)
    assert openmp.policy_for("worker", settings) == {"GOMP_SPINCOUNT": "10000"}
    for command in ("serve", "webhooks", "dev", "migrate"):
        assert openmp.policy_for(command, settings) == {"OMP_WAIT_POLICY": "PASSIVE"}, command
    # 0: the worker waits passively too.
    assert openmp.policy_for("worker", Settings(worker_omp_spincount=0)) == {"OMP_WAIT_POLICY": "PASSIVE"}


def test_an_operators_openmp_setting_wins_and_children_choose_their_own() -> None:
    settings = Settings()
    mine = {"OMP_WAIT_POLICY": "ACTIVE", "PATH": "/bin"}
    assert openmp.configure("worker", settings, mine) == {}
    assert mine["OMP_WAIT_POLICY"] == "ACTIVE" and "GOMP_SPINCOUNT" not in mine
    # `dev` serves passively itself and starts its worker without that choice, so the worker makes its own.
    parent = {"PATH": "/bin"}
    chosen = openmp.configure("dev", settings, parent)
    assert parent == {"PATH": "/bin", "OMP_WAIT_POLICY": "PASSIVE"}
    child = openmp.without(chosen, parent)
    assert child == {"PATH": "/bin"}
    assert openmp.configure("worker", settings, child) == {"GOMP_SPINCOUNT": str(settings.worker_omp_spincount)}


def test_the_policy_is_in_place_before_torch_loads() -> None:
    # OpenMP reads it once, when torch loads: the command must not have loaded torch before choosing.
    probe = (
        "import sys; from wgan_service import cli; "
        "assert 'torch' not in sys.modules, 'the CLI module loaded torch before choosing the OpenMP policy'"
    )
    subprocess.run([sys.executable, "-c", probe], cwd=ROOT, check=True, timeout=60)


def test_a_running_worker_trains_with_the_bounded_spin(worker) -> None:
    assert "OpenMP GOMP_SPINCOUNT=10000" in worker.log()
