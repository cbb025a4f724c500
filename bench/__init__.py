"""Benchmarks of the WGAN engine and service: run with `python -m bench`, results in BENCHMARKS.md."""

import os

# The benchmark process's own in-process measurements, before torch loads: passive, as the API runs and as
# every earlier result here was measured. The service processes a benchmark starts choose their own policy
# (tests/support/stack.py leaves this one out of their environment), and each OpenMP comparison runs its
# sides in fresh processes with the policy it names (bench.threads, bench.worker_speed).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
