"""``python -m optimize.cli``: the ``retention`` command."""

import sys

from .main import main

sys.exit(main())
