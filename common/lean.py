"""What a daemon process leaves out of its imports (issue 14: an idle standby ≤ 40 MB).

structlog imports rich, when it is installed (the demo needs it), for its console renderer's
tracebacks: about 4 MB in every process. A daemon writes JSON lines, or plain console lines
whose tracebacks need no rich; with cephx on, `cryptography` costs it as much again.
"""

from __future__ import annotations

import sys


def skip_rich() -> None:
    """Call first in a daemon's main(): rich is then unimportable in this process. A process
    that imported structlog already (a test calling main) keeps what it has."""
    if "structlog" not in sys.modules:
        sys.modules.setdefault("rich", None)
