"""`python -m wgan`: the command line."""

import os
import sys

# Spinning OpenMP threads crawl when another process shares the cores (see wgan_service/cli.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from wgan.cli import main

sys.exit(main())
