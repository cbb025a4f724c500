"""`python -m wgan`: the command line."""

import sys

from wgan.cli import main

sys.exit(main())
