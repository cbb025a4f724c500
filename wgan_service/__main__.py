import sys

from wgan_service.cli import main

sys.exit(main())
