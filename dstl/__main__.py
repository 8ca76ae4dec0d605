"""Entry point for `python -m dstl`."""

import sys

from dstl.cli import main

if __name__ == "__main__":
    sys.exit(main())
