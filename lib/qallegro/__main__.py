import sys

from qallegro.cli import main

sys.exit(main())
