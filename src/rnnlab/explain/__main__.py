"""``python -m rnnlab.explain shapes|explain ...``."""

import sys

from rnnlab.explain._commands import main

sys.exit(main())
