import sys

from .annotate import main

sys.exit(main())
