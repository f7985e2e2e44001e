"""A tick hook for the fault tests, put first in the worker's MARKET_TICK_HOOKS.

For the slot named by FAULT_PAUSE_SLOT it writes the worker child's pid to a marker
file and then blocks, so the test can SIGKILL the child in the middle of that tick:
after the tick's prices committed, before the order triggers ran.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def pause_mid_tick(result: Any) -> None:
    if os.environ.get("FAULT_PAUSE_SLOT") != str(result.slot):
        return
    marker = Path(os.environ["FAULT_MARKER_DIR"]) / f"paused-{result.slot}"
    marker.write_text(str(os.getpid()))
    time.sleep(60)
