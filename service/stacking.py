"""Which runs of an experiment train together: those whose specs share a stack key (wgan.stacked), on
the same queue, in stacks bounded by max_stack_runs, by the owner's running limit (each run of a stack
is a running job) and by memory (wgan.stacked.run_bytes against max_stack_bytes)."""

from __future__ import annotations

from collections.abc import Sequence

from service.models import Job
from service.queue import CPU_QUEUE
from service.settings import Settings
from wgan.config import TrainSpec
from wgan.stacked import run_bytes, stack_key


def plan(jobs: Sequence[Job], settings: Settings) -> list[list[Job]]:
    """The jobs in stacks to send as one task each, in their order; a stack of one trains alone."""
    most = min(settings.max_stack_runs, settings.max_running_per_owner)
    groups: dict[tuple[str, str], list[Job]] = {}
    stacks: list[list[Job]] = []
    for job in jobs:
        spec = TrainSpec.model_validate(job.spec)
        key = stack_key(spec)
        # Grouped convolutions gain nothing on a CPU over the same convolutions one run at a time (a stack
        # of four 32 px DCGANs trained at 0.84x and 0.99x in two runs of BENCHMARKS.md "stacked"): convnets
        # stack on GPU queues only.
        convnet_on_cpu = job.queue == CPU_QUEUE and spec.model.arch == "dcgan"
        if key is None or most < 2 or convnet_on_cpu:
            stacks.append([job])
            continue
        room = max(1, min(most, settings.max_stack_bytes // run_bytes(spec)))
        group = groups.setdefault((job.queue, key), [])
        group.append(job)
        if len(group) == room:
            stacks.append(group)
            groups[(job.queue, key)] = []
    stacks.extend(group for group in groups.values() if group)
    return stacks
