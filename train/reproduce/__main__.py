"""``python -m train.reproduce NAME``."""

import sys

from train.reproduce import main

sys.exit(main())
