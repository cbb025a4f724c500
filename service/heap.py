"""What a long-running process has made by the time it is ready is kept out of the cyclic collector.

A service process carries torch, pydantic's schemas, SQLAlchemy's mappers and the app: about 380,000
objects the collector tracks. A full collection walks them all (130 ms in the API process on this
machine's CPU, every thread stalled on the GIL meanwhile), and it runs whenever enough objects have
survived since the last one, on whatever request is running then. Moved to the permanent generation once
start-up is done (gc.freeze, as the CPython docs suggest for servers), they are never walked again;
garbage made later is collected as before.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def freeze_startup_heap() -> int:
    """Collect what start-up left as garbage, then freeze the rest; the number of objects frozen."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.debug("froze %d start-up objects out of the cyclic collector", frozen)
    return frozen
