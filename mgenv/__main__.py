"""``python -m mgenv``: the ``mgenv`` command line."""

import sys

from mgenv.cli import main

sys.exit(main())
