"""`python -m cpt ...` and `accelerate launch -m cpt run RECIPE`: the same as the `cpt` command."""

import sys

from cpt.cli import main

sys.exit(main())
