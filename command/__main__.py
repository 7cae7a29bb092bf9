"""`python -m command` runs the `tenure` command."""

import sys

from command.main import main

sys.exit(main())
