"""`python -m dalil.api.cli`: the `dalil` command."""

import sys

from dalil.api.cli import main

sys.exit(main())
