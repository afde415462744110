"""``python -m bench``: run every benchmark and print a Markdown report."""

import sys

from bench.run import main

sys.exit(main())
