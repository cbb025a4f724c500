"""Benchmarks of the WGAN engine and service: run with `python -m bench`, results in BENCHMARKS.md."""

import os

# As the worker runs (wgan_service/cli.py), and before torch loads: OpenMP threads that spin while waiting
# crawl as soon as another process shares the cores, which on this shared 2-core host is most of the time.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
