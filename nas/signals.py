"""SIGTERM handled like Ctrl-C.

``kill``, ``timeout`` and cluster schedulers send SIGTERM; the ``nas`` driver turns it into
SIGINT, so whatever handles Ctrl-C at that moment (Python's KeyboardInterrupt, or Ray Tune's
graceful stop during a search) handles it too: trials in flight are forgotten, not left
``running``. ``ray.init`` installs its own SIGTERM handler (and a C++ stack dump), so the launcher
installs this one again after it.
"""

from __future__ import annotations

import signal
import threading

__all__ = ["sigterm_as_interrupt"]


def _forward(signum: int, frame: object) -> None:
    signal.raise_signal(signal.SIGINT)


def sigterm_as_interrupt() -> None:
    """Make SIGTERM behave like Ctrl-C in this process (main thread only, else a no-op)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _forward)
