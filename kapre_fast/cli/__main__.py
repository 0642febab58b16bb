"""`python -m kapre_fast.cli`: the same as the `kapre-fast` command."""

import sys

from kapre_fast.cli.main import main

sys.exit(main())
