"""`python -m playground_tools.demo_models OUT_DIR [--force] [--check]`."""

import sys

from .build import main

sys.exit(main())
