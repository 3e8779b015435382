"""``python -m emomon.cli``: the same as the ``emomon`` console script."""

import sys

from emomon.cli import main

sys.exit(main())
