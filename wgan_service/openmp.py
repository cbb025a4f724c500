"""How a process's OpenMP threads wait for work, chosen per command before anything loads torch (OpenMP
reads it once, at load).

Measured here (bench.threads, the 512-wide MLP, 2 threads): a bounded spin trains 1.35x faster than
passive waiting alone on the host, but two processes that spin on the same two cores fall to 0.35x of
that. So a training worker spins, boundedly, and takes fewer threads when the cores are shared
(worker.cores), while the API and the webhook sender, which run short bursts beside the workers, never
spin: each of their threads sleeps as soon as it has nothing to do.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

from service.settings import Settings

TRAINING_COMMANDS = frozenset({"worker"})
VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")  # what libgomp reads of how to wait


def policy_for(command: str, settings: Settings) -> dict[str, str]:
    """The OpenMP variables a process running `command` should start with."""
    if command in TRAINING_COMMANDS and settings.worker_omp_spincount > 0:
        return {"GOMP_SPINCOUNT": str(settings.worker_omp_spincount)}
    return {"OMP_WAIT_POLICY": "PASSIVE"}


def configure(command: str, settings: Settings, environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set the policy for `command` in `environ` unless its operator set one; returns what was set, so a
    process that starts others (`dev`) can leave it out of their environment and let them choose theirs."""
    if any(name in environ for name in VARIABLES):
        return {}
    chosen = policy_for(command, settings)
    environ.update(chosen)
    return chosen


def unset(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """`environ` with no OpenMP wait setting: a process started with it runs at OpenMP's defaults, or, if
    it is one of ours, chooses its own."""
    return {name: value for name, value in environ.items() if name not in VARIABLES}


def without(chosen: dict[str, str], environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """`environ` less what `configure` chose for this process: the environment for a child process that
    runs another command."""
    return {name: value for name, value in environ.items() if name not in chosen}
